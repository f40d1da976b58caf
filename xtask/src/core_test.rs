//! The core without the eBPF toolchain: the recording format, model, report and views build and
//! test with rustup's stable toolchain alone. The step hides Debian's rustc-web and bpf-linker
//! (which `cargo xtask setup` installed) by running cargo with a PATH of rustup's toolchain and
//! the C linker only, and builds probe-user without its `ebpf` feature.

use crate::util;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What linking needs besides the Rust toolchain.
const LINK_TOOLS: &[&str] = &["cc", "ld", "as", "ar"];

pub fn run() -> Result<()> {
    let bin = scratch_bin()?;
    let toolchain = Path::new(&util::cargo())
        .parent()
        .map(Path::to_path_buf)
        .context("the cargo running xtask has no directory")?;
    let path = std::env::join_paths([toolchain.clone(), bin.clone()])?;
    for tool in ["bpf-linker", "rustc"] {
        if let Some(found) = which(tool, &path) {
            if tool == "bpf-linker" || !found.starts_with(&toolchain) {
                bail!("{tool} is still reachable at {}", found.display());
            }
        }
    }
    println!(
        "test: the core without the eBPF toolchain: PATH={} (no bpf-linker, no Debian rustc)",
        path.to_string_lossy()
    );
    let result = util::run(
        Command::new(toolchain.join("cargo"))
            .current_dir(util::repo_root())
            .args([
                "test",
                "-p",
                "probe-common",
                "-p",
                "probe-user",
                "--no-default-features",
            ])
            .env("PATH", &path)
            // build.rs would look here for Debian's cargo: make sure nothing finds it.
            .env("MHPSCOPE_BPF_CARGO", "/nonexistent/cargo"),
    );
    let _ = std::fs::remove_dir_all(&bin);
    result
}

/// A directory holding only the C linker tools, linked from where they are.
fn scratch_bin() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("mhpscope-core-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let system = std::env::var_os("PATH").unwrap_or_default();
    for tool in LINK_TOOLS {
        let found = which(tool, &system).with_context(|| format!("no {tool} in PATH"))?;
        let link = dir.join(tool);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&found, &link)?;
    }
    Ok(dir)
}

fn which(tool: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
