//! `cargo xtask bench`: what mhpscope costs the path it watches. In a guest (software emulation:
//! ratios only, never absolute times), onlines then offlines the same blocks again and again,
//! alternating, round by round, between no tracing, `mhpscope record` attached (as shipped, with
//! its contiguity-cost counter on, without page allocations, and with its recorder stopped to
//! show the kernel side alone), and the kernel's function_graph tracer filtered to the same
//! functions (what a user would reach for today), with and without a reader of its trace, so
//! that like is compared with like. The guest's clock counts instructions
//! (`-icount`), so that the emulator's speed does not show in its time. Prints the median time
//! of each mode and the median of its per-round ratio to no tracing.

mod reporting;
pub mod scale;
pub mod soak;

use crate::vm::guest::Guest;
use crate::vm::initramfs::MHPSCOPE;
use crate::vm::qemu::{Machine, Qemu, QemuConfig};
use crate::vm::qmp::Qmp;
use crate::{build_cmd, setup, util, vm::initramfs, vm::kernel};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[arg(long, default_value = kernel::DEFAULT)]
    pub kernel: String,
    /// Rounds; each measures every mode once, in a rotating order.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Online/offline cycles per measurement. Many, so that the recorder's periodic work (a
    /// drain every 250 ms) falls into every measurement in proportion: over 4 cycles (0.4 s)
    /// one or two drains landed by chance of phase, 1% apart.
    #[arg(long, default_value_t = 10)]
    pub cycles: u32,
    /// Memory blocks (128 MiB each) onlined and offlined per measurement.
    #[arg(long, default_value_t = 16)]
    pub blocks: u64,
    /// Time by wall clock instead of by instruction count (`-icount`): the emulator's speed
    /// then shows in the guest's time.
    #[arg(long)]
    pub wall_clock: bool,
    /// Measure only these modes (no tracing is always measured): record, with, skip, kernel,
    /// function_graph, function_graph+, function_graph-read.
    #[arg(long, value_delimiter = ',')]
    pub modes: Vec<String>,
    /// More options for mhpscope in every mhpscope mode, to measure a variant: e.g.
    /// `--mhpscope-flags="--avoid raw_tracepoint"` or `--mhpscope-flags="--skip mm_page_alloc"`.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub mhpscope_flags: String,
    /// What the guest does: online/offline blocks, or free memory for free page reporting (a
    /// virtio balloon reporting free pages; modes none, record and kernel; --cycles and
    /// --blocks do not apply).
    #[arg(long, value_enum, default_value_t = Workload::Hotplug)]
    pub workload: Workload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    Hotplug,
    Reporting,
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
    /// As shipped, with the recorder stopped (SIGSTOP) during the timed cycles: what the
    /// kernel side costs on its own (events wait in the ring buffer and are drained after).
    MhpscopeKernelSide,
    /// Filtered to the functions mhpscope traces by default on this path. Nothing reads the
    /// trace while it runs: the kernel side on its own.
    FunctionGraph,
    /// The same and `__pageblock_pfn_to_page`, as `MhpscopeWithCounter`.
    FunctionGraphWithCounter,
    /// `FunctionGraph` with a reader (`cat trace_pipe` to a file), as a user would run it and
    /// as `Mhpscope` runs its recorder.
    FunctionGraphRead,
}

const MODES: [Mode; 8] = [
    Mode::Untraced,
    Mode::Mhpscope,
    Mode::MhpscopeWithCounter,
    Mode::MhpscopeSkipPageAlloc,
    Mode::MhpscopeKernelSide,
    Mode::FunctionGraph,
    Mode::FunctionGraphWithCounter,
    Mode::FunctionGraphRead,
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
            Mode::MhpscopeKernelSide => "mhpscope kernel",
            Mode::FunctionGraph => "function_graph",
            Mode::FunctionGraphWithCounter => "function_graph+",
            Mode::FunctionGraphRead => "function_graph|cat",
        }
    }

    /// The name `--modes` takes.
    fn key(self) -> &'static str {
        match self {
            Mode::Untraced => "none",
            Mode::Mhpscope => "record",
            Mode::MhpscopeWithCounter => "with",
            Mode::MhpscopeSkipPageAlloc => "skip",
            Mode::MhpscopeKernelSide => "kernel",
            Mode::FunctionGraph => "function_graph",
            Mode::FunctionGraphWithCounter => "function_graph+",
            Mode::FunctionGraphRead => "function_graph-read",
        }
    }
}

