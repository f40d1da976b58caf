//! The core without the eBPF toolchain: the recording format, model, report and views build and
//! test with rustup's stable toolchain alone. The step hides Debian's rustc-web and bpf-linker
//! (which `cargo xtask setup` installed) by running cargo with a PATH of rustup's toolchain and
//! the system's other programs (the C linker, shells, the tools tests run), and builds
//! probe-user without its `ebpf` feature.

use crate::util;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tools left out of the scratch PATH: Debian's Rust toolchain and bpf-linker (names starting so).
const HIDDEN: &[&str] = &[
    "rustc",
    "rustdoc",
    "cargo",
    "rust-",
    "bpf-linker",
    "clippy",
    "rustfmt",
];

pub fn run() -> Result<()> {
    let bin = scratch_bin().context("linking the system's tools into a scratch PATH")?;
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
        "test: the core without the eBPF toolchain: PATH={} (rustup's toolchain, then the system's \
         programs without any rustc, cargo or bpf-linker)",
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

/// A directory with every program of the system PATH (the C linker, the shells and tools the
/// tests run) except the hidden ones, linked from where they are.
fn scratch_bin() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("mhpscope-core-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let system = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&system) {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if HIDDEN.iter().any(|h| name.starts_with(h)) {
                continue;
            }
            let link = dir.join(&*name);
            // The first in PATH order wins, as a shell would find it.
            if !link.exists() && e.path().is_file() {
                std::os::unix::fs::symlink(e.path(), &link)?;
            }
        }
    }
    Ok(dir)
}

fn which(tool: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
