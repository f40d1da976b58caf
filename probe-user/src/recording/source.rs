//! Where a stream of recording lines comes from: the kernel (live), a file (whole, or followed
//! as it grows) or stdin. Each source runs on its own thread and hands `Update`s over a bounded
//! channel, so a slow view slows the source instead of growing a queue without limit (live, the
//! kernel's ring buffer then fills and its drops are counted).
use std::{
    cell::RefCell,
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{sync_channel, Receiver, SyncSender},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use log::warn;

use crate::{
    kernel::frame::{self, Frame},
    kernel::host::Host,
    kernel::live,
    kernel::loader::{self, Options},
    kernel::probes::ProbeStatus,
    model::Layout,
    recording::stream::{Failure, FailureKind, Update},
    recording::{
        self,
        parallel::{self, Stop},
        validate, Header, Item, Reader, Summary,
    },
};

/// Updates in flight between a source and its view: a live drain's events, or a file's batch
/// of a few thousand lines, each. Bounds what a slow view lets pile up.
const CHANNEL_UPDATES: usize = 64;
/// Events per update read from a pipe or a followed file (handed on sooner when the input
/// has nothing more waiting).
const BATCH_EVENTS: usize = 4096;
/// How often a followed file is polled for growth.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub enum Input {
    /// Trace the running kernel, for this long or until stopped.
    Live { duration: Option<Duration> },
    /// Read a recording; with `follow`, wait for lines as it grows until its summary arrives.
    File { path: PathBuf, follow: bool },
    /// Read a recording from stdin until its summary (or end of input).
    Stdin,
}

impl Input {
    /// `--input` and `--follow` as the CLI gives them: no path traces live, `-` reads stdin.
    pub fn from_args(input: Option<PathBuf>, follow: bool, duration: Option<Duration>) -> Input {
        match input {
            None => Input::Live { duration },
            Some(p) if p.as_os_str() == "-" => Input::Stdin,
            Some(path) => Input::File { path, follow },
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Input::Live { .. })
    }

    /// A recording read whole, whose timing a replay can reproduce; live and followed inputs
    /// arrive in real time already.
    pub fn is_replay(&self) -> bool {
        matches!(self, Input::File { follow: false, .. })
    }

    pub fn origin(&self) -> String {
        match self {
            Input::Live { .. } => "live".into(),
            Input::File { path, .. } => path.display().to_string(),
            Input::Stdin => "stdin".into(),
        }
    }
}

/// A running source. Dropping the receiver or calling `stop` ends it.
pub struct Feed {
    pub rx: Receiver<Update>,
    stop: Arc<AtomicBool>,
}

impl Feed {
    /// Asks the source to end: live tracing writes its summary ("stopped"), a followed file
    /// stops waiting.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// No probe attached: there is nothing to trace (its own exit status).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NothingAttached(String);

pub fn spawn(input: Input, opts: &Options) -> Feed {
    let (tx, rx) = sync_channel(CHANNEL_UPDATES);
    let stop = Arc::new(AtomicBool::new(false));
    let (opts, flag) = (opts.clone(), stop.clone());
    thread::Builder::new()
        .name("mhpscope-source".into())
        .spawn(move || {
            let result = match input {
                Input::Live { duration } => live_source(&opts, duration, &tx, &flag),
                Input::File { path, follow } => file_source(&path, follow, &tx, &flag),
                Input::Stdin => {
                    let stdin = BufReader::with_capacity(recording::READ_BUFFER, io::stdin());
                    read_lines(Reader::new(stdin, "stdin".into()), false, &tx)
                }
            };
            if let Err(e) = result {
                let kind = if e.is::<NothingAttached>() {
                    FailureKind::NothingAttached
                } else {
                    FailureKind::Other
                };
                let _ = tx.send(Update::Failed(Failure {
                    kind,
                    message: format!("{e:#}"),
                }));
            }
        })
        .expect("spawning the source thread");
    Feed { rx, stop }
}

/// The consumer went away: not an error, the source just ends.
#[derive(Debug, thiserror::Error)]
#[error("the view stopped reading")]
struct Gone;

fn send(tx: &SyncSender<Update>, u: Update) -> Result<()> {
    tx.send(u).map_err(|_| Gone.into())
}

fn file_source(path: &Path, follow: bool, tx: &SyncSender<Update>, stop: &Arc<AtomicBool>) -> Result<()> {
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("opening {name}"))?;
    if follow {
        let tail = Tail {
            inner: file,
            stop: stop.clone(),
        };
        read_lines(Reader::new(BufReader::new(tail), name), true, tx)
    } else {
        let reader = Reader::new(BufReader::with_capacity(recording::READ_BUFFER, file), name);
        read_in_parallel(reader, tx)
    }
}