/// The modes `--modes` asks for (all when empty), no tracing first and always.
fn selected_modes(keys: &[String]) -> Result<Vec<Mode>> {
    for k in keys {
        if !MODES.iter().any(|m| m.key() == k) {
            let known: Vec<&str> = MODES.iter().map(|m| m.key()).collect();
            bail!("unknown bench mode {k:?} (known: {})", known.join(", "));
        }
    }
    Ok(MODES
        .iter()
        .copied()
        .filter(|m| *m == Mode::Untraced || keys.is_empty() || keys.iter().any(|k| k == m.key()))
        .collect())
}

/// The hotplug functions on the online/offline path that mhpscope probes; function_graph is
/// filtered to those of them the guest kernel can trace, as mhpscope attaches to them. (6.1
/// cannot trace `memmap_init_range`, 6.12 and later can.)
const FUNCTIONS: &[&str] = &[
    "online_pages",
    "offline_pages",
    "move_pfn_range_to_zone",
    "memmap_init_range",
    "remove_pfn_range_from_zone",
    "set_zone_contiguous",
    "mhp_init_memmap_on_memory",
    COUNTED,
];

const TRACING: &str = "/sys/kernel/tracing";

pub fn run(args: &BenchArgs) -> Result<()> {
    anyhow::ensure!(
        args.rounds >= 1 && args.blocks >= 1 && args.cycles >= 1,
        "--rounds, --blocks and --cycles must be positive"
    );
    let reporting = args.workload == Workload::Reporting;
    let modes = if reporting {
        Vec::new()
    } else {
        selected_modes(&args.modes)?
    };
    let reporting_modes = if reporting {
        reporting_modes(&args.modes)?
    } else {
        Vec::new()
    };
    let spec = kernel::lookup(&args.kernel)?;
    setup::run()?;
    let bin = build_cmd::run(true)?;
    let k = kernel::fetch(spec)?;
    let out = util::repo_root().join("target").join("bench").join(spec.name);
    std::fs::create_dir_all(&out)?;
    // The reporting workload needs virtio_balloon, a module, from the kernel's package.
    let root = reporting.then_some(k.root.as_path());
    let initrd = initramfs::build(&out.join("work"), Some(&bin), root, false)?;
    let sock_dir = std::env::temp_dir().join(format!("mhpscope-bench-{}", std::process::id()));
    let machine = Machine {
        icount: !args.wall_clock,
        balloon: reporting,
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
            extra_flags: &args.mhpscope_flags,
        };
        let release = g.sh("uname -r", 30)?;
        let clock = g.sh(
            "cat /sys/devices/system/clocksource/clocksource0/current_clocksource",
            30,
        )?;
        println!("bench: guest {} up, clocksource {}", release.trim(), clock.trim());
        if reporting {
            return g.run_reporting(&reporting_modes, args.rounds, release.trim(), &out);
        }
        let blocks = g.hot_add(&mut qmp, args.blocks)?;
        let functions = g.traceable()?;
        println!(
            "bench: {} blocks {}..{}; function_graph filter: {}",
            blocks.len(),
            blocks[0],
            blocks[blocks.len() - 1],
            functions.join(" ")
        );
        let mut samples: Vec<Samples> = modes
            .iter()
            .map(|&mode| Samples {
                mode,
                ns: Vec::new(),
                migrated: Vec::new(),
            })
            .collect();
        // A first cycle warms caches and page tables; it is not measured.
        g.cycle(&blocks, 1)?;
        for round in 0..args.rounds {
            let mut line = format!("bench: round {}/{}:", round + 1, args.rounds);
            for i in 0..modes.len() {
                let mode = modes[(round + i) % modes.len()];
                let t = g.measure(mode, &blocks, &functions)?;
                let of_mode = samples.iter_mut().find(|x| x.mode == mode).unwrap();
                of_mode.ns.push(t.ns_per_cycle);
                of_mode.migrated.push(t.migrated_per_cycle);
                line += &format!(
                    "  {} {:.1} ms ({:.0} pages migrated)",
                    mode.name(),
                    t.ns_per_cycle as f64 / 1e6,
                    t.migrated_per_cycle
                );
            }
            println!("{line}");
        }
        report(&samples, args, release.trim(), &out, &g.recorder)
    })();
    qemu.kill();
    let _ = std::fs::remove_dir_all(&sock_dir);
    r
}

