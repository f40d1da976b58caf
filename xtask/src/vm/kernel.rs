//! Lab kernels: a table of Debian kernel packages, fetched with `apt-get download`, unpacked with
//! `dpkg -x` into a cache outside the repository and reused.

use crate::{setup, util};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the kernel image sits inside the unpacked package(s).
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// `linux-image-REL` holds `/boot/vmlinuz-REL` (bookworm, bookworm-backports).
    Classic,
    /// `linux-image-REL` is a meta package; `linux-binary-REL` holds
    /// `/usr/lib/modules/REL/vmlinuz` (sid since 7.x).
    Split,
}

#[derive(Debug, Clone, Copy)]
pub struct KernelSpec {
    /// The `--kernel` name, also the artifact directory name.
    pub name: &'static str,
    /// Debian suite the package comes from.
    pub suite: &'static str,
    /// Whether the suite must be added to the apt sources (using the mirror the system's
    /// own Debian sources already name) before the package can be fetched.
    pub needs_extra_suite: bool,
    /// Meta package whose dependency names the current ABI (`linux-image-6.1.0-NN-amd64`).
    pub meta_package: &'static str,
    /// Regex (for `apt-cache search --names-only`) of the versioned image package, as a fallback.
    pub image_regex: &'static str,
    /// Prefix the resolved package name must have (guards against the meta package of
    /// another suite).
    pub image_prefix: &'static str,
    pub layout: Layout,
    /// Only kernels whose scenario has been verified are enabled.
    pub enabled: bool,
}

/// The kernel `cargo xtask lab` boots unless told otherwise.
pub const DEFAULT: &str = "6.1";

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        name: "6.1",
        suite: "bookworm",
        needs_extra_suite: false,
        meta_package: "linux-image-amd64",
        image_regex: r"^linux-image-6\.1\.0-[0-9]+-amd64$",
        image_prefix: "linux-image-6.1.0-",
        layout: Layout::Classic,
        enabled: true,
    },
    KernelSpec {
        name: "6.12",
        suite: "bookworm-backports",
        needs_extra_suite: true,
        meta_package: "linux-image-amd64/bookworm-backports",
        image_regex: r"^linux-image-6\.12\.[0-9]+\+deb12-amd64$",
        image_prefix: "linux-image-6.12.",
        layout: Layout::Classic,
        enabled: true,
    },
    KernelSpec {
        name: "7.2",
        suite: "sid",
        needs_extra_suite: true,
        meta_package: "linux-image-amd64/sid",
        image_regex: r"^linux-image-7\.2\.[0-9]+\+deb14-amd64$",
        image_prefix: "linux-image-7.2.",
        layout: Layout::Split,
        enabled: true,
    },
];

pub fn lookup(name: &str) -> Result<&'static KernelSpec> {
    let names: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
    let spec = KERNELS
        .iter()
        .find(|k| k.name == name)
        .with_context(|| format!("unknown kernel {name:?}; known: {}", names.join(", ")))?;
    if !spec.enabled {
        bail!(
            "kernel {} ({}) is in the table but its lab scenario is not wired yet{}",
            spec.name,
            spec.suite,
            if spec.needs_extra_suite {
                format!(" (it needs the {} suite in the apt sources)", spec.suite)
            } else {
                String::new()
            }
        );
    }
    Ok(spec)
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub package: String,
    pub version: String,
    pub vmlinuz: PathBuf,
    /// The unpacked package(s): modules live under it.
    pub root: PathBuf,
}

pub fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    Ok(base.join("mhpscope").join("kernels"))
}

pub fn fetch(spec: &KernelSpec) -> Result<Kernel> {
    let cache = cache_dir()?;
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let (package, version) = match resolve(spec) {
        Ok(pv) => pv,
        Err(e) => {
            // Offline or no apt lists: a cached kernel of this series is good enough.
            if let Some(k) = newest_cached(&cache, spec)? {
                println!(
                    "kernel: cannot resolve via apt ({e:#}); using cached {}",
                    k.package
                );
                return Ok(k);
            }
            return Err(e);
        }
    };
    let dir = cache.join(format!("{package}_{version}"));
    let root = dir.join("root");
    if !dir.join(".complete").exists() {
        println!("kernel: downloading {package} {version} into {}", dir.display());
        let tmp = cache.join(format!(".tmp-{package}_{version}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        let mut pkgs = vec![package.clone()];
        if let Layout::Split = spec.layout {
            // The image package is a meta package: the kernel and its modules live apart.
            pkgs.push(package.replacen("linux-image-", "linux-binary-", 1));
            pkgs.push(package.replacen("linux-image-", "linux-modules-", 1));
        }
        for p in &pkgs {
            util::run(Command::new("apt-get").current_dir(&tmp).args([
                "-o",
                "APT::Sandbox::User=root",
                "download",
                &format!("{p}={version}"),
            ]))
            .with_context(|| format!("apt-get download {p}"))?;
        }
        for entry in std::fs::read_dir(&tmp)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "deb") {
                util::run(Command::new("dpkg").arg("-x").arg(&path).arg(tmp.join("root")))?;
                std::fs::remove_file(&path)?;
            }
        }
        std::fs::write(tmp.join(".complete"), format!("{package} {version}\n"))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).context("moving the unpacked kernel into the cache")?;
    } else {
        println!("kernel: using cached {package} {version}");
    }
    let vmlinuz = find_vmlinuz(&root, spec.layout)?;
    Ok(Kernel {
        package,
        version,
        vmlinuz,
        root,
    })
}

