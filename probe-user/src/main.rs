//! The `mhpscope` command line.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use mhpscope::{commands, loader::Options, probes::Method};

fn parse_method(s: &str) -> Result<Method, String> {
    Method::parse(s).ok_or_else(|| format!("unknown method {s:?} (fentry, kprobe, tracepoint, caller)"))
}

#[derive(Parser)]
#[command(name = "mhpscope", version, about = "Observe Linux memory hotplug with eBPF")]
struct Cli {
    /// More output: -v shows kernel-side diagnostics and probe warnings, -vv debug detail.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Do not use these attach methods even where they work (fentry, kprobe, tracepoint,
    /// caller): shows and tests the fallbacks.
    #[arg(long, global = true, value_delimiter = ',', value_parser = parse_method)]
    avoid: Vec<Method>,
    #[command(subcommand)]
    command: Command,
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
        /// Read a recording instead of tracing live.
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// How long to trace live.
        #[arg(short, long, value_parser = humantime::parse_duration, default_value = "10s", conflicts_with = "input")]
        duration: Duration,
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// List every probe: attached or not, how, and why not.
    Probes {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            let opts = Options { avoid: cli.avoid };
            rt.block_on(async {
                match cli.command {
                    Command::Record { output, duration } => commands::record(&opts, output, duration).await,
                    Command::Report {
                        input,
                        duration,
                        json,
                    } => commands::report(&opts, input, duration, json).await,
                    Command::Probes { json } => commands::probes(&opts, json).await,
                }
            })
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mhpscope: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
