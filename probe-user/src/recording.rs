//! Recordings: NDJSON, one JSON value per line — a header, one line per event, a summary.
//!
//! The reader streams (a recording can be large) and names the line of anything it rejects.
use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Write},
    path::Path,
};

use schemars::JsonSchema;
use serde::{
    de::{self, value::MapAccessDeserializer, MapAccess, Visitor},
    Deserialize, Deserializer, Serialize,
};

use crate::{
    kernel::frame::Frame, kernel::host::Host, kernel::probes::ProbeStatus, model::event::Event, model::Layout,
};

pub mod parallel;
pub mod replay;
pub mod source;
pub mod stream;
pub mod synth;
pub mod validate;
mod wire;

/// Bumped on any incompatible change of the line format (2: the online/offline step events).
pub const FORMAT_VERSION: u32 = 2;
/// Formats this mhpscope reads: version 1 is version 2 without the newer event kinds.
pub const READS_FORMATS: [u32; 2] = [1, 2];

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
    /// Why recording stopped.
    pub end_reason: EndReason,
    /// The static picture at the end.
    pub frame: Option<Frame>,
}

/// Why a recording (or live tracing) stopped, as recordings spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EndReason {
    /// `--duration` ran out.
    #[serde(rename = "duration")]
    Duration,
    #[serde(rename = "SIGINT")]
    Sigint,
    #[serde(rename = "SIGTERM")]
    Sigterm,
    #[serde(rename = "SIGHUP")]
    Sighup,
    /// The view asked the source to stop (`top` quit).
    #[serde(rename = "stopped")]
    Stopped,
    /// A recording read from a file or a pipe ended.
    #[serde(rename = "end of input")]
    EndOfInput,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Duration => "duration",
            EndReason::Sigint => "SIGINT",
            EndReason::Sigterm => "SIGTERM",
            EndReason::Sighup => "SIGHUP",
            EndReason::Stopped => "stopped",
            EndReason::EndOfInput => "end of input",
        }
    }

    /// Someone sent the tracer a signal to end it.
    pub fn is_signal(self) -> bool {
        matches!(self, EndReason::Sigint | EndReason::Sigterm | EndReason::Sighup)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line: the host, the probes and the static picture at start.
    Header(Box<Header>),
    /// One traced call (or counter sample).
    Event(Event),
    /// The last line: totals and the static picture at the end.
    Summary(Box<Summary>),
}

