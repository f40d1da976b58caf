//! The body of a recording file (every line after the header) read on several threads: one
//! cuts the input into chunks of whole lines, workers parse and check them, and the caller
//! gets each chunk's events in order, as one batch. Parsing is most of a replay's work; a
//! chunk of lines is parsed alone, so the workers need nothing from each other.
use std::{
    io::{BufRead, Read},
    sync::{
        mpsc::{sync_channel, Receiver, SyncSender},
        Arc, Mutex,
    },
    thread,
};

use super::{Checks, Line, RecordingError, Summary};
use crate::model::event::Event;

/// Bytes per chunk (then up to the end of the line): a few thousand events.
pub const CHUNK_BYTES: usize = 512 << 10;

/// Why reading stopped before the summary: the recording (bad, cut short or unreadable) or
/// the caller's sink.
#[derive(Debug)]
pub enum Stop<E> {
    Recording(RecordingError),
    Sink(E),
}

struct Job {
    text: Vec<u8>,
    /// Number of the chunk's first line in the file.
    first_line: usize,
    done: SyncSender<Parsed>,
}

#[derive(Default)]
struct Parsed {
    events: Vec<Event>,
    summary: Option<Summary>,
    /// The first line that is not blank.
    first_content: Option<usize>,
    /// What stopped the chunk early (the events before it are whole).
    error: Option<RecordingError>,
}

/// Reads the lines after the header from `input` (where [`super::Reader::into_body`] left it,
/// `lines_read` lines in) on `workers` threads; hands each chunk's events to `sink`, in
/// order. Returns the summary, or `Truncated` when input ends without one (after every
/// event before it went to `sink`).
pub fn read_body<R, E>(
    input: R,
    name: &str,
    lines_read: usize,
    checks: &Checks,
    workers: usize,
    sink: impl FnMut(Vec<Event>) -> Result<(), E>,
) -> Result<Summary, Stop<E>>
where
    R: BufRead + Send,
{
    read_in_chunks(input, name, lines_read, checks, workers, CHUNK_BYTES, sink)
}

fn read_in_chunks<R, E>(
    input: R,
    name: &str,
    lines_read: usize,
    checks: &Checks,
    workers: usize,
    chunk_bytes: usize,
    mut sink: impl FnMut(Vec<Event>) -> Result<(), E>,
) -> Result<Summary, Stop<E>>
where
    R: BufRead + Send,
{
    let workers = workers.max(1);
    let (order_tx, order_rx) = sync_channel::<Receiver<Parsed>>(workers * 2);
    let (job_tx, job_rx) = sync_channel::<Job>(workers);
    let job_rx = Arc::new(Mutex::new(job_rx));
    thread::scope(|scope| {
        let chunker = thread::Builder::new()
            .name("mhpscope-chunks".into())
            .spawn_scoped(scope, move || {
                chunk(input, lines_read, chunk_bytes, order_tx, job_tx)
            })
            .expect("spawning the chunking thread");
        let parsers: Vec<_> = (0..workers)
            .map(|_| {
                let jobs = job_rx.clone();
                thread::Builder::new()
                    .name("mhpscope-parse".into())
                    .spawn_scoped(scope, move || loop {
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let parsed = parse_chunk(&job, name, checks);
                        // The reader may have stopped early: nobody waits for this one.
                        let _ = job.done.send(parsed);
                    })
                    .expect("spawning a parsing thread")
            })
            .collect();

        let result = (|| {
            let mut summary: Option<Summary> = None;
            for done in order_rx.iter() {
                let Ok(p) = done.recv() else {
                    return Err(Stop::Recording(RecordingError::Invalid {
                        name: name.to_owned(),
                        line: lines_read,
                        reason: "a parsing thread failed".into(),
                    }));
                };
                if summary.is_some() {
                    if let Some(line) = p.first_content {
                        return Err(Stop::Recording(RecordingError::Trailing {
                            name: name.to_owned(),
                            line,
                        }));
                    }
                    continue;
                }
                if !p.events.is_empty() {
                    sink(p.events).map_err(Stop::Sink)?;
                }
                if let Some(e) = p.error {
                    return Err(Stop::Recording(e));
                }
                summary = p.summary;
            }
            Ok(summary)
        })();
        // Ends the chunker (its sends fail) whether or not all was read.
        drop(order_rx);
        let lines = match chunker.join() {
            Ok(Ok(lines)) => Ok(lines),
            Ok(Err(e)) => Err(RecordingError::Io {
                name: name.to_owned(),
                source: e,
            }),
            Err(_) => Err(RecordingError::Invalid {
                name: name.to_owned(),
                line: lines_read,
                reason: "the chunking thread failed".into(),
            }),
        };
        for p in parsers {
            let _ = p.join();
        }
        match (result?, lines) {
            (Some(s), _) => Ok(s),
            (None, Err(e)) => Err(Stop::Recording(e)),
            (None, Ok(line)) => Err(Stop::Recording(RecordingError::Truncated {
                name: name.to_owned(),
                line,
            })),
        }
    })
}

