//! The `reporting` scenario: free page reporting to a virtio balloon
//! (`-device virtio-balloon-pci,free-page-reporting=on`), one boot, memmap_on_memory=0:
//!
//! 1. virtio_balloon is loaded (every scenario's `prepare`): the device registers and reports
//!    all free memory once; the guest's ftrace (function tracer on `page_reporting_process` and
//!    `virtballoon_free_page_report`) watches until no cycle has run for a while;
//! 2. ftrace (on the guest's CLOCK_MONOTONIC, `trace_clock` mono) is switched on and the
//!    recorder starts; ftrace's calls count from the recording header's monotonic clock on;
//! 3. d1 (256 MiB on node 1, preallocated on the host so that every page of it is resident)
//!    is hot-added and its blocks onlined `online_movable`: reporting now covers a hotplugged
//!    zone, and hands most of the DIMM back to the host;
//! 4. three times, `dd bs=256M count=1` touches a 256 MiB buffer and frees it; each time the
//!    scenario waits until ftrace shows no new cycle;
//! 5. the recorder stops; ftrace's window closes in the same guest command; ftrace's counts.
//!
//! Around steps 3 and 4 the host reads qemu's VmRSS: once the memory is touched (after the
//! DIMM's preallocation, after dd exited) and once reporting went quiet. Counts are compared;
//! timestamps only place ftrace's window: a cycle that ran while the recorder still started
//! (its header not written yet: ftrace already counting) is left out. On TCG mhpscope's start
//! takes seconds, and what it frees asks for a cycle 2 s later.

use super::{poweroff, prepare, save_dmesg, start_recorder, stop_recorder, Ctx, Flow};
use crate::lab::truth::{ReportingTruth, RssPhase};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

const TRACING: &str = "/sys/kernel/tracing";
/// ftrace's switch: opened before the recorder starts, closed by stop_recorder in the command
/// that stops the recorder.
pub const TRACING_ON: &str = "/sys/kernel/tracing/tracing_on";
/// The functions ftrace counts: one call per cycle, one per report to the device.
const CYCLE_FN: &str = "page_reporting_process";
const REPORT_FN: &str = "virtballoon_free_page_report";
/// Workload rounds and the buffer each touches and frees.
const ROUNDS: u32 = 3;
const DD_MIB: u64 = 256;
/// Reporting is quiet once ftrace shows no new cycle for this long. A cycle runs 2 s after
/// the free that asks for it (PAGE_REPORTING_DELAY) and one that used up its budget asks for
/// the next itself, 2 s later.
const QUIET: Duration = Duration::from_secs(4);

fn count_cmd(f: &str) -> String {
    format!("grep -c ': {f} <-' {TRACING}/trace || true")
}

impl Ctx<'_> {
    fn ftrace_count(&mut self, f: &str) -> Result<u64> {
        let out = self.sh(&count_cmd(f), 60)?;
        out.trim()
            .parse()
            .with_context(|| format!("ftrace count of {f}: {out:?}"))
    }

    /// Waits until ftrace has seen no new reporting cycle for QUIET (at most `max`); returns
    /// the cycles it counted.
    fn wait_quiet(&mut self, max: Duration) -> Result<u64> {
        let deadline = Instant::now() + max;
        let mut last = self.ftrace_count(CYCLE_FN)?;
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(1000));
            let n = self.ftrace_count(CYCLE_FN)?;
            if n != last {
                last = n;
                since = Instant::now();
            } else if since.elapsed() >= QUIET {
                return Ok(n);
            }
            if Instant::now() >= deadline {
                bail!(
                    "free page reporting still ran cycles after {} s ({n} so far)",
                    max.as_secs()
                );
            }
        }
    }

    fn rt(&mut self) -> &mut ReportingTruth {
        self.truth.reporting.get_or_insert_with(Default::default)
    }
}

