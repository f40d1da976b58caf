//! Builds the guest initramfs: busybox-static, our `/init`, the snapshot script, mhpscope with the
//! shared libraries `ldd` lists, and optionally ndctl/daxctl with the kernel's nvdimm/dax modules.

use crate::util;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const INIT: &str = include_str!("init.sh");
const SNAPSHOT: &str = include_str!("snapshot.sh");
/// Path of the snapshot script inside the guest.
pub const SNAPSHOT_CMD: &str = "/usr/local/bin/mhp-snapshot";
/// Path of mhpscope inside the guest.
pub const MHPSCOPE: &str = "/usr/local/bin/mhpscope";
/// Path (inside the guest) of a script that loads the nvdimm/devdax modules in dependency order.
pub const LOAD_NVDIMM: &str = "/usr/local/bin/mhp-load-nvdimm";
/// Guest directory holding the (uncompressed) nvdimm/dax modules LOAD_NVDIMM loads.
const NVDIMM_MOD_DIR: &str = "/usr/local/lib/mhp-nvdimm";
/// tmux, copied into the guest with its libraries (Debian package `tmux`).
pub const TMUX: &str = "/usr/bin/tmux";
const C_UTF8: &str = "/usr/lib/locale/C.utf8";
/// Host tools copied into the guest for ZONE_DEVICE scenarios (Debian packages `ndctl`, `daxctl`).
const NVDIMM_TOOLS: &[&str] = &["/usr/bin/ndctl", "/usr/bin/daxctl"];
/// insmod order: a module comes after everything its `depends=` names (nfit, nd_btt, dax_pmem ->
/// libnvdimm; nd_pmem -> libnvdimm, nd_btt; device_dax and kmem need only the built-in dax core).
/// Checked on Debian 6.1, 6.12 and 7.2; none of them has a separate `dax_pmem_core`.
const NVDIMM_MODULES: &[&str] = &[
    "libnvdimm",
    "nfit",
    "nd_btt",
    "nd_pmem",
    "dax_pmem",
    "device_dax",
    "kmem",
];
/// Path (inside the guest) of a script that loads memory-notifier-error-inject (the failures
/// scenario injects errors into the memory notifier chain with it).
pub const LOAD_INJECT: &str = "/usr/local/bin/mhp-load-inject";
const INJECT_MOD_DIR: &str = "/usr/local/lib/mhp-inject";
/// insmod order (the second needs the first); `=m` in all three lab kernels.
const INJECT_MODULES: &[&str] = &["notifier-error-inject", "memory-notifier-error-inject"];

/// Path (inside the guest) of a script that loads virtio_balloon (and on 6.1 the virtio core
/// modules it needs). Every scenario runs it before mhpscope starts: the free page reporting
/// callback (`virtballoon_free_page_report`) is a module function, kprobed only once the module
/// is in; the driver without a balloon device binds to nothing.
pub const LOAD_BALLOON: &str = "/usr/local/bin/mhp-load-balloon";
const BALLOON_MOD_DIR: &str = "/usr/local/lib/mhp-balloon";
/// insmod order. 6.1 ships the virtio core as modules (in this order); 6.12 and 7.2 build
/// VIRTIO and VIRTIO_PCI in and ship only virtio_balloon.
const BALLOON_MODULES: &[&str] = &[
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_balloon",
];

/// How long LOAD_NVDIMM waits for namespace0.0 (in 0.1 s steps).
const NVDIMM_WAIT_TENTHS: u32 = 100;

