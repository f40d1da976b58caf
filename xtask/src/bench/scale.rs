//! `cargo xtask scale`: mhpscope on a host with a million memory blocks (128 TiB of 128 MiB
//! blocks). Writes a synthetic recording of such a host (`mhpscope synth`), then times `report`
//! on it, text and JSON, and reads each run's peak resident memory from the kernel (wait4).
//! Goals (BENCHMARKS.md): under 100 MB resident, under 5 s.

use crate::{build_cmd, util};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// Memory blocks online on the synthetic host.
    #[arg(long, default_value_t = 1_000_000)]
    pub blocks: u64,
    /// Blocks hot-added, onlined, offlined and removed after the start (14 events each).
    #[arg(long, default_value_t = 1000)]
    pub cycles: u64,
}

const GOAL_RSS_BYTES: u64 = 100_000_000;
const GOAL_SECS: f64 = 5.0;

pub fn run(args: &ScaleArgs) -> Result<()> {
    let bin = build_cmd::run(true)?;
    let out = util::repo_root().join("target").join("bench").join("scale");
    std::fs::create_dir_all(&out)?;
    let recording = out.join("synth.ndjson");
    let synth = measure(
        Command::new(&bin)
            .args(["synth", "--blocks", &args.blocks.to_string()])
            .args(["--cycles", &args.cycles.to_string(), "-o"])
            .arg(&recording),
        &out.join("synth.out"),
    )?;
    let size = std::fs::metadata(&recording)?.len();
    println!(
        "scale: {} blocks online, {} events: {:.1} MB of NDJSON written in {:.2} s",
        args.blocks,
        args.cycles * 14,
        size as f64 / 1e6,
        synth.wall.as_secs_f64()
    );
    let mut rows = Vec::new();
    for (name, json) in [("report", false), ("report --json", true)] {
        let mut cmd = Command::new(&bin);
        cmd.args(["report", "-i"]).arg(&recording);
        if json {
            cmd.arg("--json");
        }
        let file = out.join(if json { "report.json" } else { "report.txt" });
        let m = measure(&mut cmd, &file)?;
        let ok = m.max_rss_bytes < GOAL_RSS_BYTES && m.wall.as_secs_f64() < GOAL_SECS;
        println!(
            "scale:   {name:<14} {:>6.2} s  {:>6.1} MB peak resident  (goal < {GOAL_SECS} s, < {} MB: {})",
            m.wall.as_secs_f64(),
            m.max_rss_bytes as f64 / 1e6,
            GOAL_RSS_BYTES / 1_000_000,
            if ok { "met" } else { "NOT met" }
        );
        rows.push(serde_json::json!({
            "command": format!("mhpscope {name}"),
            "wall_s": m.wall.as_secs_f64(),
            "max_rss_bytes": m.max_rss_bytes,
        }));
    }
    let path = out.join("scale.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({
            "blocks": args.blocks, "events": args.cycles * 14, "recording_bytes": size,
            "goal_rss_bytes": GOAL_RSS_BYTES, "goal_wall_s": GOAL_SECS, "runs": rows,
        }))?,
    )?;
    println!("scale: figures in {}", path.display());
    Ok(())
}

pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) max_rss_bytes: u64,
}

/// Runs `cmd` with stdout to `stdout_file`; its wall time and its own peak RSS.
pub(crate) fn measure(cmd: &mut Command, stdout_file: &Path) -> Result<Measured> {
    let stdout = std::fs::File::create(stdout_file)?;
    let t = Instant::now();
    let child = cmd
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for this child only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for our own child, with valid pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    if r != pid {
        bail!("wait4 for {cmd:?}: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (wait status {status:#x})");
    }
    Ok(Measured {
        wall,
        // ru_maxrss is in KiB on Linux.
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}
