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
    // ZONE_DEVICE lab: ndctl/daxctl go into the initramfs; the kernel's .ko.xz/.ko.zst are unpacked.
    "ndctl",
    "daxctl",
    "xz-utils",
    "zstd",
    // Front-end tests: `mhpscope top` under tmux, dashboards against a real Prometheus.
    "tmux",
    "prometheus",
];

/// What `cargo xtask dist` and its install test need besides the build: dpkg-shlibdeps (the
/// package's `Depends: $auto`), man and groff to render the installed pages, zsh to parse its
/// completions (fish, with python3 and 30 MB, is left out: its check is skipped). Installed by
/// [`dist_tools`], which only dist runs. Not systemd: `systemd-analyze verify` is used where it
/// is installed, but installing systemd into a CI machine or container that does not run it
/// would bring an init system and its postinst along for one check.
pub const DIST_PACKAGES: &[&str] = &["dpkg-dev", "man-db", "groff-base", "zsh"];

/// cargo-deb from crates.io; a major version whose `[package.metadata.deb]` we know.
const CARGO_DEB_INSTALL: &[&str] = &["install", "cargo-deb", "--locked", "--version", "^3"];

/// bpf-linker's default feature wants LLVM 23, which Debian does not have.
const BPF_LINKER_INSTALL: &str =
    "LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --no-default-features --features llvm-22";

pub fn run() -> Result<()> {
    let t0 = Instant::now();
    lab_suites()?;
    let missing = missing_packages(DEB_PACKAGES)?;
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
        // qemu's binary packages break each other across versions: qemu-system-x86 must come
        // from the suite of the qemu-utils already installed (bookworm-backports on some images).
        let (qemu, rest): (Vec<String>, Vec<String>) =
            missing.iter().cloned().partition(|p| p == "qemu-system-x86");
        apt_install(&rest, None)?;
        apt_install(&qemu, qemu_suite()?)?;
        let still = missing_packages(DEB_PACKAGES)?;
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

/// The lab's newer kernels come from these suites. They are added to apt's sources pinned at
/// priority 1, so that only an explicit `apt-get download pkg=version` ever takes from them.
const LAB_SUITES: &[&str] = &["bookworm-backports", "sid"];
const LAB_SOURCES: &str = "/etc/apt/sources.list.d/mhpscope-lab.sources";
const LAB_PIN: &str = "/etc/apt/preferences.d/mhpscope-lab";

/// Adds the lab suites, using the Debian mirror the system's own sources already name.
fn lab_suites() -> Result<()> {
    if std::path::Path::new(LAB_SOURCES).exists() && std::path::Path::new(LAB_PIN).exists() {
        return Ok(());
    }
    let mirror = debian_mirror().unwrap_or_else(|| "http://deb.debian.org/debian".to_string());
    let sources = format!(
        "# Added by `cargo xtask setup` for the lab's guest kernels (pinned to priority 1 in {LAB_PIN}).\n\
         Types: deb\nURIs: {mirror}\nSuites: {}\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        LAB_SUITES.join(" ")
    );
    let pin: String = LAB_SUITES
        .iter()
        .map(|s| format!("Package: *\nPin: release n={s}\nPin-Priority: 1\n\n"))
        .collect();
    if !is_root() {
        eprintln!("setup: the lab kernels need these apt sources; run as root:");
        eprintln!("  cat > {LAB_SOURCES} <<'EOF'\n{sources}EOF");
        eprintln!("  cat > {LAB_PIN} <<'EOF'\n{pin}EOF");
        eprintln!("  apt-get update");
        bail!("setup: the lab's apt sources are missing (not root, cannot add them)");
    }
    println!(
        "setup: adding {} to apt sources ({LAB_SOURCES}, pinned in {LAB_PIN})",
        LAB_SUITES.join(", ")
    );
    std::fs::write(LAB_PIN, pin).with_context(|| format!("writing {LAB_PIN}"))?;
    std::fs::write(LAB_SOURCES, sources).with_context(|| format!("writing {LAB_SOURCES}"))?;
    apt_update()
}

/// The first `URIs:`/`deb` address serving bookworm in the system's sources.
fn debian_mirror() -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(dir.flatten().map(|e| e.path()));
    }
    files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "sources" || e == "list"))
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|text| mirror_in(&text))
}