pub fn run(c: &mut Ctx) -> Result<()> {
    debug_assert_eq!(c.plan.flow, Flow::Reporting);
    c.step(
        "prepare",
        "auto_online_blocks=offline, uname -r, memmap_on_memory, nodes, boot log, load virtio_balloon, snapshot boot",
        prepare,
    )?;
    c.step(
        "ftrace-settle",
        "ftrace function tracer on page_reporting_process and virtballoon_free_page_report; wait until the \
         device's first full report is done; close and clear the buffer",
        settle,
    )?;
    c.snapshot("before-add")?;
    c.step("ftrace-on", "echo 1 > tracing_on", |c| {
        c.sh(&format!("echo 1 > {TRACING_ON}"), 30).map(|_| ())
    })?;
    if c.with_mhpscope {
        c.step(
            "start-recorder",
            "mhpscope record -o /tmp/rec.ndjson &, wait for its header; mhpscope probes",
            start_recorder,
        )?;
    }
    let d = c.plan.dimms[0];
    c.step(
        "add-d1",
        &format!(
            "QMP object-add {} {} MiB prealloc=on, device_add pc-dimm {} node {}; wait for its blocks; snapshot after-add-{}",
            d.memdev,
            d.size >> 20,
            d.id,
            d.node,
            d.id
        ),
        add_preallocated,
    )?;
    c.step(
        "online",
        "echo online_movable > memoryN/state for d1's blocks; wait until reporting is quiet; qemu RSS before and after; snapshot after-online",
        |c| {
            let blocks = c.truth.hot_added_blocks();
            let high = c.qemu.rss_kib()?;
            c.write_states(&blocks, "online_movable")?;
            c.wait_quiet(Duration::from_secs(120))?;
            let low = c.qemu.rss_kib()?;
            println!("lab:        qemu RSS {high} KiB -> {low} KiB");
            c.rt().rss.push(RssPhase {
                what: "online d1".into(),
                high_kib: high,
                low_kib: low,
            });
            c.snapshot("after-online")
        },
    )?;
    for round in 1..=ROUNDS {
        c.step(
            &format!("free-{round}"),
            &format!(
                "dd if=/dev/zero of=/dev/null bs={DD_MIB}M count=1 (touch and free {DD_MIB} MiB); qemu RSS; wait until reporting is quiet; qemu RSS"
            ),
            |c| {
                c.sh(&format!("dd if=/dev/zero of=/dev/null bs={DD_MIB}M count=1"), 300)?;
                let high = c.qemu.rss_kib()?;
                let n = c.wait_quiet(Duration::from_secs(120))?;
                let low = c.qemu.rss_kib()?;
                println!("lab:        qemu RSS {high} KiB -> {low} KiB; {n} cycles so far");
                c.rt().rss.push(RssPhase {
                    what: format!("dd round {round}"),
                    high_kib: high,
                    low_kib: low,
                });
                Ok(())
            },
        )?;
    }
    c.snapshot("after-reporting")?;
    if c.with_mhpscope {
        c.step(
            "stop-recorder",
            "mhpscope probes; wait 4 s; close ftrace's window and kill -INT mhpscope record in one command; fetch /tmp/rec.ndjson",
            stop_recorder,
        )?;
    } else {
        c.sh(&format!("echo 0 > {TRACING_ON}"), 30)?;
    }
    c.step(
        "ftrace-count",
        "save ftrace's buffer to ftrace.txt (before current_tracer changes: that clears it); count page_reporting_process and \
         virtballoon_free_page_report from the recording header's monotonic clock on",
        |c| {
            let overrun: u64 = c
                .sh(
                    &format!("cat {TRACING}/per_cpu/cpu*/stats | grep '^overrun:' | tr -dc '0-9\\n' | awk '{{s+=$1}} END {{print s+0}}'"),
                    30,
                )?
                .trim()
                .parse()
                .context("ftrace overrun")?;
            let trace = c.sh(&format!("cat {TRACING}/trace"), 120)?;
            std::fs::write(c.out_dir.join("ftrace.txt"), &trace)?;
            let start = c
                .truth
                .mhpscope
                .as_ref()
                .and_then(|m| m.header.as_deref())
                .and_then(header_monotonic_ns)
                .unwrap_or(0);
            let n = count_calls(&trace, start);
            println!(
                "lab:        ftrace: {} cycles, {} reports from {start} ns on ({} of them in a cycle begun before); \
                 {} cycles, {} reports before the header; overrun {overrun}",
                n.cycles, n.reports, n.reports_unseen_cycle, n.cycles_before, n.reports_before
            );
            let rt = c.rt();
            rt.window_start_ns = Some(start);
            rt.ftrace_cycles = Some(n.cycles);
            rt.ftrace_reports = Some(n.reports);
            rt.ftrace_before_window = Some((n.cycles_before, n.reports_before));
            rt.ftrace_reports_unseen_cycle = Some(n.reports_unseen_cycle);
            rt.ftrace_overrun = Some(overrun > 0);
            c.sh(&format!("echo nop > {TRACING}/current_tracer"), 30)?;
            Ok(())
        },
    )?;
    c.step(
        "poweroff",
        "save dmesg, poweroff -f, wait for qemu to exit",
        |c| {
            save_dmesg(c)?;
            poweroff(c)
        },
    )?;
    c.qmp.drain();
    Ok(())
}