/// By hand rather than serde's internally tagged derive, which buffers the whole line before
/// looking at its tag: a header listing a million blocks would be held twice. With `type`
/// first (as written), the rest of the line streams into its variant.
impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Line, D::Error> {
        d.deserialize_map(LineVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineType {
    Header,
    Event,
    Summary,
}

/// The first key of a line: `type`, or another one (kept to rebuild the line).
enum FirstKey {
    Type,
    Other(String),
}

impl<'de> Deserialize<'de> for FirstKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FirstKey, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FirstKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FirstKey, E> {
                Ok(if v == "type" {
                    FirstKey::Type
                } else {
                    FirstKey::Other(v.to_owned())
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Line;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a recording line: an object with a \"type\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Line, A::Error> {
        match map.next_key::<FirstKey>()? {
            Some(FirstKey::Type) => {
                let kind: LineType = map.next_value()?;
                let rest = MapAccessDeserializer::new(map);
                Ok(match kind {
                    LineType::Header => Line::Header(Box::new(Header::deserialize(rest)?)),
                    LineType::Event => Line::Event(wire::event(rest)?),
                    LineType::Summary => Line::Summary(Box::new(Summary::deserialize(rest)?)),
                })
            }
            // `type` further on (an edited line): gather the object, then read it.
            Some(FirstKey::Other(key)) => {
                let mut obj = serde_json::Map::new();
                obj.insert(key, map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    obj.insert(k, v);
                }
                let kind = obj
                    .remove("type")
                    .ok_or_else(|| de::Error::missing_field("type"))?;
                let kind: LineType = serde_json::from_value(kind).map_err(de::Error::custom)?;
                let rest = serde_json::Value::Object(obj);
                match kind {
                    LineType::Header => Header::deserialize(rest).map(|h| Line::Header(Box::new(h))),
                    LineType::Event => Event::deserialize(rest).map(Line::Event),
                    LineType::Summary => Summary::deserialize(rest).map(|s| Line::Summary(Box::new(s))),
                }
                .map_err(de::Error::custom)
            }
            None => Err(de::Error::missing_field("type")),
        }
    }
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
    /// A field whose value no kernel can produce.
    #[error("{name}:{line}: {what}")]
    Value {
        name: String,
        line: usize,
        what: validate::Invalid,
    },
    #[error("{name}:{line}: expected the header line first, found {found}")]
    NoHeader {
        name: String,
        line: usize,
        found: &'static str,
    },
    #[error(
        "{name}:{line}: recording format {found} is not supported (this mhpscope reads 1 and {FORMAT_VERSION})"
    )]
    Version { name: String, line: usize, found: u32 },
    #[error("{name}:{line}: unexpected {found} after the header")]
    Misplaced {
        name: String,
        line: usize,
        found: &'static str,
    },
    /// The input ended before the summary (the recorder was killed, the disk filled): what
    /// came before `line` is whole; `line` itself may be cut.
    #[error("{name} ends at line {line} without a summary: the recording was cut short")]
    Truncated { name: String, line: usize },
    #[error("{name}:{line}: data after the summary line")]
    Trailing { name: String, line: usize },
}

impl RecordingError {
    /// The warning a reader shows when it goes on with a cut recording.
    pub fn cut_short_warning(&self) -> Option<String> {
        match self {
            RecordingError::Truncated { name, line } => Some(format!(
                "{name} ends at line {line} without a summary: the recording was cut short; everything up to there is shown"
            )),
            _ => None,
        }
    }
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

/// Read buffer of a recording file: most lines are found whole in it and parsed in place.
pub const READ_BUFFER: usize = 1 << 20;

/// What the checks of the lines after the header need: from the header.
#[derive(Debug, Clone)]
pub struct Checks {
    layout: Layout,
    limits: validate::Limits,
}

impl Checks {
    pub fn new(header: &Header) -> Checks {
        Checks {
            layout: header.layout.clone(),
            limits: validate::Limits::new(&header.layout),
        }
    }

    /// A line after the header, parsed and checked.
    pub fn line(&self, line: Line) -> Result<Line, validate::Invalid> {
        match &line {
            Line::Event(e) => validate::event(e, &self.limits)?,
            Line::Summary(s) => validate::summary(s, &self.layout)?,
            Line::Header(_) => {}
        }
        Ok(line)
    }
}

pub struct Reader<R: BufRead> {
    input: R,
    name: String,
    line_no: usize,
    buf: String,
    done: bool,
    checks: Option<Checks>,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| RecordingError::Io {
            name: name.clone(),
            source,
        })?;
        Ok(Reader::new(BufReader::with_capacity(READ_BUFFER, file), name))
    }
}