fn mirror_in(text: &str) -> Option<String> {
    // deb822 stanzas, then one-line entries.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
            if suites.split_whitespace().any(|s| s == "bookworm") {
                return uris.split_whitespace().next().map(str::to_string);
            }
        }
    }
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().filter(|w| !w.starts_with('[')).collect();
        (f.len() >= 3 && f[0] == "deb" && f[2] == "bookworm").then(|| f[1].to_string())
    })
}

pub fn apt_update() -> Result<()> {
    println!("setup: apt-get update");
    util::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn apt_install(packages: &[String], suite: Option<&str>) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    let target: Vec<&str> = suite.map(|s| vec!["-t", s]).unwrap_or_default();
    let args: Vec<&str> = target
        .iter()
        .copied()
        .chain(packages.iter().map(String::as_str))
        .collect();
    println!("setup: apt-get install -y {}", args.join(" "));
    util::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&target)
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The suite qemu must be installed from: bookworm-backports when the installed qemu-utils is a
/// backport (its version carries `~bpo`), else the default.
fn qemu_suite() -> Result<Option<&'static str>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", "qemu-utils"])
        .stdin(Stdio::null())
        .output()
        .context("running dpkg-query")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(backport_of(&text).then_some("bookworm-backports"))
}

/// `dpkg-query -f='${Status} ${Version}'` output of an installed backport.
fn backport_of(status_version: &str) -> bool {
    status_version.starts_with("install ok installed") && status_version.contains("~bpo")
}

fn missing_packages(packages: &[&str]) -> Result<Vec<String>> {
    let mut missing = Vec::new();
    for p in packages {
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

/// The dist step: [`DIST_PACKAGES`] and cargo-deb, installed when missing (needs root for the
/// packages). Fast when everything is there.
pub fn dist_tools() -> Result<()> {
    let missing = missing_packages(DIST_PACKAGES)?;
    let cargo_deb = find_cargo_deb();
    println!(
        "setup: dist: checked {} Debian packages ({}), cargo-deb ({})",
        DIST_PACKAGES.len(),
        if missing.is_empty() {
            "all installed".to_string()
        } else {
            format!("missing: {}", missing.join(" "))
        },
        cargo_deb.as_deref().unwrap_or("missing")
    );
    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "setup: dist needs {}; run as root: apt-get install -y {}",
                missing.join(" "),
                missing.join(" ")
            );
        }
        apt_update()?;
        apt_install(&missing, None)?;
        let still = missing_packages(DIST_PACKAGES)?;
        if !still.is_empty() {
            bail!("setup: still missing after apt-get install: {}", still.join(" "));
        }
    }
    if cargo_deb.is_none() {
        println!("setup: installing cargo-deb from crates.io (a few minutes on 2 cores)");
        let t = Instant::now();
        util::run(Command::new(util::cargo()).args(CARGO_DEB_INSTALL)).context("installing cargo-deb")?;
        let found = find_cargo_deb().context("cargo-deb installed but `cargo deb --version` fails")?;
        println!("setup: {found} installed ({})", util::secs(t.elapsed()));
    }
    Ok(())
}

/// `cargo deb --version` (cargo-deb from PATH or `$CARGO_HOME/bin`), if it works.
pub fn find_cargo_deb() -> Option<String> {
    let out = Command::new(util::cargo())
        .args(["deb", "--version"])
        .env("PATH", util::path_with_cargo_bin())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
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

#[cfg(test)]
mod tests {
    use super::mirror_in;

    #[test]
    fn qemu_follows_a_backported_qemu_utils() {
        assert!(super::backport_of(
            "install ok installed 1:10.0.2+ds-2+deb13u1~bpo12+1"
        ));
        assert!(!super::backport_of(
            "install ok installed 1:7.2+dfsg-7+deb12u18+b3"
        ));
        assert!(!super::backport_of(
            "deinstall ok config-files 1:10.0.2+ds-2+deb13u1~bpo12+1"
        ));
        assert!(!super::backport_of(""));
    }

    #[test]
    fn mirror_comes_from_the_bookworm_stanza() {
        let deb822 = "Types: deb\nURIs: http://m.example/debian-security\nSuites: bookworm-security\n\n\
                      Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\n";
        assert_eq!(mirror_in(deb822).as_deref(), Some("http://m.example/debian"));
        let one_line = "deb [arch=amd64] http://m.example/debian bookworm main\n";
        assert_eq!(mirror_in(one_line).as_deref(), Some("http://m.example/debian"));
        assert_eq!(mirror_in("deb http://x/ trixie main\n"), None);
    }
}
