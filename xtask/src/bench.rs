//! `cargo xtask bench`: what mhpscope costs the path it watches. In a guest (software emulation:
//! ratios only, never absolute times), onlines then offlines the same blocks again and again,
//! alternating, round by round, between no tracing, `mhpscope record` attached (as shipped, and
//! with its contiguity-cost counter on), and the kernel's function_graph tracer filtered to the
//! same functions (what a user would reach for today). The guest's clock counts instructions
//! (`-icount`), so that the emulator's speed does not show in its time. Prints the median time
//! of each mode and the median of its per-round ratio to no tracing.

use crate::guest::Guest;
use crate::initramfs::MHPSCOPE;
use crate::qemu::{Machine, Qemu, QemuConfig};
use crate::qmp::Qmp;
use crate::{build_cmd, initramfs, kernel, setup, util};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long, default_value = kernel::DEFAULT)]
    pub kernel: String,
    /// Rounds; each measures every mode once, in a rotating order.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Online/offline cycles per measurement. Several, so that the recorder's periodic work
    /// (a drain every 250 ms) falls into every measurement in proportion, instead of landing
    /// in some and missing others by chance of phase.
    #[arg(long, default_value_t = 4)]
    pub cycles: u32,
    /// Memory blocks (128 MiB each) onlined and offlined per measurement.
    #[arg(long, default_value_t = 16)]
    pub blocks: u64,
    /// Time by wall clock instead of by instruction count (`-icount`): the emulator's speed
    /// then shows in the guest's time.
    #[arg(long)]
    pub wall_clock: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Untraced,
    /// As shipped: the contiguity-cost counter (`pageblock_pfn_to_page`) is off by default.
    Mhpscope,
    /// With the counter on: it runs once per pageblock of the zone at every online and offline.
    MhpscopeWithCounter,
    /// Without `kmem:mm_page_alloc` (every page allocation): the same functions as
    /// `FunctionGraph` watches, and nothing else.
    MhpscopeSkipPageAlloc,
    /// Filtered to the functions mhpscope traces by default on this path.
    FunctionGraph,
    /// The same and `__pageblock_pfn_to_page`, as `MhpscopeWithCounter`.
    FunctionGraphWithCounter,
}

const MODES: [Mode; 6] = [
    Mode::Untraced,
    Mode::Mhpscope,
    Mode::MhpscopeWithCounter,
    Mode::MhpscopeSkipPageAlloc,
    Mode::FunctionGraph,
    Mode::FunctionGraphWithCounter,
];

/// `--with` for `Mode::MhpscopeWithCounter`.
const COUNTER: &str = "pageblock_pfn_to_page";
/// The function it counts.
const COUNTED: &str = "__pageblock_pfn_to_page";
/// `--skip` for `Mode::MhpscopeSkipPageAlloc`.
const PAGE_ALLOC: &str = "mm_page_alloc";

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Untraced => "no tracing",
            Mode::Mhpscope => "mhpscope record",
            Mode::MhpscopeWithCounter => "mhpscope --with",
            Mode::MhpscopeSkipPageAlloc => "mhpscope --skip",
            Mode::FunctionGraph => "function_graph",
            Mode::FunctionGraphWithCounter => "function_graph+",
        }
    }
}

/// The hotplug functions on the online/offline path that mhpscope probes; function_graph is
/// filtered to those of them the guest kernel can trace.
const FUNCTIONS: &[&str] = &[
    "online_pages",
    "offline_pages",
    "move_pfn_range_to_zone",
    "remove_pfn_range_from_zone",
    "set_zone_contiguous",
    "mhp_init_memmap_on_memory",
    COUNTED,
];

const TRACING: &str = "/sys/kernel/tracing";
/// CLOCK_MONOTONIC in ns inside the guest (busybox date has no %N).
const NOW: &str = "awk '/^now at/ {print $3; exit}' /proc/timer_list";

