//! `cargo xtask dist`: the Debian package, target/debian/mhpscope_VERSION-1_ARCH.deb, made by
//! cargo-deb from probe-user's `[package.metadata.deb]`: the release binary, man pages and
//! bash/zsh/fish completions generated from the binary's own command line (`mhpscope generate`,
//! into target/dist/), and the systemd unit of probe-user/packaging/systemd/.

use crate::{build_cmd, setup, util};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Where the generated pages and completions go; the package's assets name them there.
pub fn generated_dir() -> PathBuf {
    util::repo_root().join("target").join("dist")
}

/// The shells whose completions the package carries.
pub const SHELLS: [&str; 3] = ["bash", "zsh", "fish"];

/// Builds the package; returns its path.
pub fn run() -> Result<PathBuf> {
    let t0 = Instant::now();
    setup::dist_tools()?;
    let bin = build_cmd::run(true)?;
    generate(&bin, &generated_dir())?;
    let deb = cargo_deb()?;
    println!("dist: {} ({})", deb.display(), util::secs(t0.elapsed()));
    Ok(deb)
}

/// Man pages into `out/man`, completions into `out/completions`, each directory emptied first so
/// that a page of a command that no longer exists is not packaged.
fn generate(bin: &Path, out: &Path) -> Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
    }
    let pages = util::output(Command::new(bin).args(["generate", "man"]).arg(&man))?;
    for shell in SHELLS {
        util::output(
            Command::new(bin)
                .args(["generate", "completions", shell])
                .arg(&completions),
        )?;
    }
    println!(
        "dist: {} man pages in {}, {} completions in {}",
        pages.lines().count(),
        man.display(),
        SHELLS.join("/"),
        completions.display()
    );
    Ok(())
}

/// `cargo deb --no-build` (the release build above is the one packaged); the package's path is
/// the last line cargo-deb prints.
fn cargo_deb() -> Result<PathBuf> {
    let mut cmd = Command::new(util::cargo());
    cmd.current_dir(util::repo_root())
        .args(["deb", "-p", "probe-user", "--no-build"])
        .env("PATH", util::path_with_cargo_bin())
        .stdin(Stdio::null());
    println!("dist: {}", util::describe(&cmd));
    let out = cmd
        .output()
        .context("cannot start `cargo deb` (cargo xtask setup installs it)")?;
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        // cargo-deb warns about every asset under the target dir but outside target/release/
        // that it "will not build": ours are generated above, on purpose.
        if !(line.contains("Only source paths starting with exactly 'target/release/'")
            && line.contains("target/dist/"))
        {
            eprintln!("{line}");
        }
    }
    if !out.status.success() {
        bail!("`{}` failed ({})", util::describe(&cmd), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .with_context(|| format!("cargo deb printed no package path: {stdout}"))?;
    anyhow::ensure!(deb.exists(), "cargo deb said {} but it is missing", deb.display());
    Ok(deb)
}