/// `--modes` for the reporting workload: none (always, first), record, kernel.
fn reporting_modes(keys: &[String]) -> Result<Vec<reporting::Mode>> {
    use reporting::Mode as R;
    let mut modes = vec![R::Untraced];
    for k in keys {
        let m = match k.as_str() {
            "none" => continue,
            "record" => R::Mhpscope,
            "kernel" => R::MhpscopeKernelSide,
            other => bail!("--modes {other}: the reporting workload measures none, record and kernel"),
        };
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    if keys.is_empty() {
        modes = reporting::MODES.to_vec();
    }
    Ok(modes)
}

impl Bench<'_> {
    /// The reporting workload: virtio_balloon loaded, a warm-up, then every mode once per
    /// round in a rotating order.
    fn run_reporting(
        &mut self,
        modes: &[reporting::Mode],
        rounds: usize,
        release: &str,
        out: &std::path::Path,
    ) -> Result<()> {
        let loaded = self
            .sh(initramfs::LOAD_BALLOON, 60)
            .context("loading virtio_balloon")?;
        println!("bench: {}", loaded.trim());
        self.sh("dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null", 300)?;
        let mut samples = Vec::new();
        let mut probes = None;
        for round in 0..rounds {
            let mut line = format!("bench: round {}/{rounds}:", round + 1);
            for i in 0..modes.len() {
                let mode = modes[(round + i) % modes.len()];
                let (s, p) = self.measure_reporting(mode)?;
                line += &format!(
                    "  {} dd {:.1} ms, window busy {:.1} ms, RSS -{} MiB",
                    mode.name(),
                    s.dd_ns as f64 / 1e6,
                    s.busy_ns as f64 / 1e6,
                    s.rss_fall_kib >> 10
                );
                samples.push(s);
                probes = p.or(probes);
            }
            println!("{line}");
        }
        reporting::report(&samples, probes.as_deref(), rounds, release, out)
    }
}

struct Bench<'a> {
    guest: &'a mut Guest,
    qemu: &'a mut Qemu,
    /// Per measurement under mhpscope: what the recorder cost besides the probes.
    recorder: Vec<RecorderCost>,
    /// Cycles per measurement.
    cycles: u32,
    /// `--mhpscope-flags`.
    extra_flags: &'a str,
}

/// The recorder's side of one measurement: its own CPU time during the cycle, and its probes'
/// self-cost (BPF run-time statistics, as `mhpscope probes` shows them).
struct RecorderCost {
    mode: Mode,
    /// Its CPU time while idle for `SETTLE` before the cycle.
    idle_ms: f64,
    /// Per thread: name and CPU ms per cycle.
    threads: Vec<(String, f64)>,
    probes: String,
}

impl RecorderCost {
    /// Its CPU time per cycle, all threads together.
    fn cpu_ms(&self) -> f64 {
        self.threads.iter().map(|(_, ms)| ms).sum()
    }
}

const SETTLE: Duration = Duration::from_secs(2);

/// Shell function: the threads of the recorder (pid in `$P`) into `$th` as ` name=cpu_ns`
/// (schedstat: finer than utime + stime's 10 ms ticks), with builtins only.
const THREADS_FN: &str = "threads() { th=''; [ -n \"$P\" ] || return 0; for t in /proc/$P/task/*; do \
                          read n < $t/comm; read x y < $t/schedstat; th=\"$th $n=$x\"; done; }";

/// A guest command that prints the recorder's threads as `THREADS_FN` lists them.
fn threads_script(pid: &str) -> String {
    format!("( P={pid}; {THREADS_FN}; threads; echo \"x$th\" )")
}