/// Resolves the current versioned package and its candidate version through apt.
fn resolve(spec: &KernelSpec) -> Result<(String, String)> {
    match resolve_once(spec) {
        Ok(r) => Ok(r),
        // Fresh machines may have no apt lists yet.
        Err(e) if util::is_root() => {
            println!("kernel: {e:#}; refreshing apt lists");
            setup::apt_update()?;
            resolve_once(spec)
        }
        Err(e) => Err(e),
    }
}

fn resolve_once(spec: &KernelSpec) -> Result<(String, String)> {
    let pkg = from_meta(spec).or_else(|_| from_search(spec))?;
    let show = util::output(Command::new("apt-cache").args(["show", "--no-all-versions", &pkg]))?;
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .with_context(|| format!("apt-cache show {pkg}: no Version"))?
        .trim()
        .to_string();
    Ok((pkg, version))
}

fn from_meta(spec: &KernelSpec) -> Result<String> {
    let out = util::output(Command::new("apt-cache").args(["depends", spec.meta_package]))?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(str::trim)
        .find(|d| d.starts_with(spec.image_prefix))
        .map(str::to_string)
        .with_context(|| format!("{} does not depend on {}*", spec.meta_package, spec.image_prefix))
}

fn from_search(spec: &KernelSpec) -> Result<String> {
    let out = util::output(Command::new("apt-cache").args(["search", "--names-only", spec.image_regex]))?;
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split_whitespace().next()).collect();
    // Highest ABI number wins: compare the numeric fields of the name.
    names.sort_by_key(|n| numeric_key(n));
    names
        .last()
        .map(|s| s.to_string())
        .with_context(|| format!("no package matches {}", spec.image_regex))
}

fn numeric_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn newest_cached(cache: &Path, spec: &KernelSpec) -> Result<Option<Kernel>> {
    let mut found: Vec<(String, String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(cache)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if let Some((pkg, ver)) = name.split_once('_') {
            if pkg.starts_with(spec.image_prefix) && path.join(".complete").exists() {
                found.push((pkg.to_string(), ver.to_string(), path));
            }
        }
    }
    found.sort_by_key(|(p, v, _)| (numeric_key(p), numeric_key(v)));
    match found.pop() {
        Some((package, version, dir)) => Ok(Some(Kernel {
            vmlinuz: find_vmlinuz(&dir.join("root"), spec.layout)?,
            root: dir.join("root"),
            package,
            version,
        })),
        None => Ok(None),
    }
}

fn find_vmlinuz(root: &Path, layout: Layout) -> Result<PathBuf> {
    match layout {
        Layout::Classic => {
            let boot = root.join("boot");
            for entry in std::fs::read_dir(&boot).with_context(|| format!("reading {}", boot.display()))? {
                let p = entry?.path();
                if p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
                {
                    return Ok(p);
                }
            }
            bail!("no vmlinuz-* in {}", boot.display())
        }
        Layout::Split => {
            let modules = root.join("usr/lib/modules");
            for entry in
                std::fs::read_dir(&modules).with_context(|| format!("reading {}", modules.display()))?
            {
                let p = entry?.path().join("vmlinuz");
                if p.exists() {
                    return Ok(p);
                }
            }
            bail!("no */vmlinuz in {}", modules.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_numbers_sort_numerically() {
        let mut v = [
            "linux-image-6.1.0-9-amd64",
            "linux-image-6.1.0-56-amd64",
            "linux-image-6.1.0-10-amd64",
        ];
        v.sort_by_key(|n| numeric_key(n));
        assert_eq!(v[2], "linux-image-6.1.0-56-amd64");
    }

    #[test]
    fn only_enabled_kernels_resolve() {
        assert!(lookup("6.1").is_ok());
        assert!(lookup("6.12").is_ok());
        assert!(lookup("5.10").is_err());
    }
}
