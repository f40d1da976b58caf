//! `cargo xtask test`: setup, unit tests, the lab, then the checks.

use crate::{checks, lab, setup, util};
use anyhow::{bail, Result};
use std::process::Command;

pub fn run(args: &lab::LabArgs) -> Result<()> {
    setup::run()?;
    println!("test: cargo test --workspace");
    util::run(
        Command::new(util::cargo())
            .current_dir(util::repo_root())
            .args(["test", "--workspace"])
            .env("PATH", util::path_with_cargo_bin()),
    )?;
    let truth = match lab::run(args) {
        Ok(t) => t,
        Err(e) => {
            // Keep the summary line CI greps for, even when the scenario itself broke.
            println!("FAIL lab.scenario: {e:#}");
            println!("lab: 0 passed, 1 failed");
            return Err(e);
        }
    };
    if args.no_mhpscope {
        bail!("test: --no-mhpscope leaves nothing to check");
    }
    checks::run(&truth, &lab::out_dir(&args.kernel))
}
