//! The `mhpscope` command line.
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use mhpscope::{
    commands,
    kernel::loader::Options,
    kernel::probes::Method,
    recording::source::Input,
    recording::stream::{Failure, FailureKind},
    views::answers::Thresholds,
    views::schema,
    views::serve,
    views::tui,
    views::ViewOptions,
};

#[derive(Parser)]
#[command(
    name = "mhpscope",
    version,
    about = "Observe Linux memory hotplug with eBPF",
    after_help = "Exit status: 0 done (also when the output pipe closed early); 1 an error; 2 a usage \
                  error; 3 no probe could attach, so there was nothing to trace (`mhpscope probes` \
                  says why)."
)]
struct Cli {
    /// More output: -v shows kernel-side diagnostics and probe warnings, -vv debug detail.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Do not use these attach methods even where they work (fentry, kprobe, raw_tracepoint,
    /// tracepoint, caller): shows and tests the fallbacks.
    #[arg(long, global = true, value_delimiter = ',', value_enum)]
    avoid: Vec<Method>,
    /// Leave these probes out (names as `mhpscope probes` lists them), e.g. `mm_page_alloc`
    /// (it runs on every page allocation) for the lowest cost on a busy host.
    #[arg(long, global = true, value_delimiter = ',', value_parser = parse_probe)]
    skip: Vec<String>,
    /// Turn on probes that are off by default because they run on a hot path:
    /// `pageblock_pfn_to_page` counts slow-path calls per zone (the cost of a zone that is
    /// not contiguous), at 8-10% of an online/offline cycle (BENCHMARKS.md).
    #[arg(long, global = true, value_delimiter = ',', value_parser = parse_off_by_default)]
    with: Vec<String>,
    /// Show mhpscope's own cost in the kernel (runs and time of its eBPF programs): turns on
    /// the kernel's BPF run-time statistics (BPF_ENABLE_STATS) while mhpscope runs. They then
    /// count for every BPF program on the host; the kernel turns them off when mhpscope exits.
    #[arg(long, global = true)]
    self_cost: bool,
    /// A hot-add whose memmap takes more than this share of a source node's free memory is a
    /// finding (10% or 0.1).
    #[arg(long, global = true, default_value = "10%", value_parser = parse_share)]
    headroom_warn: f64,
    /// Hot-added blocks still offline this long after their add are a finding.
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    online_grace: Duration,
    /// Keep the latest N of each history (operations, attempts, span and contiguity changes,
    /// findings, memmap inits) in full; counts stay exact. 0 keeps everything.
    #[arg(long, global = true, default_value_t = mhpscope::model::DEFAULT_KEEP)]
    keep: usize,
    #[command(subcommand)]
    command: Command,
}

/// Where events come from, for every view.
#[derive(Args)]
struct InputArgs {
    /// Read a recording instead of tracing the running kernel; `-` reads stdin.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// With --input FILE: keep reading as the file grows, until its summary line.
    #[arg(short, long, requires = "input")]
    follow: bool,
}

