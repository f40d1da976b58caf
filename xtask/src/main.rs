//! mhpscope's developer automation: `cargo xtask <setup|build|lab|test|dashboards|dist|bench|scale|check>`.

mod bench;
mod build_cmd;
mod core_test;
mod dashboard_test;
mod dist;
mod dist_test;
mod lab;
mod setup;
mod test_cmd;
mod util;
mod vm;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xtask", about = "Build, lab and test automation for mhpscope")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the missing build and lab dependencies (idempotent; needs root to install).
    Setup,
    /// Build the mhpscope binary (probe-user and its eBPF object).
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Boot a Debian kernel in qemu and run the memory hotplug scenario under mhpscope.
    Lab(lab::LabArgs),
    /// Unit tests, the dashboards, then the lab and the checks of mhpscope's report against the
    /// ground truth.
    Test(lab::LabArgs),
    /// Run every query of dashboards/*.json against a real Prometheus scraping `mhpscope serve`
    /// on the test recordings.
    Dashboards,
    /// The Debian package (target/debian/mhpscope_*.deb): binary, man pages, completions, and
    /// the systemd unit of `mhpscope serve`.
    Dist {
        /// Then unpack it into a scratch root and test what it installs.
        #[arg(long)]
        test: bool,
    },
    /// Overhead in a guest: online/offline blocks untraced, under mhpscope, under function_graph.
    Bench(bench::BenchArgs),
    /// A million memory blocks: time and peak memory of `report` on a synthetic recording.
    Scale(bench::scale::ScaleArgs),
    /// The core (recording, model, views) built and tested without the eBPF toolchain.
    Core,
    /// Left running: serve fed a million block cycles, report of them, serve under scrapers.
    Soak(bench::soak::SoakArgs),
    /// Re-run the checks on the artifacts of the last lab run of one scenario.
    Check {
        #[arg(long, default_value = "6.1")]
        kernel: String,
        #[arg(long, default_value = "hotplug")]
        scenario: String,
    },
}

fn main() -> ExitCode {
    let r = match Cli::parse().cmd {
        Cmd::Setup => setup::run(),
        Cmd::Build { release } => build_cmd::run(release).map(|_| ()),
        Cmd::Lab(args) => {
            let kernel = args
                .kernel
                .clone()
                .unwrap_or_else(|| vm::kernel::DEFAULT.to_string());
            if args.top {
                lab::run_with_top(&args, &kernel)
            } else {
                lab::run(&args, &kernel).map(|_| ())
            }
        }
        Cmd::Test(args) => test_cmd::run(&args),
        Cmd::Bench(args) => bench::run(&args),
        Cmd::Scale(args) => bench::scale::run(&args),
        Cmd::Soak(args) => bench::soak::run(&args),
        Cmd::Dashboards => dashboard_test::run_cmd(),
        Cmd::Core => core_test::run(),
        Cmd::Dist { test: false } => dist::run().map(|_| ()),
        Cmd::Dist { test: true } => dist_test::run_cmd(),
        Cmd::Check { kernel, scenario } => {
            lab::checks::run_from_files(&scenario, &lab::out_dir(&kernel, &scenario))
        }
    };
    // The error chain is the useful part; a backtrace (RUST_BACKTRACE is often set) is noise.
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