impl<R: Read> Reader<BufReader<R>> {
    /// Whether input is waiting in the read buffer: when not, the next read may block
    /// (a pipe, a followed file), so a caller batching events should hand them on first.
    pub fn has_buffered(&self) -> bool {
        !self.input.buffer().is_empty()
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
            checks: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// After [`Reader::header`]: the input where the body begins, the number of the last
    /// line read and the checks of the lines to come (for a reader of the body in parallel).
    pub fn into_body(self) -> (R, String, usize, Option<Checks>) {
        (self.input, self.name, self.line_no, self.checks)
    }

    fn invalid(&self, reason: impl ToString) -> RecordingError {
        RecordingError::Invalid {
            name: self.name.clone(),
            line: self.line_no,
            reason: reason.to_string(),
        }
    }

    fn truncated(&self) -> RecordingError {
        RecordingError::Truncated {
            name: self.name.clone(),
            line: self.line_no,
        }
    }

    fn io_error(&self, source: io::Error) -> RecordingError {
        RecordingError::Io {
            name: self.name.clone(),
            source,
        }
    }

    /// Reads the next line; None at end of input. A line found whole in the input's buffer is
    /// parsed in place; a longer one (a header listing many blocks) streams from the input,
    /// never held as text. A last line cut short (no newline, not a whole value) is
    /// `Truncated`.
    fn next_line(&mut self) -> Result<Option<Line>, RecordingError> {
        loop {
            let buffered = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(self.io_error(e)),
            };
            if buffered.is_empty() {
                return Ok(None);
            }
            if let Some(nl) = memchr::memchr(b'\n', buffered) {
                let text = &buffered[..nl];
                let blank = text.iter().all(u8::is_ascii_whitespace);
                let parsed = (!blank).then(|| serde_json::from_slice::<Line>(text));
                self.input.consume(nl + 1);
                self.line_no += 1;
                match parsed {
                    None => continue,
                    Some(r) => return r.map(Some).map_err(|e| self.invalid(e)),
                }
            }
            if buffered.iter().all(u8::is_ascii_whitespace) {
                // Blank up to the buffer's end: skip it, the line goes on (or input ends).
                let n = buffered.len();
                self.input.consume(n);
                continue;
            }
            self.line_no += 1;
            let parsed = Line::deserialize(&mut serde_json::Deserializer::from_reader(&mut self.input));
            // What follows the value up to the end of its line must be blank.
            self.buf.clear();
            let rest = self.input.read_line(&mut self.buf);
            let ended = self.buf.is_empty() || !self.buf.ends_with('\n');
            return match (parsed, rest) {
                (_, Err(e)) => Err(self.io_error(e)),
                // The input ends inside this line: it was cut while being written.
                (Err(_), Ok(_)) if ended => Err(self.truncated()),
                (Err(e), Ok(_)) => Err(self.invalid(e)),
                (Ok(_), Ok(_)) if !self.buf.trim().is_empty() => {
                    Err(self.invalid(format!("trailing characters {:?}", self.buf.trim())))
                }
                (Ok(line), Ok(_)) => Ok(Some(line)),
            };
        }
    }