/// The guest script for `warm` untimed then `timed` timed cycles. A subshell, since the guest
/// agent evaluates commands in its own shell; shell builtins only between the two, so that no
/// process starts or exits next to a timed cycle. Prints the pages migrated during the timed
/// cycles, their total guest time (ns), then the recorder's threads as `name=cpu_ns` before
/// and after them (empty without a recorder).
fn cycle_script(blocks: &[u64], warm: u32, timed: u32, recorder: Option<&str>) -> String {
    let list: Vec<String> = blocks.iter().map(u64::to_string).collect();
    let list = list.join(" ");
    let pid = recorder.unwrap_or("");
    format!(
        "( cd /sys/devices/system/memory; P={pid}; \
         cyc() {{ for b in {list}; do echo online_movable > memory$b/state || exit 1; done; \
                  for b in {list}; do echo offline > memory$b/state || exit 1; done; }}; \
         now() {{ while read a b c d; do [ \"$a $b\" = 'now at' ] && break; done < /proc/timer_list; }}; \
         {THREADS_FN}; \
         migrated() {{ while read k v; do [ $k = pgmigrate_success ] && m=$v; done < /proc/vmstat; }}; \
         i=0; while [ $i -lt {warm} ]; do cyc; i=$((i + 1)); done; \
         [ {timed} -gt 0 ] || exit 0; \
         threads; t0=$th; migrated; m0=$m; now; s=$c; \
         i=0; while [ $i -lt {timed} ]; do cyc; i=$((i + 1)); done; \
         now; e=$c; migrated; threads; echo $((m - m0)); echo $((e - s)); echo \"x$t0\"; echo \"x$th\" )"
    )
}

/// What one measurement's timed cycles took.
struct Timed {
    ns_per_cycle: u64,
    /// Pages that offlining had to migrate (`pgmigrate_success`), per cycle.
    migrated_per_cycle: f64,
    /// The recorder's threads: name and CPU ms per cycle.
    threads: Vec<(String, f64)>,
}

/// A `name=ns` listing of threads (prefixed with `x` so that an empty listing is still a line).
fn parse_threads(s: &str) -> Vec<(String, f64)> {
    s.trim()
        .trim_start_matches('x')
        .split_whitespace()
        .filter_map(|f| {
            let (name, ns) = f.split_once('=')?;
            Some((name.to_string(), ns.parse().ok()?))
        })
        .collect()
}