/// Threads that parse a whole file: as many as there are CPUs, up to 4.
fn parsers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// A whole file: its body parsed on several threads, in batches.
fn read_in_parallel<R: BufRead + Send>(mut reader: Reader<R>, tx: &SyncSender<Update>) -> Result<()> {
    let header = reader.header()?;
    if send(tx, Update::Header(Box::new(header))).is_err() {
        return Ok(());
    }
    let (input, name, lines, checks) = reader.into_body();
    let checks = checks.expect("checks come with the header");
    let end = parallel::read_body(input, &name, lines, &checks, parsers(), |batch| {
        send(tx, Update::Events(batch))
    });
    let last = match end {
        Ok(summary) => Update::Summary(Box::new(summary)),
        Err(Stop::Sink(_)) => return Ok(()),
        Err(Stop::Recording(e)) => match e.cut_short_warning() {
            Some(warning) => Update::Truncated(warning),
            None => return Err(e.into()),
        },
    };
    let _ = send(tx, last);
    Ok(())
}

/// A pipe or a followed file, line by line; events go in batches, handed on whenever the
/// input has nothing more waiting (so that a follower sees them at once).
fn read_lines<R: Read>(
    mut reader: Reader<BufReader<R>>,
    follow: bool,
    tx: &SyncSender<Update>,
) -> Result<()> {
    let result = (|| -> Result<()> {
        send(tx, Update::Header(Box::new(reader.header()?)))?;
        let mut batch = Vec::new();
        loop {
            let item = match reader.next_item() {
                Ok(item) => item,
                Err(e) => {
                    if !batch.is_empty() {
                        send(tx, Update::Events(std::mem::take(&mut batch)))?;
                    }
                    return match e.cut_short_warning() {
                        Some(warning) => send(tx, Update::Truncated(warning)),
                        None => Err(e.into()),
                    };
                }
            };
            match item {
                Some(Item::Event(ev)) => {
                    batch.push(ev);
                    if batch.len() >= BATCH_EVENTS || !reader.has_buffered() {
                        send(tx, Update::Events(std::mem::take(&mut batch)))?;
                    }
                }
                Some(Item::Summary(s)) => {
                    if !batch.is_empty() {
                        send(tx, Update::Events(std::mem::take(&mut batch)))?;
                    }
                    send(tx, Update::Summary(Box::new(s)))?;
                    // A followed file may be written again later; what was asked for is here.
                    if follow {
                        break;
                    }
                }
                None => break,
            }
        }
        Ok(())
    })();
    match result {
        Err(e) if e.is::<Gone>() => Ok(()),
        other => other,
    }
}

/// A file read as it grows: at its end, waits for more instead of returning end of input.
struct Tail<R> {
    inner: R,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Tail<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n > 0 || self.stop.load(Ordering::Relaxed) {
                return Ok(n);
            }
            thread::sleep(FOLLOW_POLL);
        }
    }
}

