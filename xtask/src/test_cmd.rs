//! `cargo xtask test`: setup, unit tests, the dashboards against a real Prometheus, the Debian
//! package's install test, then every lab scenario on every lab kernel, each followed by the
//! checks of mhpscope's report against that scenario's ground truth.

use crate::{core_test, dashboard_test, dist_test, lab, lab::checks, setup, util, vm::kernel};
use anyhow::{bail, Result};
use std::process::Command;
use std::time::Instant;

pub fn run(args: &lab::LabArgs) -> Result<()> {
    let t0 = Instant::now();
    setup::run()?;
    // Style first: they fail in seconds.
    println!("test: cargo fmt --check");
    util::run(
        Command::new(util::cargo())
            .current_dir(util::repo_root())
            .args(["fmt", "--all", "--check"]),
    )?;
    println!("test: cargo clippy --all-targets -- -D warnings");
    util::run(
        Command::new(util::cargo())
            .current_dir(util::repo_root())
            .args(["clippy", "--all-targets", "--", "-D", "warnings"])
            .env("PATH", util::path_with_cargo_bin()),
    )?;
    core_test::run()?;
    println!("test: cargo test --workspace");
    util::run(
        Command::new(util::cargo())
            .current_dir(util::repo_root())
            .args(["test", "--workspace"])
            .env("PATH", util::path_with_cargo_bin()),
    )?;
    // Benchmarks are built, not timed: timing belongs to `cargo bench` and `cargo xtask bench`.
    println!("test: cargo bench --no-run");
    util::run(
        Command::new(util::cargo())
            .current_dir(util::repo_root())
            .args(["bench", "--no-run", "-p", "probe-user"])
            .env("PATH", util::path_with_cargo_bin()),
    )?;
    if args.no_mhpscope {
        bail!("test: --no-mhpscope leaves nothing to check");
    }
    let mut total = checks::Tally::default();
    println!("test: dashboards against prometheus");
    match dashboard_test::run() {
        Ok(t) => total.add(&t),
        Err(e) => {
            println!("FAIL dashboards: {e:#}");
            total.failed += 1;
        }
    }
    println!("test: the Debian package, unpacked into a scratch root");
    match dist_test::run() {
        Ok(t) => total.add(&t),
        Err(e) => {
            println!("FAIL dist: {e:#}");
            total.failed += 1;
        }
    }
    let kernels: Vec<String> = match &args.kernel {
        Some(k) => vec![k.clone()],
        None => kernel::KERNELS.iter().map(|k| k.name.to_string()).collect(),
    };
    for k in &kernels {
        match lab::run(args, k) {
            Ok(runs) => {
                for (plan, truth) in runs {
                    println!("test: checks for {} on {k}", plan.name);
                    let t = checks::run(plan, &truth, &lab::out_dir(k, plan.name));
                    total.add(&t);
                }
            }
            Err(e) => {
                // Keep the summary line CI greps for, even when a scenario itself broke.
                println!("FAIL lab.{k}: {e:#}");
                total.failed += 1;
            }
        }
    }
    println!(
        "lab: {} passed, {} failed against ground truth; sanity: {} passed, {} failed ({} kernel(s), {})",
        total.passed,
        total.failed,
        total.sanity_passed,
        total.sanity_failed,
        kernels.len(),
        util::secs(t0.elapsed())
    );
    if total.all_failed() > 0 {
        bail!("{} lab check(s) failed", total.all_failed());
    }
    Ok(())
}
