//! Builds the eBPF object from `probe-ebpf` and leaves it in OUT_DIR for `include_bytes_aligned!`
//! (an empty file without the `ebpf` feature).
//!
//! The eBPF side needs Debian's Rust toolchain (prebuilt `core` for bpfel-unknown-none) and
//! bpf-linker; see `cargo xtask setup`. It runs in a clean environment so that the outer
//! (rustup) cargo's variables do not leak into the inner build.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const BPF_TARGET: &str = "bpfel-unknown-none";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap().to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    for watched in [
        "probe-ebpf/src",
        "probe-ebpf/Cargo.toml",
        "probe-common/src",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=MHPSCOPE_BPF_CARGO");
    if env::var_os("CARGO_FEATURE_EBPF").is_none() {
        // The core (recording format, model, views) builds and tests with rustup's stable
        // toolchain alone; the binary then reads recordings and attaches nothing.
        std::fs::write(out_dir.join("mhpscope.bpf.o"), b"").expect("writing an empty object");
        return;
    }

    let cargo = env::var("MHPSCOPE_BPF_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let rustc = Path::new(&cargo).with_file_name("rustc");
    if !Path::new(&cargo).exists() || !rustc.exists() {
        panic!(
            "building the eBPF programs needs Debian's Rust toolchain ({cargo} and {}) and \
             bpf-linker: run `cargo xtask setup`",
            rustc.display()
        );
    }
    let linker = find_bpf_linker().unwrap_or_else(|| {
        panic!("bpf-linker not found in PATH or $CARGO_HOME/bin: run `cargo xtask setup`")
    });
    let target_dir = workspace.join("target").join("bpf");

    let status = Command::new(&cargo)
        .current_dir(workspace.join("probe-ebpf"))
        .env_clear()
        .env("PATH", env::var_os("PATH").unwrap_or_default())
        .env("HOME", env::var_os("HOME").unwrap_or_default())
        .env("RUSTC", &rustc)
        // aya-ebpf uses #![feature(asm_experimental_arch)]; scoped to this build only.
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", &linker)
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        // bpf-linker asks LLVM to expand memcpy "in order" by default, which also turns every
        // memset (zeroing an event or an argument array) into a call to compiler_builtins'
        // byte-at-a-time loop: five instructions per byte on every probe run. Without it LLVM
        // writes small memsets and memcpys as a few 8-byte stores.
        .env(
            "CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS",
            "-C link-arg=--disable-expand-memcpy-in-order",
        )
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "probe-ebpf",
            "--target",
            BPF_TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .unwrap_or_else(|e| panic!("running {cargo}: {e}"));
    if !status.success() {
        panic!("building probe-ebpf for {BPF_TARGET} failed ({status})");
    }
    let object = target_dir.join(BPF_TARGET).join("release").join("mhpscope");
    std::fs::copy(&object, out_dir.join("mhpscope.bpf.o"))
        .unwrap_or_else(|e| panic!("copying {}: {e}", object.display()));
}

fn find_bpf_linker() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::split_paths(&env::var_os("PATH").unwrap_or_default()).collect();
    if let Some(home) = env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
}