pub fn run(args: &BenchArgs) -> Result<()> {
    anyhow::ensure!(
        args.rounds >= 1 && args.blocks >= 1 && args.cycles >= 1,
        "--rounds, --blocks and --cycles must be positive"
    );
    let spec = kernel::lookup(&args.kernel)?;
    setup::run()?;
    let bin = build_cmd::run(true)?;
    let k = kernel::fetch(spec)?;
    let out = util::repo_root().join("target").join("bench").join(spec.name);
    std::fs::create_dir_all(&out)?;
    let initrd = initramfs::build(&out.join("work"), Some(&bin), None, false)?;
    let sock_dir = std::env::temp_dir().join(format!("mhpscope-bench-{}", std::process::id()));
    let machine = Machine {
        icount: !args.wall_clock,
        ..Machine::default()
    };
    let cfg = QemuConfig {
        kernel: &k.vmlinuz,
        initrd: &initrd,
        console_log: &out.join("console.log"),
        qemu_log: &out.join("qemu.log"),
        sock_dir: &sock_dir,
        machine: &machine,
    };
    let mut qemu = Qemu::spawn(&cfg)?;
    let r = (|| -> Result<()> {
        let ctl = qemu.ctl_sock.clone();
        let mut guest =
            Guest::connect(&ctl, &mut qemu, Duration::from_secs(240)).context("booting the guest")?;
        let qmp_sock = qemu.qmp_sock.clone();
        let mut qmp = Qmp::connect(&qmp_sock, Instant::now())?;
        let mut g = Bench {
            guest: &mut guest,
            qemu: &mut qemu,
            recorder: Vec::new(),
            cycles: args.cycles,
        };
        let release = g.sh("uname -r", 30)?;
        let clock = g.sh(
            "cat /sys/devices/system/clocksource/clocksource0/current_clocksource",
            30,
        )?;
        println!("bench: guest {} up, clocksource {}", release.trim(), clock.trim());
        let blocks = g.hot_add(&mut qmp, args.blocks)?;
        let functions = g.traceable()?;
        println!(
            "bench: {} blocks {}..{}; function_graph filter: {}",
            blocks.len(),
            blocks[0],
            blocks[blocks.len() - 1],
            functions.join(" ")
        );
        let mut samples: Vec<(Mode, Vec<u64>)> = MODES.iter().map(|&m| (m, Vec::new())).collect();
        // A first cycle warms caches and page tables; it is not measured.
        g.cycle(&blocks, 1)?;
        for round in 0..args.rounds {
            let mut line = format!("bench: round {}/{}:", round + 1, args.rounds);
            for i in 0..MODES.len() {
                let mode = MODES[(round + i) % MODES.len()];
                let ns = g.measure(mode, &blocks, &functions)?;
                samples.iter_mut().find(|(m, _)| *m == mode).unwrap().1.push(ns);
                line += &format!("  {} {:.1} ms", mode.name(), ns as f64 / 1e6);
            }
            println!("{line}");
        }
        report(&samples, args, release.trim(), &out, &g.recorder)
    })();
    qemu.kill();
    let _ = std::fs::remove_dir_all(&sock_dir);
    r
}

struct Bench<'a> {
    guest: &'a mut Guest,
    qemu: &'a mut Qemu,
    /// Per measurement under mhpscope: what the recorder cost besides the probes.
    recorder: Vec<RecorderCost>,
    /// Cycles per measurement.
    cycles: u32,
}

/// The recorder's side of one measurement: its own CPU time during the cycle, and its probes'
/// self-cost (BPF run-time statistics, as `mhpscope probes` shows them).
struct RecorderCost {
    mode: Mode,
    cpu_ms: f64,
    /// Its CPU time while idle for `SETTLE` before the cycle.
    idle_ms: f64,
    probes: String,
}

const SETTLE: Duration = Duration::from_secs(2);