    pub fn header(&mut self) -> Result<Header, RecordingError> {
        let line = self.line_no + 1;
        match self.next_line() {
            Ok(Some(Line::Header(h))) if READS_FORMATS.contains(&h.format_version) => {
                validate::header(&h).map_err(|what| RecordingError::Value {
                    name: self.name.clone(),
                    line: self.line_no,
                    what,
                })?;
                self.checks = Some(Checks::new(&h));
                Ok(*h)
            }
            Ok(Some(Line::Header(h))) => Err(RecordingError::Version {
                name: self.name.clone(),
                line: self.line_no,
                found: h.format_version,
            }),
            Ok(Some(other)) => Err(RecordingError::NoHeader {
                name: self.name.clone(),
                line: self.line_no,
                found: kind_of(&other),
            }),
            // Not even a header: nothing to show.
            Ok(None) => Err(RecordingError::Invalid {
                name: self.name.clone(),
                line,
                reason: "empty: a recording begins with its header line".into(),
            }),
            Err(RecordingError::Truncated { line, .. }) => Err(RecordingError::Invalid {
                name: self.name.clone(),
                line,
                reason: "the header line is cut short: nothing was recorded".into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// The next event or the summary; None once the summary has been read and input ended.
    /// `Truncated` when input ends without a summary: everything before was handed on.
    pub fn next_item(&mut self) -> Result<Option<Item>, RecordingError> {
        let next = self.next_line();
        if self.done {
            // Whatever follows the summary, well-formed or not, is out of place.
            return match next {
                Ok(None) => Ok(None),
                Ok(Some(_)) | Err(RecordingError::Invalid { .. } | RecordingError::Truncated { .. }) => {
                    Err(RecordingError::Trailing {
                        name: self.name.clone(),
                        line: self.line_no,
                    })
                }
                Err(e) => Err(e),
            };
        }
        let line = match next? {
            None => return Err(self.truncated()),
            Some(line) => line,
        };
        let line = match &self.checks {
            Some(c) => c.line(line).map_err(|what| RecordingError::Value {
                name: self.name.clone(),
                line: self.line_no,
                what,
            })?,
            None => line,
        };
        match line {
            Line::Event(e) => Ok(Some(Item::Event(e))),
            Line::Summary(s) => {
                self.done = true;
                Ok(Some(Item::Summary(*s)))
            }
            Line::Header(_) => Err(RecordingError::Misplaced {
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
    use crate::model::event::{Op, ZoneId};

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
                zone_names: crate::kernel::kernel_btf::default_zone_names(),
                page_size: 4096,
                struct_page_size: 64,
                block_size_bytes: 128 << 20,
                page_flags: None,
                features: Default::default(),
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
            end_reason: EndReason::Duration,
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
    fn lines_longer_than_the_read_buffer_stream_alike() {
        // A 16-byte buffer never holds a whole line: every line streams from the reader.
        let text = good().replace('\n', "\n\n");
        let mut r = Reader::new(io::BufReader::with_capacity(16, text.as_bytes()), "rec".into());
        assert_eq!(r.header().unwrap(), header());
        assert!(matches!(r.next_item().unwrap(), Some(Item::Event(e)) if e == event()));
        assert!(matches!(r.next_item().unwrap(), Some(Item::Summary(s)) if s == summary()));
        assert!(r.next_item().unwrap().is_none());

        let spoiled = good().replacen("}\n", "} x\n", 1);
        let mut r = Reader::new(io::BufReader::with_capacity(16, spoiled.as_bytes()), "rec".into());
        let err = r.header().unwrap_err().to_string();
        assert!(
            err.contains("rec:1: not a valid recording line: trailing characters"),
            "{err}"
        );
    }

    #[test]
    fn the_type_may_come_anywhere_in_a_line() {
        let line = serde_json::to_value(Line::Event(event())).unwrap();
        let mut fields: Vec<(String, serde_json::Value)> =
            line.as_object().unwrap().clone().into_iter().collect();
        fields.rotate_left(1);
        assert_ne!(fields[0].0, "type");
        let moved: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
        let text = serde_json::to_string(&moved).unwrap();
        assert!(!text.starts_with(r#"{"type""#), "{text}");
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), Line::Event(event()));
    }

    #[test]
    fn truncated_recording_names_the_last_line() {
        let text = good();
        let without_summary: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        let err = read_all(&without_summary).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rec.ndjson ends at line 2 without a summary: the recording was cut short"
        );
        assert!(err
            .cut_short_warning()
            .unwrap()
            .ends_with("everything up to there is shown"));

        // cut in the middle of the event line: the events before it are read, then Truncated
        let cut = &text[..text.find(r#""tid""#).unwrap()];
        let mut r = Reader::new(cut.as_bytes(), "rec.ndjson".into());
        r.header().unwrap();
        let err = r.next_item().err().unwrap();
        assert!(matches!(err, RecordingError::Truncated { line: 2, .. }), "{err}");

        // the same through a small buffer (the line streams)
        let mut r = Reader::new(io::BufReader::with_capacity(16, cut.as_bytes()), "rec".into());
        r.header().unwrap();
        assert!(matches!(
            r.next_item(),
            Err(RecordingError::Truncated { line: 2, .. })
        ));

        // a complete last line without its newline is whole
        let no_newline = without_summary.trim_end();
        let mut r = Reader::new(no_newline.as_bytes(), "rec".into());
        r.header().unwrap();
        assert!(matches!(r.next_item(), Ok(Some(Item::Event(_)))));
        assert!(matches!(
            r.next_item(),
            Err(RecordingError::Truncated { line: 2, .. })
        ));

        // a bad line that is not the last is an error, not a cut
        let bad_middle = format!(
            "{}{{\"type\":\n{}",
            text.lines().next().unwrap().to_owned() + "\n",
            text.lines().nth(1).unwrap()
        );
        let err = read_all(&bad_middle).unwrap_err().to_string();
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
        assert_eq!(
            err,
            "rec.ndjson:1: not a valid recording line: empty: a recording begins with its header line"
        );

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
        let current = format!(r#""format_version":{FORMAT_VERSION}"#);
        let text = good().replacen(&current, r#""format_version":99"#, 1);
        let err = read_all(&text).unwrap_err().to_string();
        assert!(err.contains("format 99 is not supported"), "{err}");
    }

    #[test]
    fn version_1_recordings_are_read() {
        let current = format!(r#""format_version":{FORMAT_VERSION}"#);
        let text = good().replacen(&current, r#""format_version":1"#, 1);
        assert!(read_all(&text).is_ok());
        let text = good().replacen(&current, r#""format_version":0"#, 1);
        assert!(read_all(&text).is_err());
    }
}