/// Cuts the input into chunks of whole lines (the last may lack its newline) and queues them;
/// returns the number of the last line.
fn chunk<R: BufRead>(
    mut input: R,
    mut lines: usize,
    chunk_bytes: usize,
    order: SyncSender<Receiver<Parsed>>,
    jobs: SyncSender<Job>,
) -> std::io::Result<usize> {
    loop {
        let mut text = Vec::with_capacity(chunk_bytes + 4096);
        (&mut input).take(chunk_bytes as u64).read_to_end(&mut text)?;
        if text.is_empty() {
            return Ok(lines);
        }
        if text.last() != Some(&b'\n') {
            input.read_until(b'\n', &mut text)?;
        }
        let first_line = lines + 1;
        lines += memchr::memchr_iter(b'\n', &text).count() + usize::from(text.last() != Some(&b'\n'));
        let (done, result) = sync_channel(1);
        if order.send(result).is_err() {
            return Ok(lines);
        }
        if jobs
            .send(Job {
                text,
                first_line,
                done,
            })
            .is_err()
        {
            return Ok(lines);
        }
    }
}

fn parse_chunk(job: &Job, name: &str, checks: &Checks) -> Parsed {
    let mut p = Parsed {
        events: Vec::with_capacity(job.text.len() / 160),
        ..Parsed::default()
    };
    let mut line = job.first_line - 1;
    let mut rest = &job.text[..];
    while !rest.is_empty() {
        let (text, terminated) = match memchr::memchr(b'\n', rest) {
            Some(nl) => {
                let t = &rest[..nl];
                rest = &rest[nl + 1..];
                (t, true)
            }
            None => (std::mem::take(&mut rest), false),
        };
        line += 1;
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        p.first_content.get_or_insert(line);
        if p.summary.is_some() {
            p.error = Some(RecordingError::Trailing {
                name: name.to_owned(),
                line,
            });
            return p;
        }
        let parsed = match serde_json::from_slice::<Line>(text) {
            // The input ends inside this line: it was cut while being written.
            Err(_) if !terminated => Err(RecordingError::Truncated {
                name: name.to_owned(),
                line,
            }),
            Err(e) => Err(RecordingError::Invalid {
                name: name.to_owned(),
                line,
                reason: e.to_string(),
            }),
            Ok(l) => checks.line(l).map_err(|what| RecordingError::Value {
                name: name.to_owned(),
                line,
                what,
            }),
        };
        match parsed {
            Ok(Line::Event(e)) => p.events.push(e),
            Ok(Line::Summary(s)) => p.summary = Some(*s),
            Ok(Line::Header(_)) => {
                p.error = Some(RecordingError::Misplaced {
                    name: name.to_owned(),
                    line,
                    found: "header",
                });
                return p;
            }
            Err(e) => {
                p.error = Some(e);
                return p;
            }
        }
    }
    p
}