/// The recorder's time on a CPU so far, in ns, over all its threads (schedstat: finer than
/// utime + stime's 10 ms ticks).
const RECORDER_CPU_NS: &str =
    "cat /proc/$(cat /tmp/bench.pid)/task/*/schedstat | awk '{s += $1} END {printf \"%d\\n\", s}'";

impl Bench<'_> {
    fn sh(&mut self, cmd: &str, timeout_s: u64) -> Result<String> {
        self.guest.run_ok(self.qemu, cmd, Duration::from_secs(timeout_s))
    }

    fn block_ids(&mut self) -> Result<Vec<u64>> {
        self.guest.block_ids(self.qemu)
    }

    /// One DIMM of `blocks` blocks on node 1; its blocks stay offline (memhp_default_state).
    fn hot_add(&mut self, qmp: &mut Qmp, blocks: u64) -> Result<Vec<u64>> {
        let before = self.block_ids()?;
        let size = blocks << 27;
        qmp.execute(
            "object-add",
            Some(json!({"qom-type": "memory-backend-ram", "id": "bench", "size": size})),
        )?;
        qmp.execute(
            "device_add",
            Some(json!({"driver": "pc-dimm", "id": "dbench", "memdev": "bench", "node": 1})),
        )?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let new: Vec<u64> = self
                .block_ids()?
                .into_iter()
                .filter(|b| !before.contains(b))
                .collect();
            if new.len() as u64 >= blocks {
                return Ok(new);
            }
            if Instant::now() >= deadline {
                bail!("hot-added blocks did not appear within 120 s (new: {new:?})");
            }
            qmp.drain();
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn traceable(&mut self) -> Result<Vec<&'static str>> {
        let mut out = Vec::new();
        for f in FUNCTIONS {
            let n = self.sh(
                &format!("grep -cx '{f}' {TRACING}/available_filter_functions || true"),
                30,
            )?;
            if n.trim() != "0" {
                out.push(*f);
            }
        }
        anyhow::ensure!(!out.is_empty(), "none of the hotplug functions is traceable");
        Ok(out)
    }

    /// Onlines every block (movable), then offlines them, `times` times; the guest's time for
    /// one cycle, in ns (the mean).
    fn cycle(&mut self, blocks: &[u64], times: u32) -> Result<u64> {
        let list: Vec<String> = blocks.iter().map(u64::to_string).collect();
        let list = list.join(" ");
        let script = format!(
            "cd /sys/devices/system/memory; s=$({NOW}); \
             for i in $(seq {times}); do \
             for b in {list}; do echo online_movable > memory$b/state || exit 1; done; \
             for b in {list}; do echo offline > memory$b/state || exit 1; done; \
             done; e=$({NOW}); echo $((e - s))"
        );
        let out = self.sh(&script, 300 * times as u64)?;
        let total: u64 = out
            .trim()
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("cycle timing: {out:?}"))?;
        Ok(total / times as u64)
    }

    /// A cycle that is not measured, then the measured ones. Attaching patches kernel text,
    /// and the emulator's first pass over patched or freshly JIT-compiled code is not the
    /// steady cost of watching (under TCG it dominated a single cycle).
    fn warm_then_time(&mut self, blocks: &[u64]) -> Result<u64> {
        self.cycle(blocks, 1)?;
        self.timed(blocks)
    }

    fn timed(&mut self, blocks: &[u64]) -> Result<u64> {
        self.cycle(blocks, self.cycles)
    }

    /// Leaves the guest quiet for `SETTLE` of its own time. The previous mode's teardown
    /// (freeing trampolines waits for RCU-tasks grace periods, ftrace restores kernel text) goes
    /// on in the background for a while and must not land in the next measurement.
    fn settle(&mut self) -> Result<()> {
        self.sh(&format!("sleep {}", SETTLE.as_secs()), 30).map(|_| ())
    }

    fn measure(&mut self, mode: Mode, blocks: &[u64], functions: &[&str]) -> Result<u64> {
        self.settle()?;
        match mode {
            Mode::Untraced => self.warm_then_time(blocks),
            Mode::Mhpscope | Mode::MhpscopeWithCounter | Mode::MhpscopeSkipPageAlloc => {
                let flags = match mode {
                    Mode::MhpscopeWithCounter => format!("--with {COUNTER}"),
                    Mode::MhpscopeSkipPageAlloc => format!("--skip {PAGE_ALLOC}"),
                    _ => String::new(),
                };
                self.sh(
                    &format!(
                        "rm -f /tmp/bench.*; ( {MHPSCOPE} {flags} record -o /tmp/bench.ndjson >/tmp/bench.log 2>&1 & echo $! > /tmp/bench.pid )"
                    ),
                    30,
                )?;
                // Attached once the header is written.
                let deadline = Instant::now() + Duration::from_secs(120);
                while self
                    .sh("head -n 1 /tmp/bench.ndjson 2>/dev/null | wc -l", 30)?
                    .trim()
                    != "1"
                {
                    if Instant::now() >= deadline {
                        let log = self.sh("cat /tmp/bench.log", 30)?;
                        bail!("mhpscope record did not start: {log}");
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
                let cpu_ms = |g: &mut Self| -> Result<f64> {
                    let t = g.sh(RECORDER_CPU_NS, 30)?;
                    let ns: f64 = t
                        .trim()
                        .parse()
                        .with_context(|| format!("recorder CPU time: {t:?}"))?;
                    Ok(ns / 1e6)
                };
                // Start-up work that outlives the header (the first samples) is not the cost
                // of watching: let it settle, and measure what the recorder burns idle.
                let attached = cpu_ms(self)?;
                self.settle()?;
                let idle_ms = cpu_ms(self)? - attached;
                self.cycle(blocks, 1)?;
                let before = cpu_ms(self)?;
                let ns = self.timed(blocks);
                let cpu_ms = (cpu_ms(self)? - before) / self.cycles as f64;
                let probes = self.sh(
                    &format!("{MHPSCOPE} {flags} probes 2>&1 | sed -n '/[Ss]elf-cost/,$p'"),
                    120,
                )?;
                self.recorder.push(RecorderCost {
                    mode,
                    cpu_ms,
                    idle_ms,
                    probes,
                });
                self.sh(
                    "kill -INT $(cat /tmp/bench.pid); while kill -0 $(cat /tmp/bench.pid) 2>/dev/null; do sleep 0.2; done",
                    120,
                )?;
                let lost = self.sh("tail -n 1 /tmp/bench.ndjson", 30)?;
                anyhow::ensure!(
                    lost.contains("\"lost_events\":0"),
                    "mhpscope lost events or wrote no summary: {lost}"
                );
                ns
            }
            Mode::FunctionGraph | Mode::FunctionGraphWithCounter => {
                let functions: Vec<&str> = functions
                    .iter()
                    .copied()
                    .filter(|f| mode == Mode::FunctionGraphWithCounter || *f != COUNTED)
                    .collect();
                self.sh(
                    &format!(
                        "cd {TRACING} && echo 0 > tracing_on && echo > trace && echo '{}' > set_ftrace_filter \
                         && echo function_graph > current_tracer && echo 1 > tracing_on",
                        functions.join(" ")
                    ),
                    30,
                )?;
                let ns = self.warm_then_time(blocks);
                self.sh(
                    &format!("cd {TRACING} && echo 0 > tracing_on && echo nop > current_tracer && echo > set_ftrace_filter"),
                    30,
                )?;
                ns
            }
        }
    }
}

/// Of times (u64) and of ratios (f64, never NaN here).
fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).expect("comparable samples"));
    s[s.len() / 2]
}