/// Stages the tree in `work/initramfs` and packs it into `work/initramfs.cpio.gz`. With
/// `kernel_root` (the unpacked kernel package), also adds the nvdimm/devdax tooling ([`add_nvdimm`]).
pub fn build(
    work: &Path,
    mhpscope: Option<&Path>,
    kernel_root: Option<&Path>,
    keep_tree: bool,
) -> Result<PathBuf> {
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
        copy_with_libs(&tree, bin, MHPSCOPE)?;
        // `mhpscope top` runs in the guest under tmux, which gives it a terminal to draw on
        // and the host a way to read the screen (capture-pane).
        copy_with_libs(&tree, Path::new(TMUX), TMUX).context("tmux is needed (cargo xtask setup)")?;
        // tmux refuses to start without a UTF-8 locale; glibc's C.UTF-8 is these files.
        copy_tree(Path::new(C_UTF8), &tree.join(C_UTF8.trim_start_matches('/')))
            .context("the C.UTF-8 locale (Debian package libc-bin)")?;
    }
    if let Some(root) = kernel_root {
        add_nvdimm(&tree, root)?;
        add_inject(&tree, root)?;
        add_balloon(&tree, root)?;
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

/// Copies ndctl and daxctl (with their `ldd` libraries) and the kernel's nvdimm/dax modules
/// (decompressed when the package ships .ko.xz or .ko.zst) from the unpacked kernel package at
/// `kernel_root` into the staged initramfs `tree`, and writes LOAD_NVDIMM.
pub fn add_nvdimm(tree: &Path, kernel_root: &Path) -> Result<()> {
    for tool in NVDIMM_TOOLS {
        let bin = Path::new(tool);
        if !bin.exists() {
            bail!("{tool} is missing (Debian packages ndctl and daxctl; cargo xtask setup)");
        }
        copy_with_libs(tree, bin, tool)?;
    }

    let found = find_modules(kernel_root, NVDIMM_MODULES)?;
    if found.is_empty() {
        bail!(
            "no nvdimm/dax modules ({}) under {}/{{,usr/}}lib/modules",
            NVDIMM_MODULES.join(", "),
            kernel_root.display()
        );
    }
    let builtin = builtin_modules(kernel_root);
    let mod_dir = tree.join(NVDIMM_MOD_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&mod_dir)?;
    let mut load = Vec::new();
    let mut skipped = Vec::new();
    for name in NVDIMM_MODULES {
        match found.get(*name) {
            Some(src) => {
                decompress_module(src, &mod_dir.join(format!("{name}.ko")))?;
                load.push(*name);
            }
            // Built in (or at least not a module in this package): nothing to load.
            None => match &builtin {
                Some(list) if !list.iter().any(|b| b == name) => bail!(
                    "{name}.ko is neither in {} nor in its modules.builtin",
                    kernel_root.display()
                ),
                _ => skipped.push(*name),
            },
        }
    }
    write_exec(
        &tree.join(LOAD_NVDIMM.trim_start_matches('/')),
        &load_nvdimm_script(&load, &skipped),
    )
}

/// Copies the notifier error-injection modules (decompressed) and writes LOAD_INJECT.
fn add_inject(tree: &Path, kernel_root: &Path) -> Result<()> {
    let found = find_modules(kernel_root, INJECT_MODULES)?;
    let dir = tree.join(INJECT_MOD_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&dir)?;
    let mut script =
        String::from("#!/bin/sh\n# Generated by xtask (initramfs.rs): loads memory-notifier-error-inject.\n");
    for name in INJECT_MODULES {
        let src = found.get(*name).with_context(|| {
            format!(
                "{name}.ko is not in {} (CONFIG_MEMORY_NOTIFIER_ERROR_INJECT=m)",
                kernel_root.display()
            )
        })?;
        decompress_module(src, &dir.join(format!("{name}.ko")))?;
        let sys = name.replace('-', "_");
        let _ = writeln!(
            script,
            "[ -d /sys/module/{sys} ] || insmod {INJECT_MOD_DIR}/{name}.ko || exit 1"
        );
    }
    write_exec(&tree.join(LOAD_INJECT.trim_start_matches('/')), &script)
}

/// Copies virtio_balloon and whichever of its virtio dependencies the package ships as modules
/// (decompressed), and writes LOAD_BALLOON. A dependency the package does not ship is built in.
fn add_balloon(tree: &Path, kernel_root: &Path) -> Result<()> {
    let found = find_modules(kernel_root, BALLOON_MODULES)?;
    anyhow::ensure!(
        found.contains_key("virtio_balloon"),
        "virtio_balloon.ko is not in {} (CONFIG_VIRTIO_BALLOON=m)",
        kernel_root.display()
    );
    let dir = tree.join(BALLOON_MOD_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&dir)?;
    let mut load = Vec::new();
    for name in BALLOON_MODULES {
        if let Some(src) = found.get(*name) {
            decompress_module(src, &dir.join(format!("{name}.ko")))?;
            load.push(*name);
        }
    }
    write_exec(
        &tree.join(LOAD_BALLOON.trim_start_matches('/')),
        &load_balloon_script(&load),
    )
}

/// The LOAD_BALLOON script: insmod `load` in order, skipping what is already loaded (or was
/// auto-loaded meanwhile); prints what it did.
fn load_balloon_script(load: &[&str]) -> String {
    format!(
        r#"#!/bin/sh
# Generated by xtask (initramfs.rs): loads virtio_balloon and the virtio modules it needs.
for m in {load}; do
    if [ -d /sys/module/$m ]; then
        echo "mhp-load-balloon: $m already loaded"
        continue
    fi
    if ! insmod {dir}/$m.ko; then
        [ -d /sys/module/$m ] && continue
        echo "mhp-load-balloon: FAILED: insmod {dir}/$m.ko" >&2
        exit 1
    fi
    echo "mhp-load-balloon: loaded $m"
done
"#,
        load = load.join(" "),
        dir = BALLOON_MOD_DIR,
    )
}

/// The modules `names` of the kernel package: module name -> file (maybe compressed).
fn find_modules(kernel_root: &Path, names: &[&str]) -> Result<BTreeMap<String, PathBuf>> {
    let mut files = Vec::new();
    let mut seen = Vec::new();
    for dir in ["lib/modules", "usr/lib/modules"] {
        // With usrmerge, lib may be a symlink to usr/lib: do not walk the same files twice.
        let Ok(d) = kernel_root.join(dir).canonicalize() else {
            continue;
        };
        if d.is_dir() && !seen.contains(&d) {
            walk(&d, &mut files)?;
            seen.push(d);
        }
    }
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        let Some(name) = f.file_name().and_then(|n| n.to_str()).and_then(module_name) else {
            continue;
        };
        if !names.contains(&name) {
            continue;
        }
        if let Some(prev) = found.insert(name.to_string(), f.clone()) {
            bail!(
                "{name} found twice ({} and {}): more than one kernel in {}?",
                prev.display(),
                f.display(),
                kernel_root.display()
            );
        }
    }
    Ok(found)
}