/// The same stream read by one thread, for comparison in tests.
#[cfg(test)]
fn read_sequentially(text: &[u8]) -> (Vec<Event>, Result<Summary, String>) {
    let mut r = super::Reader::new(text, "rec".into());
    let mut events = Vec::new();
    if let Err(e) = r.header() {
        return (events, Err(e.to_string()));
    }
    loop {
        match r.next_item() {
            Ok(Some(super::Item::Event(e))) => events.push(e),
            Ok(Some(super::Item::Summary(s))) => match r.next_item() {
                Ok(None) => return (events, Ok(s)),
                Err(e) => return (events, Err(e.to_string())),
                Ok(Some(_)) => unreachable!(),
            },
            Ok(None) => unreachable!(),
            Err(e) => return (events, Err(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_parallel(text: &[u8], workers: usize) -> (Vec<Event>, Result<Summary, String>) {
        let mut r = super::super::Reader::new(text, "rec".into());
        if let Err(e) = r.header() {
            return (Vec::new(), Err(e.to_string()));
        }
        let (input, name, lines, checks) = r.into_body();
        let mut events = Vec::new();
        let end = read_in_chunks(
            input,
            &name,
            lines,
            &checks.unwrap(),
            workers,
            SMALL_CHUNKS,
            |batch| {
                events.extend(batch);
                Ok::<(), ()>(())
            },
        );
        let end = end.map_err(|e| match e {
            Stop::Recording(e) => e.to_string(),
            Stop::Sink(()) => "sink".into(),
        });
        (events, end)
    }

    /// Small chunks: a test recording is cut into many.
    const SMALL_CHUNKS: usize = 4096;

    fn real() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/devdax-7.2.ndjson"
        ))
        .unwrap()
    }

    #[test]
    fn parallel_reading_equals_sequential_reading() {
        // Many chunks, so that order across workers matters.
        let text = real();
        assert!(text.len() > 20 * SMALL_CHUNKS, "{}", text.len());
        let one = read_sequentially(&text);
        assert!(one.1.is_ok(), "{:?}", one.1);
        for workers in [1, 2, 3] {
            let (events, end) = read_in_parallel(&text, workers);
            assert_eq!(events.len(), one.0.len());
            assert!(events == one.0, "{workers} workers: events differ");
            assert_eq!(end, one.1);
        }
    }

    #[test]
    fn bad_cut_and_trailing_inputs_end_alike() {
        let text = real();
        let lines: Vec<&[u8]> = text.split_inclusive(|&c| c == b'\n').collect();
        let n = lines.len();
        let join = |ls: &[&[u8]]| ls.concat();
        let cases: Vec<Vec<u8>> = vec![
            // without the summary
            join(&lines[..n - 1]),
            // cut inside a line in a late chunk
            {
                let mut t = join(&lines[..n - 1]);
                t.truncate(t.len() - 40);
                t
            },
            // a corrupt line in the middle
            {
                let mut ls = lines.clone();
                ls[n / 2] = b"{\"type\":\"event\",\"ts_ns\":x}\n";
                join(&ls)
            },
            // a bad value in the middle
            {
                let mut ls = lines.clone();
                let bad = String::from_utf8(ls[n / 3].to_vec()).unwrap().replacen(
                    "\"tid\":",
                    "\"duration_ns\":99999999999999999,\"tid\":",
                    1,
                );
                let bad: &'static [u8] = Box::leak(bad.into_bytes().into_boxed_slice());
                ls[n / 3] = bad;
                join(&ls)
            },
            // data after the summary
            {
                let mut t = text.clone();
                t.extend_from_slice(lines[1]);
                t
            },
            // a second header
            {
                let mut ls = lines.clone();
                ls[n / 4] = lines[0];
                join(&ls)
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let one = read_sequentially(case);
            let two = read_in_parallel(case, 2);
            assert!(one.1.is_err(), "case {i}");
            assert_eq!(two.1, one.1, "case {i}");
            assert!(
                two.0 == one.0,
                "case {i}: {} vs {} events",
                two.0.len(),
                one.0.len()
            );
        }
    }
}
