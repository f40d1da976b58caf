//! Builds the guest initramfs: busybox-static, our `/init`, the snapshot script, and mhpscope
//! with the shared libraries `ldd` lists.

use crate::util;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const INIT: &str = include_str!("init.sh");
const SNAPSHOT: &str = include_str!("snapshot.sh");
/// Path of the snapshot script inside the guest.
pub const SNAPSHOT_CMD: &str = "/usr/local/bin/mhp-snapshot";
/// Path of mhpscope inside the guest.
pub const MHPSCOPE: &str = "/usr/local/bin/mhpscope";

/// Stages the tree in `work/initramfs` and packs it into `work/initramfs.cpio.gz`.
pub fn build(work: &Path, mhpscope: Option<&Path>, keep_tree: bool) -> Result<PathBuf> {
    let tree = work.join("initramfs");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "usr/local/bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
    ] {
        std::fs::create_dir_all(tree.join(d))?;
    }
    copy_file(Path::new("/bin/busybox"), &tree.join("bin/busybox"))
        .context("busybox-static is needed (cargo xtask setup)")?;
    // /init's interpreter must exist before `busybox --install` runs.
    std::os::unix::fs::symlink("busybox", tree.join("bin/sh"))?;
    write_exec(&tree.join("init"), INIT)?;
    write_exec(&tree.join(SNAPSHOT_CMD.trim_start_matches('/')), SNAPSHOT)?;

    if let Some(bin) = mhpscope {
        copy_file(bin, &tree.join(MHPSCOPE.trim_start_matches('/')))?;
        for lib in shared_libs(bin)? {
            let dest = tree.join(lib.strip_prefix("/").unwrap_or(&lib));
            if !dest.exists() {
                copy_file(&lib, &dest)?;
            }
        }
    }

    let out = work.join("initramfs.cpio.gz");
    // cpio wants relative names from stdin; newc is the format the kernel unpacks.
    let script = format!(
        "set -o pipefail; cd '{}' && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 > '{}'",
        tree.display(),
        out.display()
    );
    util::run(Command::new("bash").args(["-c", &script])).context("packing the initramfs")?;
    if !keep_tree {
        std::fs::remove_dir_all(&tree)?;
    }
    Ok(out)
}

/// Absolute library paths from `ldd` (including the dynamic loader); static binaries have none.
fn shared_libs(bin: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(bin).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if text.contains("not a dynamic executable")
            || String::from_utf8_lossy(&out.stderr).contains("not a dynamic")
        {
            return Ok(Vec::new());
        }
        bail!(
            "ldd {} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_ldd(&text)
}

fn parse_ldd(text: &str) -> Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            bail!("ldd: {line}");
        }
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Copies the content (following symlinks) and keeps the file executable.
fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn write_exec(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parses() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        let libs = parse_ldd(text).unwrap();
        assert_eq!(
            libs,
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }
}
