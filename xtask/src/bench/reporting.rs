//! `cargo xtask bench --workload reporting`: what mhpscope costs free page reporting. In a
//! guest with a virtio balloon reporting free pages (`free-page-reporting=on`), each
//! measurement has two parts, each in one guest command that forks nothing but its workload:
//!
//! 1. Freed pages outside report cycles: `dd bs=64M count=1` runs `DD_RUNS` times (64 MiB
//!    allocated, touched and freed each time), each timed; the median run is kept, since a
//!    report cycle, asked for by the first free, may land in one of them. Under mhpscope the
//!    allocations pass `kmem:mm_page_alloc` and the frees that reach page_reporting_order pass
//!    `__page_reporting_notify`. Then one compaction (`/proc/sys/vm/compact_memory`), timed:
//!    its free scanner isolates pages with `__isolate_free_page`, where mhpscope's per-CPU
//!    gate costs its one check outside report cycles (`compact_isolated` in /proc/vmstat
//!    counts the pages it isolated).
//! 2. A report cycle: reporting is left to go quiet, `dd` frees `CYCLE_MIB`, and for `WINDOW`
//!    the guest sleeps while the cycle it asked for (2 s later) reports what it freed. The
//!    guest's busy CPU time over the window (/proc/schedstat: every CPU's task run time, the
//!    idle task left out) is the cycle's cost with what else ran; the host's qemu RSS before
//!    and after shows the pages were reported in every mode, untraced too.
//!
//! Modes: no tracing, `mhpscope record` (its recorder draining as shipped), and `mhpscope
//! kernel` (the recorder stopped: the probes alone). Figures are medians over the rounds of
//! each mode's ratio to no tracing in the same round.

use super::{median, Bench, SETTLE};
use anyhow::{Context, Result};
use serde_json::json;
use std::time::Duration;

/// Part 1: runs of `dd` and the buffer each touches and frees.
const DD_RUNS: u32 = 5;
const DD_MIB: u64 = 64;
/// Part 2: the buffer freed, and how long the guest then sleeps: PAGE_REPORTING_DELAY (2 s)
/// before the cycle, the cycle (seconds on the emulator), and margin.
const CYCLE_MIB: u64 = 256;
const WINDOW: Duration = Duration::from_secs(8);
/// Reporting is quiet (nothing freed left to report) after this long without new frees.
const QUIET: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Untraced,
    Mhpscope,
    MhpscopeKernelSide,
}

pub const MODES: [Mode; 3] = [Mode::Untraced, Mode::Mhpscope, Mode::MhpscopeKernelSide];

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Untraced => "no tracing",
            Mode::Mhpscope => "mhpscope record",
            Mode::MhpscopeKernelSide => "mhpscope kernel",
        }
    }
}

/// Shell functions: `now` (guest time, ns, into `$c`) and `busy` (every CPU's task run time,
/// ns, into `$b`: /proc/schedstat's 7th field, rq_cpu_time, which leaves the idle task out).
/// Each reads into names of its own: shell variables are global.
const FNS: &str = "now() { while read t1 t2 t3 t4; do [ \"$t1 $t2\" = 'now at' ] && break; done < /proc/timer_list; c=$t3; }; \
                   busy() { b=0; while read n f1 f2 f3 f4 f5 f6 f7 rest; do \
                   case $n in cpu[0-9]*) b=$((b + f7));; esac; done < /proc/schedstat; }";

/// Part 1's script: prints each dd run's guest time (ns) on one line, then the compaction's
/// guest time (ns) and the pages it isolated. `compact` is the compaction's trigger file.
fn free_script(compact: &str) -> String {
    format!(
        "( {FNS}; isolated() {{ while read k v; do [ $k = compact_isolated ] && iso=$v; done < /proc/vmstat; }}; \
         runs=''; i=0; while [ $i -lt {DD_RUNS} ]; do now; s=$c; \
         dd if=/dev/zero of=/dev/null bs={DD_MIB}M count=1 2>/dev/null || exit 1; now; runs=\"$runs $((c - s))\"; i=$((i + 1)); done; \
         echo $runs; iso=0; isolated; i0=$iso; now; s=$c; echo 1 > {compact} || exit 1; now; isolated; \
         echo $((c - s)); echo $((iso - i0)) )"
    )
}

const COMPACT: &str = "/proc/sys/vm/compact_memory";

