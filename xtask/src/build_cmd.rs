//! `cargo xtask build`: builds the mhpscope binary (probe-user's build script builds the eBPF
//! object with Debian's toolchain).

use crate::util;
use anyhow::Result;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

pub fn run(release: bool) -> Result<PathBuf> {
    let t = Instant::now();
    let mut cmd = Command::new(util::cargo());
    cmd.current_dir(util::repo_root())
        .args(["build", "-p", "probe-user"]);
    if release {
        cmd.arg("--release");
    }
    // A bpf-linker just installed by setup may only be in $CARGO_HOME/bin.
    cmd.env("PATH", util::path_with_cargo_bin());
    println!("build: {}", util::describe(&cmd));
    util::run(&mut cmd)?;
    let bin = binary_path(release);
    anyhow::ensure!(bin.exists(), "build succeeded but {} is missing", bin.display());
    println!("build: {} ({})", bin.display(), util::secs(t.elapsed()));
    Ok(bin)
}

pub fn binary_path(release: bool) -> PathBuf {
    util::repo_root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("mhpscope")
}