impl InputArgs {
    fn into_input(self, duration: Option<Duration>) -> Input {
        Input::from_args(self.input, self.follow, duration)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Record hotplug events to NDJSON (header, one line per event, summary).
    Record {
        /// Output file; `-` or absent for stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Stop after this long (e.g. 30s, 5m); default: until SIGINT/SIGTERM.
        #[arg(short, long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
    },
    /// Print per-node, per-block and per-zone tables, live or from a recording.
    Report {
        #[command(flatten)]
        input: InputArgs,
        /// How long to trace live.
        #[arg(short, long, value_parser = humantime::parse_duration, default_value = "10s", conflicts_with = "input")]
        duration: Duration,
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
        /// Keep every column at full width instead of wrapping the tables to the terminal.
        #[arg(long)]
        wide: bool,
        /// Refuse a recording cut short (no summary line) instead of showing what it holds
        /// with a warning.
        #[arg(long)]
        strict: bool,
    },
    /// A live view in the terminal: nodes, block map, zones, events, probes.
    Top {
        #[command(flatten)]
        input: InputArgs,
        /// Replay speed of a recording read whole (2 = twice as fast); keys + and - change it.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// Serve Prometheus/OpenMetrics metrics over HTTP at /metrics.
    Serve {
        #[command(flatten)]
        input: InputArgs,
        /// Address to listen on (loopback by default: the metrics describe the host).
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: SocketAddr,
        /// Replay a recording read whole at this speed instead of all at once.
        #[arg(long)]
        speed: Option<f64>,
    },
    /// List every probe: attached or not, how, and why not.
    Probes {
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the recording lines or of `report --json`.
    Schema {
        #[arg(value_enum)]
        of: schema::Of,
    },
    /// Write a synthetic recording (no kernel needed): a host with BLOCKS 128 MiB blocks online,
    /// then CYCLES blocks above them hot-added, onlined, offlined and removed. For scale tests
    /// and for trying the views.
    Synth {
        #[arg(long, default_value_t = 1_000_000)]
        blocks: u64,
        #[arg(long, default_value_t = 4)]
        nodes: u64,
        #[arg(long, default_value_t = 1000)]
        cycles: u64,
        /// Cycle the same SLOTS blocks over and over (a VM resizing) instead of a new block
        /// each cycle (0).
        #[arg(long, default_value_t = 0)]
        slots: u64,
        /// Output file; `-` or absent for stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn parse_probe(name: &str) -> Result<String, String> {
    match mhpscope::kernel::probes::PROBES.iter().find(|p| p.name == name) {
        Some(p) => Ok(p.name.to_string()),
        None => {
            let names: Vec<&str> = mhpscope::kernel::probes::PROBES.iter().map(|p| p.name).collect();
            Err(format!("no probe {name:?}; the probes are: {}", names.join(", ")))
        }
    }
}

fn parse_off_by_default(name: &str) -> Result<String, String> {
    let probe = parse_probe(name)?;
    if mhpscope::kernel::probes::off_by_default(&probe).is_some() {
        return Ok(probe);
    }
    let names: Vec<&str> = mhpscope::kernel::probes::OFF_BY_DEFAULT
        .iter()
        .map(|(n, _)| *n)
        .collect();
    Err(format!(
        "{name:?} is on by default; --with takes those that are not: {}",
        names.join(", ")
    ))
}

/// "10%" or "0.1".
fn parse_share(s: &str) -> Result<f64, String> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a share (10% or 0.1)"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} is not between 0% and 100%"))
    }
}

/// Exit status when no probe could attach (clap's usage errors are 2).
const EXIT_NOTHING_ATTACHED: u8 = 3;

fn main() -> ExitCode {
    // `mhpscope generate`: man pages and completions for packaging, outside the documented CLI.
    if let Some(code) = mhpscope::generate::from_args(<Cli as clap::CommandFactory>::command) {
        return code;
    }
    let cli = Cli::parse();
    let view = ViewOptions {
        thresholds: Thresholds {
            headroom_warn: cli.headroom_warn,
            online_grace_ns: cli.online_grace.as_nanos().min(u64::MAX as u128) as u64,
            now_ns: 0,
        },
        keep: cli.keep,
    };
    let level = match cli.verbose {
        0 => log::LevelFilter::Error,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .parse_env("MHPSCOPE_LOG")
        .init();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            let opts = Options {
                avoid: cli.avoid,
                skip: cli.skip,
                with: cli.with,
                self_cost: cli.self_cost,
            };
            rt.block_on(async {
                match cli.command {
                    Command::Record { output, duration } => commands::record(&opts, output, duration),
                    Command::Report {
                        input,
                        duration,
                        json,
                        wide,
                        strict,
                    } => commands::report(&opts, input.into_input(Some(duration)), json, wide, strict, view),
                    Command::Top { input, speed } => tui::run(&opts, input.into_input(None), speed, view),
                    Command::Serve { input, listen, speed } => {
                        serve::run(&opts, input.into_input(None), listen, speed, view).await
                    }
                    Command::Probes { json } => commands::probes(&opts, json),
                    Command::Schema { of } => schema::print(of),
                    Command::Synth {
                        blocks,
                        nodes,
                        cycles,
                        slots,
                        output,
                    } => commands::synth(output, blocks, nodes, cycles, slots),
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Output into a closed pipe (`| head`): the reader has what it wanted.
        Err(e) if commands::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mhpscope: error: {e:#}");
            let nothing_attached = e
                .downcast_ref::<Failure>()
                .is_some_and(|f| f.kind == FailureKind::NothingAttached);
            if nothing_attached {
                ExitCode::from(EXIT_NOTHING_ATTACHED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