/// Per thread, CPU ms per cycle between two listings.
fn thread_costs(before: &str, after: &str, cycles: u32) -> Vec<(String, f64)> {
    parse_threads(before)
        .into_iter()
        .zip(parse_threads(after))
        .map(|((name, ns0), (_, ns1))| (name, (ns1 - ns0) / 1e6 / cycles as f64))
        .collect()
}

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

    /// Onlines every block (movable) then offlines them, `times` times (hot-add warm-up).
    fn cycle(&mut self, blocks: &[u64], times: u32) -> Result<()> {
        self.sh(&cycle_script(blocks, times, 0, None), 300 * times as u64)
            .map(|_| ())
    }

    /// One cycle that is not timed, then `self.cycles` timed ones, in one guest command that
    /// forks nothing between them. Whatever ran just before (the bench's own commands, a
    /// tracer starting) leaves work behind (freed pages, deferred teardown) that landed in the
    /// first cycle after it: up to 25% longer in every mode, by chance of how much was left.
    /// The untimed cycle takes it. With `recorder`, also samples the recorder's threads.
    fn timed(&mut self, blocks: &[u64], recorder: Option<&str>) -> Result<Timed> {
        let times = 1 + self.cycles;
        let out = self.sh(
            &cycle_script(blocks, 1, self.cycles, recorder),
            300 * times as u64,
        )?;
        let mut lines = out.trim().lines().rev();
        let (after, before, ns) = (lines.next(), lines.next(), lines.next());
        let migrated: u64 = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("migrated pages: {out:?}"))?;
        let total: u64 = ns
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("cycle timing: {out:?}"))?;
        Ok(Timed {
            ns_per_cycle: total / self.cycles as u64,
            migrated_per_cycle: migrated as f64 / self.cycles as f64,
            threads: thread_costs(before.unwrap_or(""), after.unwrap_or(""), self.cycles),
        })
    }

    /// Leaves the guest quiet for `SETTLE` of its own time. The previous mode's teardown
    /// (freeing trampolines waits for RCU-tasks grace periods, ftrace restores kernel text) goes
    /// on in the background for a while and must not land in the next measurement.
    fn settle(&mut self) -> Result<()> {
        self.sh(&format!("sleep {}", SETTLE.as_secs()), 30).map(|_| ())
    }

    /// Starts `mhpscope record` with `flags` and waits until it is attached (its header
    /// written); then lets its start-up work settle and measures what it burns idle. Returns
    /// its pid and that idle CPU time (ms over `SETTLE`).
    fn start_recorder(&mut self, flags: &str) -> Result<(String, f64)> {
        self.sh(
            &format!(
                "rm -f /tmp/bench.*; ( {MHPSCOPE} {flags} record -o /tmp/bench.ndjson >/tmp/bench.log 2>&1 & echo $! > /tmp/bench.pid )"
            ),
            30,
        )?;
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
        let pid = self.sh("cat /tmp/bench.pid", 30)?.trim().to_string();
        // All threads together: one that starts meanwhile must not shift the others.
        let cpu_ns = |g: &mut Self| -> Result<f64> {
            let listing = g.sh(&threads_script(&pid), 30)?;
            let threads = parse_threads(&listing);
            anyhow::ensure!(!threads.is_empty(), "recorder threads: {listing:?}");
            Ok(threads.iter().map(|(_, ns)| ns).sum())
        };
        // Start-up work that outlives the header (the first samples) is not the cost of
        // watching: let it settle, and measure what the recorder burns idle.
        let attached = cpu_ns(self)?;
        self.settle()?;
        let idle_ms = (cpu_ns(self)? - attached) / 1e6;
        Ok((pid, idle_ms))
    }

    /// Stops the recorder and checks that it lost nothing and wrote its summary.
    fn stop_recorder(&mut self) -> Result<()> {
        self.sh(
            "kill -INT $(cat /tmp/bench.pid); while kill -0 $(cat /tmp/bench.pid) 2>/dev/null; do sleep 0.2; done",
            120,
        )?;
        let lost = self.sh("tail -n 1 /tmp/bench.ndjson", 30)?;
        anyhow::ensure!(
            lost.contains("\"lost_events\":0"),
            "mhpscope lost events or wrote no summary: {lost}"
        );
        Ok(())
    }

    fn measure(&mut self, mode: Mode, blocks: &[u64], functions: &[&str]) -> Result<Timed> {
        self.settle()?;
        match mode {
            Mode::Untraced => self.timed(blocks, None),
            Mode::Mhpscope
            | Mode::MhpscopeWithCounter
            | Mode::MhpscopeSkipPageAlloc
            | Mode::MhpscopeKernelSide => {
                let mode_flags = match mode {
                    Mode::MhpscopeWithCounter => format!("--with {COUNTER}"),
                    Mode::MhpscopeSkipPageAlloc => format!("--skip {PAGE_ALLOC}"),
                    _ => String::new(),
                };
                // The recorder's own cost per probe comes from BPF run-time statistics.
                let flags = format!("{mode_flags} --self-cost {}", self.extra_flags);
                let (pid, idle_ms) = self.start_recorder(&flags)?;
                let paused = mode == Mode::MhpscopeKernelSide;
                if paused {
                    self.sh(&format!("kill -STOP {pid}"), 30)?;
                }
                let timed = self.timed(blocks, Some(&pid))?;
                if paused {
                    self.sh(&format!("kill -CONT {pid}"), 30)?;
                }
                let probes = self.sh(
                    &format!("{MHPSCOPE} {flags} probes 2>&1 | sed -n '/[Ss]elf-cost/,$p'"),
                    120,
                )?;
                self.recorder.push(RecorderCost {
                    mode,
                    idle_ms,
                    threads: timed.threads.clone(),
                    probes,
                });
                self.stop_recorder()?;
                Ok(timed)
            }
            Mode::FunctionGraph | Mode::FunctionGraphWithCounter | Mode::FunctionGraphRead => {
                let reader = mode == Mode::FunctionGraphRead;
                let functions: Vec<&str> = functions
                    .iter()
                    .copied()
                    .filter(|f| mode == Mode::FunctionGraphWithCounter || *f != COUNTED)
                    .collect();
                let (start_reader, stop_reader) = if reader {
                    (
                        " && rm -f /tmp/fg.txt && ( cat trace_pipe > /tmp/fg.txt & echo $! > /tmp/fg.pid )",
                        // The tracer cannot change while trace_pipe is open (EBUSY), and the
                        // reader takes a moment to exit.
                        "p=$(cat /tmp/fg.pid); kill $p; i=0; while kill -0 $p 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done; ",
                    )
                } else {
                    ("", "")
                };
                self.sh(
                    &format!(
                        "cd {TRACING} && echo 0 > tracing_on && echo > trace && echo '{}' > set_ftrace_filter \
                         && echo function_graph > current_tracer && echo 1 > tracing_on{start_reader}",
                        functions.join(" ")
                    ),
                    30,
                )?;
                let ns = self.timed(blocks, None);
                self.sh(
                    &format!(
                        "cd {TRACING} && echo 0 > tracing_on && {stop_reader}echo nop > current_tracer \
                         && echo > set_ftrace_filter"
                    ),
                    30,
                )?;
                if reader {
                    // The reader must have seen the calls, or this mode measured nothing.
                    let read = self.sh("grep -c online_pages /tmp/fg.txt || true", 30)?;
                    let seen: u64 = read.trim().parse().unwrap_or(0);
                    anyhow::ensure!(
                        seen > 0,
                        "the function_graph reader saw no online_pages call: {read:?}"
                    );
                }
                ns
            }
        }
    }
}