/// "nfit.ko", "nfit.ko.xz", "nfit.ko.zst", "nfit.ko.gz" -> "nfit".
fn module_name(file: &str) -> Option<&str> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
}

/// Module names in `modules.builtin` of the package, if it ships that file (7.x's does not).
fn builtin_modules(kernel_root: &Path) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut any = false;
    for dir in ["lib/modules", "usr/lib/modules"] {
        let Ok(rels) = std::fs::read_dir(kernel_root.join(dir)) else {
            continue;
        };
        for rel in rels.flatten() {
            if let Ok(text) = std::fs::read_to_string(rel.path().join("modules.builtin")) {
                any = true;
                names.extend(text.lines().filter_map(|l| {
                    let file = l.rsplit('/').next()?;
                    module_name(file).map(|n| n.replace('-', "_"))
                }));
            }
        }
    }
    any.then_some(names)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&e.path(), out)?;
        } else if ty.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Busybox insmod cannot be relied on to read compressed modules: unpack them on the host.
fn decompress_module(src: &Path, dest: &Path) -> Result<()> {
    let name = src.to_string_lossy();
    let tool: &[&str] = if name.ends_with(".xz") {
        &["xz", "-dc"]
    } else if name.ends_with(".zst") {
        &["zstd", "-dcq"]
    } else if name.ends_with(".gz") {
        &["gzip", "-dc"]
    } else {
        std::fs::copy(src, dest).with_context(|| format!("copying {}", src.display()))?;
        return Ok(());
    };
    let out = std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut cmd = Command::new(tool[0]);
    cmd.args(&tool[1..]).arg(src).stdout(Stdio::from(out));
    util::run(&mut cmd).with_context(|| format!("decompressing {} (xz-utils, zstd)", src.display()))
}