/// Sets up ftrace and lets the device's first report after its registration finish, so that
/// the compared window starts with reporting quiet.
fn settle(c: &mut Ctx) -> Result<()> {
    let order = c.sh(
        "cat /sys/module/page_reporting/parameters/page_reporting_order",
        30,
    )?;
    c.rt().order_param = order.trim().parse().ok();
    c.rt().workload_bytes = DD_MIB << 20;
    c.sh(
        &format!(
            "echo 0 > {TRACING}/tracing_on; echo nop > {TRACING}/current_tracer; \
             echo '{CYCLE_FN} {REPORT_FN}' > {TRACING}/set_ftrace_filter; \
             echo 16384 > {TRACING}/buffer_size_kb; echo mono > {TRACING}/trace_clock; \
             echo function > {TRACING}/current_tracer; \
             echo 1 > {TRACING}/tracing_on"
        ),
        60,
    )?;
    let filter = c.sh(&format!("cat {TRACING}/set_ftrace_filter"), 30)?;
    for f in [CYCLE_FN, REPORT_FN] {
        if !filter.lines().any(|l| l.split_whitespace().next() == Some(f)) {
            bail!("ftrace cannot trace {f} (set_ftrace_filter: {:?})", filter.trim());
        }
    }
    let n = c.wait_quiet(Duration::from_secs(180))?;
    println!("lab:        settled after {n} cycle(s) of the device's first report");
    c.rt().settle_cycles = n;
    c.sh(
        &format!("echo 0 > {TRACING}/tracing_on; echo > {TRACING}/trace"),
        30,
    )?;
    Ok(())
}

/// Plugs the plan's DIMM with its memory preallocated on the host (every page resident, so
/// what reporting hands back shows in qemu's RSS), waits for its blocks.
fn add_preallocated(c: &mut Ctx) -> Result<()> {
    let d = c.plan.dimms[0];
    let before = c.block_ids()?;
    let expect = (d.size / c.block_size()?) as usize;
    c.plug_backed(&d, true)?;
    c.query_memory_devices()?;
    let ids = c.wait_blocks(&format!("{expect} new block(s) of {}", d.id), 120, |ids| {
        ids.iter().filter(|i| !before.contains(i)).count() >= expect
    })?;
    let new: Vec<u64> = ids.into_iter().filter(|i| !before.contains(i)).collect();
    println!("lab:        {}: blocks {new:?}", d.id);
    c.truth.dimms.last_mut().unwrap().blocks = new;
    c.snapshot(&format!("after-add-{}", d.id))
}

