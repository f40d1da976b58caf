//! Recordings: NDJSON, one JSON value per line — a header, one line per event, a summary.
//!
//! The reader streams (a recording can be large) and names the line of anything it rejects.
use std::{
    fs::File,
    io::{self, BufRead, BufReader, Write},
    path::Path,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{event::Event, frame::Frame, host::Host, model::Layout, probes::ProbeStatus};

/// Bumped on any incompatible change of the line format.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Header {
    /// The recording format: bumped on any incompatible change; readers refuse versions they do not know.
    pub format_version: u32,
    /// Version of the mhpscope that wrote the recording.
    pub tool_version: String,
    pub host: Host,
    /// CLOCK_MONOTONIC and CLOCK_REALTIME read together at start: maps event times to wall time.
    pub clock: Clock,
    pub layout: Layout,
    pub probes: Vec<ProbeStatus>,
    /// The static picture at start-up.
    pub frame: Frame,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Clock {
    /// CLOCK_MONOTONIC, ns (the clock of event times).
    pub monotonic_ns: u64,
    /// CLOCK_REALTIME, ns since the Unix epoch.
    pub realtime_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Event lines written.
    pub events: u64,
    /// Events the kernel could not put in the full ring buffer.
    pub lost_events: u64,
    /// Records that arrived but could not be decoded.
    pub undecodable_events: u64,
    /// How long recording ran, ns.
    pub duration_ns: u64,
    /// Why recording stopped: "duration", "SIGINT", "SIGTERM", "end of input".
    pub end_reason: String,
    /// The static picture at the end.
    pub frame: Option<Frame>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line: the host, the probes and the static picture at start.
    Header(Box<Header>),
    /// One traced call (or counter sample).
    Event(Event),
    /// The last line: totals and the static picture at the end.
    Summary(Box<Summary>),
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{name}: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("{name}:{line}: not a valid recording line: {reason}")]
    Invalid {
        name: String,
        line: usize,
        reason: String,
    },
    #[error("{name}:{line}: expected the header line first, found {found}")]
    NoHeader {
        name: String,
        line: usize,
        found: &'static str,
    },
    #[error(
        "{name}:{line}: recording format {found} is not supported (this mhpscope reads {FORMAT_VERSION})"
    )]
    Version { name: String, line: usize, found: u32 },
    #[error("{name}:{line}: unexpected {found} after the header")]
    Misplaced {
        name: String,
        line: usize,
        found: &'static str,
    },
    #[error("{name}: ends at line {line} without a summary line: the recording is truncated (was `mhpscope record` killed?)")]
    Truncated { name: String, line: usize },
    #[error("{name}:{line}: data after the summary line")]
    Trailing { name: String, line: usize },
}

pub struct Writer<W: Write> {
    out: io::BufWriter<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer {
            out: io::BufWriter::new(out),
        }
    }

    pub fn write(&mut self, line: &Line) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, line)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// What a reader hands on, after the header.
pub enum Item {
    Event(Event),
    Summary(Summary),
}

pub struct Reader<R: BufRead> {
    input: R,
    name: String,
    line_no: usize,
    buf: String,
    done: bool,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| RecordingError::Io {
            name: name.clone(),
            source,
        })?;
        Ok(Reader::new(BufReader::new(file), name))
    }
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, name: String) -> Reader<R> {
        Reader {
            input,
            name,
            line_no: 0,
            buf: String::new(),
            done: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next line; None at end of input.
    fn next_line(&mut self) -> Result<Option<Line>, RecordingError> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_line(&mut self.buf)
                .map_err(|source| RecordingError::Io {
                    name: self.name.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if self.buf.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&self.buf)
                .map(Some)
                .map_err(|e| RecordingError::Invalid {
                    name: self.name.clone(),
                    line: self.line_no,
                    reason: e.to_string(),
                });
        }
    }

    pub fn header(&mut self) -> Result<Header, RecordingError> {
        let line = self.line_no + 1;
        match self.next_line()? {
            Some(Line::Header(h)) if h.format_version == FORMAT_VERSION => Ok(*h),
            Some(Line::Header(h)) => Err(RecordingError::Version {
                name: self.name.clone(),
                line: self.line_no,
                found: h.format_version,
            }),
            Some(other) => Err(RecordingError::NoHeader {
                name: self.name.clone(),
                line: self.line_no,
                found: kind_of(&other),
            }),
            None => Err(RecordingError::Truncated {
                name: self.name.clone(),
                line,
            }),
        }
    }

    /// The next event or the summary; None once the summary has been read and input ended.
    pub fn next_item(&mut self) -> Result<Option<Item>, RecordingError> {
        match self.next_line()? {
            None if self.done => Ok(None),
            None => Err(RecordingError::Truncated {
                name: self.name.clone(),
                line: self.line_no,
            }),
            Some(_) if self.done => Err(RecordingError::Trailing {
                name: self.name.clone(),
                line: self.line_no,
            }),
            Some(Line::Event(e)) => Ok(Some(Item::Event(e))),
            Some(Line::Summary(s)) => {
                self.done = true;
                Ok(Some(Item::Summary(*s)))
            }
            Some(Line::Header(_)) => Err(RecordingError::Misplaced {
                name: self.name.clone(),
                line: self.line_no,
                found: "header",
            }),
        }
    }
}