/// The modes that run a recorder.
const RECORDING_MODES: [Mode; 4] = [
    Mode::Mhpscope,
    Mode::MhpscopeWithCounter,
    Mode::MhpscopeSkipPageAlloc,
    Mode::MhpscopeKernelSide,
];

/// Of times (u64) and of ratios (f64, never NaN here).
fn median<T: Copy + PartialOrd>(v: &[T]) -> T {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).expect("comparable samples"));
    s[s.len() / 2]
}

/// One mode's measurements, one per round.
struct Samples {
    mode: Mode,
    /// Guest time per cycle.
    ns: Vec<u64>,
    /// Pages that offlining migrated per cycle: what ran meanwhile and allocated on the
    /// blocks being offlined (a recorder writing its file) costs the offline path that too.
    migrated: Vec<f64>,
}

/// Each round's time of `mode` over that same round's untraced time: pairing within a round
/// cancels drift between rounds.
fn paired_ratios(samples: &[Samples], mode: Mode) -> Vec<f64> {
    let of = |m: Mode| {
        &samples
            .iter()
            .find(|x| x.mode == m)
            .expect("every mode measured")
            .ns
    };
    of(mode)
        .iter()
        .zip(of(Mode::Untraced))
        .map(|(&t, &base)| t as f64 / base as f64)
        .collect()
}

