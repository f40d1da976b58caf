//! `cargo xtask setup`: installs the Debian packages and bpf-linker the build and lab need.
//! Idempotent and fast when everything is present.

use crate::util::{self, is_root};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Debian's rustc/cargo with a prebuilt `core` for bpfel (no build-std), LLVM 22 for
/// bpf-linker, and the lab's qemu/busybox/cpio.
pub const DEB_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "libpolly-22-dev",
    "zlib1g-dev",
    "libzstd-dev",
    "qemu-system-x86",
    "busybox-static",
    "cpio",
];

/// bpf-linker's default feature wants LLVM 23, which Debian does not have.
const BPF_LINKER_INSTALL: &str =
    "LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --no-default-features --features llvm-22";

pub fn run() -> Result<()> {
    let t0 = Instant::now();
    let missing = missing_packages()?;
    let linker = find_bpf_linker();
    println!(
        "setup: checked {} Debian packages ({}), bpf-linker ({})",
        DEB_PACKAGES.len(),
        if missing.is_empty() {
            "all installed".to_string()
        } else {
            format!("missing: {}", missing.join(" "))
        },
        match &linker {
            Some(p) => p.display().to_string(),
            None => "missing".into(),
        }
    );
    if missing.is_empty() && linker.is_some() {
        println!("setup: nothing to do ({})", util::secs(t0.elapsed()));
        return Ok(());
    }

    if !is_root() {
        eprintln!("setup: something is missing; run as root:");
        if !missing.is_empty() {
            eprintln!("  apt-get update");
            eprintln!(
                "  DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
                missing.join(" ")
            );
        }
        if linker.is_none() {
            eprintln!("  {BPF_LINKER_INSTALL}");
        }
        bail!("setup: missing dependencies (not root, cannot install)");
    }

    if !missing.is_empty() {
        apt_update()?;
        println!("setup: apt-get install -y {}", missing.join(" "));
        util::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        let still = missing_packages()?;
        if !still.is_empty() {
            bail!("setup: still missing after apt-get install: {}", still.join(" "));
        }
    }
    if linker.is_none() {
        println!("setup: installing bpf-linker from crates.io (takes about 5 minutes on 2 cores)");
        let t = Instant::now();
        util::run(
            Command::new(util::cargo())
                .args([
                    "install",
                    "bpf-linker",
                    "--no-default-features",
                    "--features",
                    "llvm-22",
                ])
                .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
        )
        .context("installing bpf-linker")?;
        let found = find_bpf_linker().context("bpf-linker installed but not found")?;
        println!(
            "setup: bpf-linker installed at {} ({})",
            found.display(),
            util::secs(t.elapsed())
        );
    }
    println!("setup: done ({})", util::secs(t0.elapsed()));
    Ok(())
}

pub fn apt_update() -> Result<()> {
    println!("setup: apt-get update");
    util::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn missing_packages() -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for p in DEB_PACKAGES {
        let out = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", p])
            .stdin(Stdio::null())
            .output()
            .context("running dpkg-query (is this a Debian system?)")?;
        // Not installed at all → non-zero exit; removed but configured → another status.
        if !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() != "install ok installed" {
            missing.push(p.to_string());
        }
    }
    Ok(missing)
}

/// bpf-linker from PATH or `$CARGO_HOME/bin`, if `--version` works.
pub fn find_bpf_linker() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("bpf-linker")];
    if let Some(b) = util::cargo_bin_dir() {
        candidates.push(b.join("bpf-linker"));
    }
    // Also the default ~/.cargo/bin when CARGO_HOME points elsewhere.
    if let Some(h) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(h).join(".cargo/bin/bpf-linker"));
    }
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}