/// `clock.monotonic_ns` of a recording's header line: when the recorder, its probes attached,
/// began (CLOCK_MONOTONIC, the clock of ftrace's `trace_clock` mono).
fn header_monotonic_ns(header: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(header).ok()?;
    v["clock"]["monotonic_ns"].as_u64()
}

/// Cycles and reports in ftrace's function-tracer text, at or after `start_ns` and before it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Calls {
    cycles: u64,
    reports: u64,
    cycles_before: u64,
    reports_before: u64,
    /// Reports from `start_ns` on whose cycle (the same thread's latest cycle call) began
    /// before it, or is not in the trace (it began before ftrace was switched on).
    reports_unseen_cycle: u64,
}

fn count_calls(trace: &str, start_ns: u64) -> Calls {
    let (cycle, report) = (format!(": {CYCLE_FN} <-"), format!(": {REPORT_FN} <-"));
    let mut n = Calls::default();
    // Thread -> whether its latest cycle began at or after start_ns.
    let mut cycle_seen: std::collections::HashMap<&str, bool> = Default::default();
    for line in trace.lines().filter(|l| !l.starts_with('#')) {
        let (i, is_cycle) = match (line.find(&cycle), line.find(&report)) {
            (Some(i), _) => (i, true),
            (None, Some(i)) => (i, false),
            (None, None) => continue,
        };
        // "  kworker/0:1-9  [000] ..... 20.877669: f <-caller": the thread (TASK-PID) first,
        // the timestamp the last word before the function.
        let mut words = line[..i].split_whitespace();
        let thread = words.next().unwrap_or("");
        let after = words
            .last()
            .and_then(|t| t.parse::<f64>().ok())
            .is_none_or(|s| (s * 1e9).round() as u64 >= start_ns);
        match (is_cycle, after) {
            (true, true) => n.cycles += 1,
            (true, false) => n.cycles_before += 1,
            (false, true) => n.reports += 1,
            (false, false) => n.reports_before += 1,
        }
        if is_cycle {
            cycle_seen.insert(thread, after);
        } else if after && !cycle_seen.get(thread).copied().unwrap_or(false) {
            n.reports_unseen_cycle += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftrace_calls_count_from_the_window() {
        let trace = "# tracer: function\n\
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
     kworker/0:1-9       [000] .....    20.877669: page_reporting_process <-process_one_work\n\
     kworker/0:1-9       [000] .....    20.879001: virtballoon_free_page_report <-page_reporting_process\n\
     kworker/1:2-40      [001] .....    26.670256: page_reporting_process <-process_one_work\n";
        assert_eq!(
            count_calls(trace, 21_000_000_000),
            Calls {
                cycles: 1,
                reports: 0,
                cycles_before: 1,
                reports_before: 1,
                reports_unseen_cycle: 0,
            }
        );
        assert_eq!(count_calls(trace, 0).cycles, 2);
        // A cycle begun before the window (or before ftrace was on): its later reports, on
        // its thread, are of an unseen cycle; another thread's cycle in between changes nothing.
        let trace = "\
     kworker/0:1-9       [000] .....    20.877669: page_reporting_process <-process_one_work\n\
     kworker/1:2-40      [001] .....    21.000001: page_reporting_process <-process_one_work\n\
     kworker/0:1-9       [000] .....    21.100000: virtballoon_free_page_report <-page_reporting_process\n\
     kworker/1:2-40      [001] .....    21.200000: virtballoon_free_page_report <-page_reporting_process\n\
     kworker/3:0-77      [003] .....    21.300000: virtballoon_free_page_report <-page_reporting_process\n";
        let n = count_calls(trace, 21_000_000_000);
        assert_eq!((n.cycles, n.reports, n.reports_unseen_cycle), (1, 3, 2));
        assert_eq!(
            header_monotonic_ns(r#"{"type":"header","clock":{"monotonic_ns":20739763668,"realtime_ns":1}}"#),
            Some(20739763668)
        );
    }
}