fn kind_of(line: &Line) -> &'static str {
    match line {
        Line::Header(_) => "a header",
        Line::Event(_) => "an event",
        Line::Summary(_) => "a summary",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Op, ZoneId};

    fn header() -> Header {
        Header {
            format_version: FORMAT_VERSION,
            tool_version: "test".into(),
            host: Host {
                kernel_release: "6.1.0-test".into(),
                lockdown: Some("none".into()),
                lockdown_in_kernel_log: false,
                btf_available: true,
                can_trace: true,
            },
            clock: Clock {
                monotonic_ns: 1,
                realtime_ns: 2,
            },
            layout: Layout {
                zone_names: crate::kernel_btf::default_zone_names(),
                page_size: 4096,
                struct_page_size: 64,
                block_size_bytes: 128 << 20,
            },
            probes: vec![],
            frame: Frame::default(),
        }
    }

    fn event() -> Event {
        Event {
            ts_ns: 10,
            duration_ns: 5,
            tid: 3,
            op: Op::OnlinePages {
                pfn: 0x100000,
                nr_pages: 0x8000,
                zone: ZoneId { node: 1, zone: 3 },
                ret: 0,
            },
        }
    }

    fn summary() -> Summary {
        Summary {
            events: 1,
            lost_events: 0,
            undecodable_events: 0,
            duration_ns: 100,
            end_reason: "duration".into(),
            frame: None,
        }
    }

    fn write_all(lines: &[Line]) -> String {
        let mut buf = Vec::new();
        {
            let mut w = Writer::new(&mut buf);
            for l in lines {
                w.write(l).unwrap();
            }
            w.flush().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    fn read_all(text: &str) -> Result<(Header, Vec<Event>, Option<Summary>), RecordingError> {
        let mut r = Reader::new(text.as_bytes(), "rec.ndjson".into());
        let h = r.header()?;
        let (mut events, mut summary) = (Vec::new(), None);
        while let Some(item) = r.next_item()? {
            match item {
                Item::Event(e) => events.push(e),
                Item::Summary(s) => summary = Some(s),
            }
        }
        Ok((h, events, summary))
    }

    fn good() -> String {
        write_all(&[
            Line::Header(Box::new(header())),
            Line::Event(event()),
            Line::Summary(Box::new(summary())),
        ])
    }

    #[test]
    fn round_trip() {
        let text = good();
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().nth(1).unwrap().contains(r#""type":"event""#));
        let (h, events, s) = read_all(&text).unwrap();
        assert_eq!(h, header());
        assert_eq!(events, vec![event()]);
        assert_eq!(s, Some(summary()));
    }

    #[test]
    fn truncated_recording_names_the_last_line() {
        let text = good();
        let without_summary: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        let err = read_all(&without_summary).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("truncated"), "{err}");

        // cut in the middle of the event line
        let cut = &text[..text.find(r#""tid""#).unwrap()];
        let err = read_all(cut).unwrap_err().to_string();
        assert!(
            err.starts_with("rec.ndjson:2: not a valid recording line"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_lines_are_named() {
        let mut lines: Vec<String> = good().lines().map(String::from).collect();
        lines[1] = lines[1].replace("online_pages", "no_such_kind");
        let err = read_all(&lines.join("\n")).unwrap_err().to_string();
        assert!(err.starts_with("rec.ndjson:2:"), "{err}");

        let err = read_all("").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");

        let first_event = good().lines().nth(1).unwrap().to_string();
        let err = read_all(&first_event).unwrap_err().to_string();
        assert_eq!(
            err,
            "rec.ndjson:1: expected the header line first, found an event"
        );

        let err = read_all(&format!("{}{}", good(), first_event))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "rec.ndjson:4: data after the summary line");

        let err = read_all("\u{0}\u{1}binary").unwrap_err().to_string();
        assert!(err.starts_with("rec.ndjson:1:"), "{err}");
    }

    #[test]
    fn newer_format_is_refused() {
        let text = good().replacen(r#""format_version":1"#, r#""format_version":99"#, 1);
        let err = read_all(&text).unwrap_err().to_string();
        assert!(err.contains("format 99 is not supported"), "{err}");
    }
}