/// Each round's time of `mode` over that same round's untraced time: pairing within a round
/// cancels drift between rounds.
fn paired_ratios(samples: &[(Mode, Vec<u64>)], mode: Mode) -> Vec<f64> {
    let of = |m: Mode| {
        &samples
            .iter()
            .find(|(x, _)| *x == m)
            .expect("every mode measured")
            .1
    };
    of(mode)
        .iter()
        .zip(of(Mode::Untraced))
        .map(|(&t, &base)| t as f64 / base as f64)
        .collect()
}

fn report(
    samples: &[(Mode, Vec<u64>)],
    args: &BenchArgs,
    release: &str,
    out: &std::path::Path,
    recorder: &[RecorderCost],
) -> Result<()> {
    let timing = if args.wall_clock {
        "wall clock (TCG)"
    } else {
        "instruction count (-icount: 1 ns per guest instruction)"
    };
    println!(
        "\nbench: online then offline {} blocks, {} times per measurement, in a {release} guest, {} rounds, timed by {timing}; median guest time per cycle, and median of each round's ratio to no tracing",
        args.blocks, args.cycles, args.rounds
    );
    let mut json_rows = Vec::new();
    for (mode, v) in samples {
        let ratios = paired_ratios(samples, *mode);
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let m = median(v);
        let ratio = median(&ratios);
        println!(
            "bench:   {:<16} {:>9.2} ms   x{ratio:.3}   (rounds: x{lo:.3} to x{hi:.3})",
            mode.name(),
            m as f64 / 1e6
        );
        json_rows.push(
            json!({"mode": mode.name(), "median_ns": m, "ratio": ratio, "ratios": ratios, "samples_ns": v}),
        );
    }
    let goal = 1.02;
    let ratio = |mode: Mode| median(&paired_ratios(samples, mode));
    let (mh, with, lean, fg, fg_with) = (
        ratio(Mode::Mhpscope),
        ratio(Mode::MhpscopeWithCounter),
        ratio(Mode::MhpscopeSkipPageAlloc),
        ratio(Mode::FunctionGraph),
        ratio(Mode::FunctionGraphWithCounter),
    );
    let cmp = |a: f64, b: f64| if a <= b { "at or below" } else { "above" };
    println!(
        "bench: mhpscope x{mh:.3} (goal <= {goal}: {}), {} function_graph x{fg:.3}; on the same functions only (--skip {PAGE_ALLOC}) x{lean:.3}, {} function_graph; with --with {COUNTER} x{with:.3}, {} function_graph+ x{fg_with:.3}",
        if mh <= goal { "met" } else { "not met" },
        cmp(mh, fg),
        cmp(lean, fg),
        cmp(with, fg_with),
    );
    let mut json_recorder = Vec::new();
    for mode in [
        Mode::Mhpscope,
        Mode::MhpscopeWithCounter,
        Mode::MhpscopeSkipPageAlloc,
    ] {
        let runs: Vec<&RecorderCost> = recorder.iter().filter(|r| r.mode == mode).collect();
        let Some(last) = runs.last() else { continue };
        let mid = |f: fn(&RecorderCost) -> f64| median(&runs.iter().map(|r| f(r)).collect::<Vec<_>>());
        let (cpu, idle) = (mid(|r| r.cpu_ms), mid(|r| r.idle_ms));
        println!(
            "bench: {}: the recorder's own CPU, median: {cpu:.2} ms during a cycle, {idle:.2} ms idle for {} s before it; its probes over the last round (warm-up and measured cycles):\n{}",
            mode.name(),
            SETTLE.as_secs(),
            last.probes.trim_end()
        );
        json_recorder.push(json!({
            "mode": mode.name(),
            "cpu_ms": runs.iter().map(|r| r.cpu_ms).collect::<Vec<_>>(),
            "idle_ms": runs.iter().map(|r| r.idle_ms).collect::<Vec<_>>(),
            "probes_last_round": last.probes,
        }));
    }
    let path = out.join("bench.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({
            "kernel": release, "blocks": args.blocks, "cycles": args.cycles, "rounds": args.rounds, "goal_ratio": goal,
            "timing": timing,
            "modes": json_rows, "recorder": json_recorder,
        }))?,
    )?;
    println!("bench: figures in {}", path.display());
    Ok(())
}