fn report(
    samples: &[Samples],
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
    if !args.mhpscope_flags.is_empty() {
        println!("bench: every mhpscope mode ran with {}", args.mhpscope_flags);
    }
    let mut json_rows = Vec::new();
    for Samples {
        mode,
        ns: v,
        migrated: pages,
    } in samples
    {
        let ratios = paired_ratios(samples, *mode);
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let m = median(v);
        let ratio = median(&ratios);
        println!(
            "bench:   {:<19} {:>9.2} ms   x{ratio:.3}   (rounds: x{lo:.3} to x{hi:.3})   {:.0} pages migrated",
            mode.name(),
            m as f64 / 1e6,
            median(pages)
        );
        json_rows.push(json!({
            "mode": mode.name(), "median_ns": m, "ratio": ratio, "ratios": ratios, "samples_ns": v,
            "migrated_pages_per_cycle": pages,
        }));
    }
    let goal = 1.02;
    let ratio = |mode: Mode| {
        samples
            .iter()
            .any(|x| x.mode == mode)
            .then(|| median(&paired_ratios(samples, mode)))
    };
    if let Some(mh) = ratio(Mode::Mhpscope) {
        println!(
            "bench: mhpscope x{mh:.3}: goal <= {goal} {}",
            if mh <= goal { "met" } else { "not met" }
        );
    }
    // Like against like: each mhpscope variant beside the function_graph run that watches the
    // same functions the same way (with or without a reader, with or without the counter).
    for (ours, theirs, what) in [
        (Mode::Mhpscope, Mode::FunctionGraphRead, "with their readers"),
        (
            Mode::MhpscopeKernelSide,
            Mode::FunctionGraph,
            "kernel side only, nothing reading",
        ),
        (
            Mode::MhpscopeWithCounter,
            Mode::FunctionGraphWithCounter,
            "with the contiguity counter",
        ),
    ] {
        if let (Some(a), Some(b)) = (ratio(ours), ratio(theirs)) {
            // Four decimals and the difference: at three, two modes 0.04% apart print alike.
            println!(
                "bench: {what}: {} x{a:.4} {} {} x{b:.4} ({:+.3}% of an untraced cycle)",
                ours.name(),
                if a <= b { "at or below" } else { "above" },
                theirs.name(),
                (a - b) * 100.0
            );
        }
    }
    let mut json_recorder = Vec::new();
    for mode in RECORDING_MODES {
        let runs: Vec<&RecorderCost> = recorder.iter().filter(|r| r.mode == mode).collect();
        let Some(last) = runs.last() else { continue };
        let mid = |f: fn(&RecorderCost) -> f64| median(&runs.iter().map(|r| f(r)).collect::<Vec<_>>());
        let (cpu, idle) = (mid(|r| r.cpu_ms()), mid(|r| r.idle_ms));
        let threads: Vec<String> = last
            .threads
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.2} ms"))
            .collect();
        println!(
            "bench: {}: the recorder's own CPU, median: {cpu:.2} ms during a cycle, {idle:.2} ms idle for {} s before it; per cycle by thread (last round): {}; its probes over the last round (warm-up and measured cycles):\n{}",
            mode.name(),
            SETTLE.as_secs(),
            threads.join(", "),
            last.probes.trim_end()
        );
        json_recorder.push(json!({
            "mode": mode.name(),
            "cpu_ms": runs.iter().map(|r| r.cpu_ms()).collect::<Vec<_>>(),
            "idle_ms": runs.iter().map(|r| r.idle_ms).collect::<Vec<_>>(),
            "threads_last_round": last.threads,
            "probes_last_round": last.probes,
        }));
    }
    let path = out.join("bench.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&json!({
            "kernel": release, "blocks": args.blocks, "cycles": args.cycles, "rounds": args.rounds, "goal_ratio": goal,
            "mhpscope_flags": args.mhpscope_flags,
            "timing": timing,
            "modes": json_rows, "recorder": json_recorder,
        }))?,
    )?;
    println!("bench: figures in {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script runs under the guest's busybox sh; with no blocks it changes nothing, so it
    /// can run here and show that its clock and thread readings parse.
    #[test]
    fn cycle_script_times_and_samples_threads_with_builtins_only() {
        let busybox = std::path::Path::new("/bin/busybox");
        if !busybox.exists() {
            eprintln!("skipped: no /bin/busybox (cargo xtask setup installs it)");
            return;
        }
        // The shell's own pid: one thread, which stays. The test harness's threads come and
        // go as the other tests run, and would not pair up between the two listings.
        let pid = "$$";
        let out = std::process::Command::new(busybox)
            // Followed by another command, as in the guest agent's shell, which it must not end.
            .args([
                "sh",
                "-c",
                &format!("{}; echo alive", cycle_script(&[], 1, 2, Some(pid))),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.trim().lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[4], "alive");
        let _migrated: u64 = lines[0].parse().unwrap();
        let ns: u64 = lines[1].parse().unwrap();
        assert!(ns > 0 && ns < 10_000_000_000, "{ns}");
        let threads = thread_costs(lines[2], lines[3], 2);
        assert!(!threads.is_empty(), "the shell's thread: {text}");
        assert!(threads.iter().all(|(_, ms)| *ms >= 0.0));
        // The idle reading lists the same threads the same way.
        let out = std::process::Command::new(busybox)
            .args(["sh", "-c", &threads_script(pid)])
            .output()
            .unwrap();
        let listing = String::from_utf8(out.stdout).unwrap();
        let idle = parse_threads(&listing);
        assert!(!idle.is_empty(), "{listing}");
        assert!(idle.iter().map(|(_, ns)| ns).sum::<f64>() > 0.0, "{listing}");
    }
}