/// Part 2's window: prints the busy CPU time (ns) and the window's guest time (ns).
fn window_script() -> String {
    format!(
        "( {FNS}; busy; b0=$b; now; s=$c; sleep {}; busy; now; echo $((b - b0)); echo $((c - s)) )",
        WINDOW.as_secs()
    )
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub mode: Mode,
    /// Part 1: the median dd run (ns); the compaction (ns) and the pages it isolated.
    pub dd_ns: u64,
    pub compact_ns: u64,
    pub compact_isolated: u64,
    /// Part 2: busy CPU over the window (ns), the window (ns), qemu's RSS fall (KiB).
    pub busy_ns: u64,
    pub window_ns: u64,
    pub rss_fall_kib: u64,
}

fn numbers(line: Option<&str>) -> Vec<u64> {
    line.unwrap_or("")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

impl Bench<'_> {
    fn reporting_parts(&mut self, mode: Mode) -> Result<Sample> {
        let out = self.sh(&free_script(COMPACT), 600)?;
        let mut lines = out.trim().lines().rev();
        let (isolated, compact, runs) = (numbers(lines.next()), numbers(lines.next()), lines.next());
        let mut runs = numbers(runs);
        anyhow::ensure!(
            runs.len() == DD_RUNS as usize && compact.len() == 1 && isolated.len() == 1,
            "dd and compaction timings: {out:?}"
        );
        runs.sort_unstable();
        let dd_ns = median(&runs);
        self.sh(&format!("sleep {}", QUIET.as_secs()), 60)?;
        self.sh(
            &format!("dd if=/dev/zero of=/dev/null bs={CYCLE_MIB}M count=1 2>/dev/null"),
            300,
        )?;
        let high = self.qemu.rss_kib()?;
        let out = self.sh(&window_script(), 120)?;
        let low = self.qemu.rss_kib()?;
        let mut lines = out.trim().lines().rev();
        let (window, busy) = (numbers(lines.next()), numbers(lines.next()));
        let (Some(&window_ns), Some(&busy_ns)) = (window.first(), busy.first()) else {
            anyhow::bail!("window timing: {out:?}");
        };
        Ok(Sample {
            mode,
            dd_ns,
            compact_ns: compact[0],
            compact_isolated: isolated[0],
            busy_ns,
            window_ns,
            rss_fall_kib: high.saturating_sub(low),
        })
    }

    /// One measurement in `mode`; under mhpscope also returns the probes' self-cost.
    pub fn measure_reporting(&mut self, mode: Mode) -> Result<(Sample, Option<String>)> {
        self.settle()?;
        // What the previous measurement freed is reported before this one starts.
        self.sh(&format!("sleep {}", QUIET.as_secs()), 60)?;
        if mode == Mode::Untraced {
            return Ok((self.reporting_parts(mode)?, None));
        }
        let flags = format!("--self-cost {}", self.extra_flags);
        let (pid, _idle_ms) = self.start_recorder(&flags)?;
        let paused = mode == Mode::MhpscopeKernelSide;
        if paused {
            self.sh(&format!("kill -STOP {pid}"), 30)?;
        }
        let sample = self.reporting_parts(mode);
        if paused {
            self.sh(&format!("kill -CONT {pid}"), 30)?;
        }
        let sample = sample?;
        let probes = self.sh(
            &format!(
                "{} {flags} probes 2>&1 | sed -n '/[Ss]elf-cost/,$p' | grep -E 'probe|report|isolate|putback|mm_page_alloc'",
                crate::vm::initramfs::MHPSCOPE
            ),
            120,
        )?;
        self.stop_recorder()?;
        Ok((sample, Some(probes)))
    }
}

/// Per round, each mode's figure over the untraced one's of the same round.
fn ratios(samples: &[Sample], mode: Mode, f: fn(&Sample) -> u64) -> Vec<f64> {
    let of = |m: Mode| samples.iter().filter(move |s| s.mode == m).map(f);
    of(Mode::Untraced)
        .zip(of(mode))
        .filter(|(base, _)| *base > 0)
        .map(|(base, x)| x as f64 / base as f64)
        .collect()
}