/// Nodes the kernel may put memory on (all possible ones: hot-add can bring a node online).
pub fn node_ids(frame: &Frame) -> Vec<i32> {
    let mut ids: Vec<i32> = frame.nodes.iter().map(|n| n.node).collect();
    ids.extend(frame.blocks.iter().filter_map(|b| b.node));
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

fn failure_lines(probes: &[ProbeStatus]) -> String {
    probes
        .iter()
        .map(|p| format!("  {}: {}", p.name, p.reason.as_deref().unwrap_or("attached")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Traces the running kernel. Its own tokio runtime: aya-log's reader and the signal handlers
/// need one, and the views may have none (top) or a busy one (serve).
fn live_source(
    opts: &Options,
    duration: Option<Duration>,
    tx: &SyncSender<Update>,
    stop: &AtomicBool,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tracing runtime")?;
    let result = rt.block_on(async {
        // Installed before anything is announced, so that a signal can never kill us between
        // "ready" and the summary.
        let mut signals = live::StopSignals::install()?;
        let host = Host::detect();
        let frame = frame::read(Path::new("/"))
            .context("reading the static frame (sysfs memory blocks, /proc/zoneinfo)")?;
        let mut tracer = loader::load(&host, opts);
        if tracer.attached() == 0 {
            return Err(NothingAttached(format!(
                "no probe could attach on this kernel ({}), so there is nothing to trace:\n{}\n\
                 `mhpscope probes` explains each probe",
                host.kernel_release,
                failure_lines(&tracer.probes)
            ))
            .into());
        }
        let nodes = node_ids(&frame);
        // The recording starts here: the programs begin as the start clock is read.
        tracer.arm().map_err(anyhow::Error::msg)?;
        let clock = live::clocks();
        let header = Header {
            format_version: recording::FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            layout: Layout {
                zone_names: tracer.facts.zone_names.clone(),
                page_size: frame.page_size,
                struct_page_size: tracer.facts.struct_page_size,
                block_size_bytes: frame.block_size_bytes,
                page_flags: tracer.facts.page_flags.clone(),
                features: tracer.facts.features,
            },
            host,
            clock,
            probes: tracer.probes.clone(),
            frame,
        };
        // Decoded events are checked as a recording's are: one the kernel side got wrong is
        // dropped and counted as undecodable, never handed to the model.
        let limits = validate::Limits::new(&header.layout);
        let mut rejected = 0u64;
        send(tx, Update::Header(Box::new(header)))?;
        let started = Instant::now();
        // A drain's events go over as one update: one wakeup of the view per drain.
        let batch = RefCell::new(Vec::new());
        let (reason, counts) = live::run(
            &mut tracer,
            &nodes,
            &mut signals,
            stop,
            duration,
            |ev| {
                match validate::event(&ev, &limits) {
                    Ok(()) => batch.borrow_mut().push(ev),
                    Err(e) => {
                        rejected += 1;
                        warn!(
                            "dropped an impossible event from the kernel side (counted as undecodable): {e}"
                        );
                    }
                }
                Ok(())
            },
            || {
                let evs = batch.take();
                if evs.is_empty() {
                    Ok(())
                } else {
                    send(tx, Update::Events(evs))
                }
            },
        )
        .await?;
        let summary = Summary {
            events: counts.events.saturating_sub(rejected),
            lost_events: tracer.lost_events(),
            undecodable_events: counts.undecodable + rejected,
            duration_ns: started.elapsed().as_nanos() as u64,
            end_reason: reason,
            frame: frame::read(Path::new("/")).ok(),
        };
        send(tx, Update::Summary(Box::new(summary)))
    });
    match result {
        Err(e) if e.is::<Gone>() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_pick_the_source() {
        assert!(Input::from_args(None, false, None).is_live());
        assert!(matches!(
            Input::from_args(Some("-".into()), false, None),
            Input::Stdin
        ));
        let f = Input::from_args(Some("rec.ndjson".into()), true, None);
        assert!(matches!(f, Input::File { follow: true, .. }) && !f.is_replay());
        assert!(Input::from_args(Some("rec.ndjson".into()), false, None).is_replay());
    }

    #[test]
    fn tail_waits_for_growth_until_stopped() {
        let dir = std::env::temp_dir().join(format!("mhpscope-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("grow.txt");
        std::fs::write(&path, "first\n").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tail = BufReader::new(Tail {
            inner: File::open(&path).unwrap(),
            stop: stop.clone(),
        });
        let mut line = String::new();
        tail.read_line(&mut line).unwrap();
        assert_eq!(line, "first\n");

        let writer = {
            let path = path.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(250));
                let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                io::Write::write_all(&mut f, b"second\n").unwrap();
            })
        };
        line.clear();
        tail.read_line(&mut line).unwrap();
        assert_eq!(line, "second\n", "the reader waited for the appended line");
        writer.join().unwrap();

        stop.store(true, Ordering::Relaxed);
        line.clear();
        assert_eq!(tail.read_line(&mut line).unwrap(), 0, "stopped: end of input");
        std::fs::remove_dir_all(dir).ok();
    }
}