/// The LOAD_NVDIMM busybox sh script: insmod `load` in order (skipping modules already loaded),
/// then wait for the label-less namespace0.0 of the qemu nvdimm when the firmware has an NFIT.
fn load_nvdimm_script(load: &[&str], skipped: &[&str]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"#!/bin/sh
# Generated by xtask (initramfs.rs): loads the nvdimm/devdax modules in dependency order, then waits
# for /sys/bus/nd/devices/namespace0.0 if the machine has an NVDIMM (ACPI NFIT table).
# Not shipped as modules (built in): {skipped}
dir={dir}
for m in {load}; do
    if [ -d /sys/module/$m ]; then
        echo "mhp-load-nvdimm: $m already loaded"
        continue
    fi
    if ! insmod $dir/$m.ko; then
        # Lost a race with an auto-load: fine as long as it is there now.
        [ -d /sys/module/$m ] && continue
        echo "mhp-load-nvdimm: FAILED: insmod $dir/$m.ko" >&2
        exit 1
    fi
done
if [ ! -e /sys/firmware/acpi/tables/NFIT ]; then
    echo "mhp-load-nvdimm: modules loaded; no NVDIMM (no ACPI NFIT table), not waiting for namespace0.0"
    exit 0
fi
i=0
while [ ! -e /sys/bus/nd/devices/namespace0.0 ]; do
    if [ $i -ge {tenths} ]; then
        echo "mhp-load-nvdimm: FAILED: NVDIMM present (ACPI NFIT) but no /sys/bus/nd/devices/namespace0.0 after $((i / 10)) s; /sys/bus/nd/devices: $(echo $(ls /sys/bus/nd/devices 2>&1))" >&2
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
echo "mhp-load-nvdimm: namespace0.0 ready after $i x 0.1 s"
"#,
        skipped = if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(" ")
        },
        dir = NVDIMM_MOD_DIR,
        load = load.join(" "),
        tenths = NVDIMM_WAIT_TENTHS,
    );
    s
}

/// Copies `bin` to `guest_path` in `tree`, with the shared libraries it needs.
fn copy_with_libs(tree: &Path, bin: &Path, guest_path: &str) -> Result<()> {
    copy_file(bin, &tree.join(guest_path.trim_start_matches('/')))?;
    for lib in shared_libs(bin)? {
        let dest = tree.join(lib.strip_prefix("/").unwrap_or(&lib));
        if !dest.exists() {
            copy_file(&lib, &dest)?;
        }
    }
    Ok(())
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

/// Copies a directory of regular files and subdirectories.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
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
    fn module_names_strip_compression() {
        assert_eq!(module_name("nfit.ko"), Some("nfit"));
        assert_eq!(module_name("libnvdimm.ko.xz"), Some("libnvdimm"));
        assert_eq!(module_name("kmem.ko.zst"), Some("kmem"));
        assert_eq!(module_name("modules.builtin"), None);
    }

    #[test]
    fn load_script_lists_modules_in_order() {
        let s = load_nvdimm_script(&["libnvdimm", "nfit"], &[]);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("for m in libnvdimm nfit; do"));
        assert!(s.contains("built in): none"));
        assert!(s.contains("-ge 100 ]"));
    }

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