pub fn report(
    samples: &[Sample],
    probes: Option<&str>,
    rounds: usize,
    release: &str,
    out: &std::path::Path,
) -> Result<()> {
    println!(
        "\nbench: free page reporting in a {release} guest, {rounds} rounds (settled {} s between measurements); \
         freed pages: median of {DD_RUNS} runs of dd {DD_MIB} MiB; a report cycle: busy CPU over {} s after freeing {CYCLE_MIB} MiB; \
         medians, and the median of each round's ratio to no tracing",
        SETTLE.as_secs() + QUIET.as_secs(),
        WINDOW.as_secs()
    );
    let mut rows = Vec::new();
    for mode in MODES {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.mode == mode).collect();
        if of.is_empty() {
            continue;
        }
        let mid = |f: fn(&Sample) -> u64| median(&of.iter().map(|s| f(s)).collect::<Vec<_>>());
        let dd = ratios(samples, mode, |s| s.dd_ns);
        let busy = ratios(samples, mode, |s| s.busy_ns);
        let compact = ratios(samples, mode, |s| s.compact_ns);
        println!(
            "bench:   {:<16} dd {:>8.2} ms x{:.3}   compaction {:>8.2} ms x{:.3} ({} pages isolated)   cycle window busy {:>8.2} ms x{:.3}   qemu RSS fell {} MiB",
            mode.name(),
            mid(|s| s.dd_ns) as f64 / 1e6,
            median(&dd),
            mid(|s| s.compact_ns) as f64 / 1e6,
            median(&compact),
            mid(|s| s.compact_isolated),
            mid(|s| s.busy_ns) as f64 / 1e6,
            median(&busy),
            mid(|s| s.rss_fall_kib) >> 10
        );
        rows.push(json!({
            "mode": mode.name(),
            "dd_ns": of.iter().map(|s| s.dd_ns).collect::<Vec<_>>(),
            "dd_ratios": dd,
            "compact_ns": of.iter().map(|s| s.compact_ns).collect::<Vec<_>>(),
            "compact_ratios": compact,
            "compact_isolated": of.iter().map(|s| s.compact_isolated).collect::<Vec<_>>(),
            "busy_ns": of.iter().map(|s| s.busy_ns).collect::<Vec<_>>(),
            "busy_ratios": busy,
            "window_ns": of.iter().map(|s| s.window_ns).collect::<Vec<_>>(),
            "rss_fall_kib": of.iter().map(|s| s.rss_fall_kib).collect::<Vec<_>>(),
        }));
    }
    if let Some(p) = probes {
        println!(
            "bench: the probes' self-cost over the last mhpscope measurement (both parts):\n{}",
            p.trim_end()
        );
    }
    let path = out.join("bench-reporting.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({
            "kernel": release, "rounds": rounds, "dd_runs": DD_RUNS, "dd_mib": DD_MIB,
            "cycle_mib": CYCLE_MIB, "window_s": WINDOW.as_secs(), "modes": rows, "probes_last": probes,
        }))?,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    println!("bench: figures in {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both scripts run under the guest's busybox sh; here with a small dd, to show that their
    /// clock and schedstat readings parse (and that the host's /proc has them).
    #[test]
    fn scripts_time_with_builtins_and_read_busy_time() {
        let busybox = std::path::Path::new("/bin/busybox");
        if !busybox.exists() {
            eprintln!("skipped: no /bin/busybox (cargo xtask setup installs it)");
            return;
        }
        let run = |script: String| {
            let out = std::process::Command::new(busybox)
                .args(["sh", "-c", &format!("{script}; echo alive")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        // The compaction's trigger is a scratch file here: this test changes nothing.
        let scratch = std::env::temp_dir().join(format!("bench-compact-{}", std::process::id()));
        let script = free_script(scratch.to_str().unwrap()).replace(&format!("bs={DD_MIB}M"), "bs=1M");
        let text = run(script);
        let _ = std::fs::remove_file(&scratch);
        let lines: Vec<&str> = text.trim().lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines.last(), Some(&"alive"), "{text}");
        assert!(numbers(Some(lines[1]))[0] > 0, "{text}");
        assert_eq!(numbers(Some(lines[2])).len(), 1, "{text}");
        let runs = numbers(lines.first().copied());
        assert_eq!(runs.len(), DD_RUNS as usize, "{text}");
        assert!(runs.iter().all(|&ns| ns > 0 && ns < 10_000_000_000), "{text}");
        if !std::path::Path::new("/proc/schedstat").exists() {
            eprintln!("window part skipped: this kernel has no /proc/schedstat (the guests' have)");
            return;
        }
        let text = run(window_script().replace(&format!("sleep {}", WINDOW.as_secs()), "sleep 0.2"));
        let lines: Vec<&str> = text.trim().lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let (busy, window) = (numbers(Some(lines[0])), numbers(Some(lines[1])));
        assert!(window[0] >= 200_000_000, "{text}");
        // The machine's tasks ran for some of the 0.2 s (this very shell at least), and for
        // less than every CPU for all of it.
        let cpus = std::thread::available_parallelism().unwrap().get() as u64;
        assert!(busy[0] > 0 && busy[0] < window[0] * cpus, "{text}");
    }
}
