//! Checks of `answers` (schema 2) against what the `failures` scenario's guest recorded itself:
//! its writes and what its shell said, its clock around them, zoneinfo around each hot-add,
//! sysfs's configuration, and its kernel log (dynamic debug on for mm/memory_hotplug.c).

use super::{Checker, PAGE, STRUCT_PAGE};
use crate::lab::failtruth::{errno_number, Failures, LogEvent, PageDump, TimedWrite};
use crate::lab::report::{Answers, Attempt, Report};
use crate::lab::scenario::failures::{HEADROOM_WARN, ONLINE_GRACE_S};
use crate::lab::truth::GroundTruth;
use anyhow::{Context, Result};
use std::collections::BTreeSet;

/// See [`headroom`].
const AFTER_SLACK: u64 = 16 << 20;

/// /proc/uptime prints hundredths, truncated: the true time lies in [shown, shown + 10 ms).
const UPTIME_STEP_NS: u64 = 10_000_000;

fn ns(s: f64) -> u64 {
    (s * 1e9).round().max(0.0) as u64
}

/// The guest-clock window of a write: [t0, t1 + one uptime step).
fn window(t0: f64, t1: f64) -> (u64, u64) {
    (ns(t0), ns(t1) + UPTIME_STEP_NS)
}

fn kind_of(w: &TimedWrite) -> &'static str {
    if w.value == "offline" {
        "offline"
    } else {
        "online"
    }
}

pub(super) fn run(c: &mut Checker, t: &GroundTruth, r: &Report) -> Result<()> {
    let f = t.failures.as_ref().context("no failures ground truth")?;
    let empty = Answers::default();
    let a = r.answers.as_ref().unwrap_or(&empty);
    c.check(
        "answers.present",
        r.answers.is_some(),
        "the report has an answers object",
    );
    setup(c, f);
    let matched = attempts(c, t, f, a);
    invented(c, a, &matched);
    kernel_log(c, f, a);
    auto_online(c, f, a);
    readiness(c, t, f, a);
    headroom(c, t, f, a);
    config(c, f, a);
    Ok(())
}

/// The scenario did provoke what the checks below compare (ground truth only).
fn setup(c: &mut Checker, f: &Failures) {
    c.check(
        "truth.dyndbg",
        f.dyndbg_sites > 0,
        format!("{} printing sites in mm/memory_hotplug.c", f.dyndbg_sites),
    );
    let test = |name: &str| f.writes.iter().find(|w| w.test == name);
    for (name, want) in [
        ("spans_zones", "EINVAL"),
        ("holes", "EINVAL"),
        ("isolate", "EBUSY"),
        ("notifier_offline", "ENOMEM"),
        ("notifier_online", "ENOMEM"),
        ("signal", "EINTR"),
    ] {
        c.eq(
            &format!("truth.{name}.errno"),
            test(name).and_then(|w| w.errno.clone()),
            Some(want.to_string()),
        );
    }
    let spans = f.spans_zones_block;
    c.check(
        "truth.spans_zones.valid_zones",
        spans.is_some(),
        format!("boot block with valid_zones \"none\": {spans:?}"),
    );
    if let Some(s) = &f.signal {
        c.check(
            "truth.signal.interrupted",
            s.saw_going_offline && s.wait_status == 128 + 15 && s.state_after.as_deref() == Some("online"),
            format!(
                "writer saw going-offline {}, exit {}, block {:?} after",
                s.saw_going_offline, s.wait_status, s.state_after
            ),
        );
    }
    c.check(
        "truth.migrate.moved_pages",
        test("migrate").is_some_and(|w| w.rc == 0 && w.migrated.is_some_and(|(a, b)| b > a)),
        format!(
            "offline of the other movable block with the file there: {:?}",
            test("migrate").map(|w| (w.rc, w.migrated))
        ),
    );
}

/// Every write has its attempt: same kind and block, inside the write's guest-clock window,
/// with the errno the shell saw. Returns the indexes of the attempts matched.
fn attempts(c: &mut Checker, t: &GroundTruth, f: &Failures, a: &Answers) -> BTreeSet<usize> {
    let mut used = BTreeSet::new();
    for (i, w) in f.writes.iter().enumerate() {
        let name = format!("attempt.{i}.{}.memory{}", w.test, w.block);
        let kind = kind_of(w);
        let (lo, hi) = window(w.t0, w.t1);
        let same = |j: &usize| {
            let x = &a.attempts[*j];
            x.kind == kind && x.block == Some(w.block) && !used.contains(j)
        };
        let in_window = (0..a.attempts.len())
            .filter(same)
            .find(|&j| (lo..hi).contains(&a.attempts[j].ts_ns));
        let Some(j) = in_window.or_else(|| (0..a.attempts.len()).find(same)) else {
            c.check(
                &name,
                false,
                format!("no {kind} attempt of memory{} in the report", w.block),
            );
            continue;
        };
        used.insert(j);
        let x = &a.attempts[j];
        c.check(
            &format!("{name}.time"),
            (lo..hi).contains(&x.ts_ns),
            format!(
                "attempt at {} ns; the guest's write ran in [{lo}, {hi}) ns (uptime)",
                x.ts_ns
            ),
        );
        let want = w.errno.clone();
        let got = (x.ret != 0).then(|| x.errno.clone());
        c.eq(&format!("{name}.errno"), got, want.clone());
        let want_ret = want
            .as_deref()
            .map_or(Some(0), |e| errno_number(e).map(|n| -(n as i64)));
        c.eq(&format!("{name}.ret"), Some(x.ret), want_ret);
        c.eq(&format!("{name}.auto_online"), x.auto_online, false);
        if x.start_pfn.is_some() {
            c.eq(&format!("{name}.node"), x.node, block_node(t, w.block));
        }
        if kind == "online" {
            c.eq(
                &format!("{name}.requested"),
                x.requested.as_deref(),
                Some(w.value.as_str()),
            );
            c.eq(
                &format!("{name}.policy"),
                x.policy.as_deref(),
                Some(w.policy.as_str()),
            );
            if w.rc == 0 {
                c.eq(
                    &format!("{name}.zone"),
                    x.zone.clone(),
                    w.valid_zones_after.clone(),
                );
            }
        }
        match w.test.as_str() {
            // Refused by drivers/base/memory.c: the block belongs to no single zone.
            "spans_zones" => {
                c.eq(&format!("{name}.nr_pages"), x.nr_pages, None);
                c.eq(
                    &format!("{name}.reason"),
                    x.reason.as_deref(),
                    Some("block_spans_zones"),
                );
            }
            // The error injected into the chain is why.
            "notifier_offline" | "notifier_online" => {
                c.eq(
                    &format!("{name}.reason"),
                    x.reason.as_deref(),
                    Some("notifier_failure"),
                );
            }
            _ => {}
        }
        if kind == "offline" {
            if let Some((m0, m1)) = w.migrated {
                let m = x.migration.unwrap_or_default();
                c.eq(
                    &format!("{name}.migration.succeeded"),
                    m.succeeded,
                    m1.saturating_sub(m0),
                );
            }
        }
    }
    used
}

/// The node sysfs links the block to, in the last snapshot that has it.
fn block_node(t: &GroundTruth, block: u64) -> Option<i64> {
    t.snapshots
        .iter()
        .rev()
        .find_map(|s| s.parsed.block(block).and_then(|b| b.node))
}

/// No failed attempt that the scenario did not provoke.
fn invented(c: &mut Checker, a: &Answers, matched: &BTreeSet<usize>) {
    let extra: Vec<String> = a
        .attempts
        .iter()
        .enumerate()
        .filter(|(j, x)| x.ret != 0 && !matched.contains(j))
        .map(|(_, x)| format!("{} memory{:?} {} at {}", x.kind, x.block, x.errno, x.ts_ns))
        .collect();
    c.check(
        "attempts.no_invented_failures",
        extra.is_empty(),
        if extra.is_empty() {
            "every failed attempt was provoked".to_string()
        } else {
            format!("not provoked: {}", extra.join("; "))
        },
    );
}

/// The attempts behind the kernel log's failures: same pfn range, in order.
fn kernel_log(c: &mut Checker, f: &Failures, a: &Answers) {
    let mut used = BTreeSet::new();
    let mut dumps: Vec<&PageDump> = Vec::new();
    let zone_name = |z: Option<u32>| z.and_then(|z| f.zone_names.get(z as usize).cloned());
    for (i, ev) in f.kernel_log.iter().enumerate() {
        if let LogEvent::PageDump(d) = ev {
            dumps.push(d);
            continue;
        }
        let Some((pfn, end)) = ev.pfn_range() else {
            continue;
        };
        let (kind, words) = match ev {
            LogEvent::OfflineFailed { reason, .. } => ("offline", Some(reason.as_str())),
            _ => ("online", None),
        };
        let name = format!("log.{i}.{kind}.{pfn:#x}");
        let found = a.attempts.iter().enumerate().find(|(j, x)| {
            !used.contains(j)
                && x.kind == kind
                && x.ret != 0
                && x.start_pfn == Some(pfn)
                && x.nr_pages == Some(end - pfn)
        });
        let segment = std::mem::take(&mut dumps);
        let Some((j, x)) = found else {
            c.check(
                &name,
                false,
                format!(
                    "no failed {kind} attempt of pfn {pfn:#x}+{:#x} (kernel log: {ev:?})",
                    end - pfn
                ),
            );
            continue;
        };
        used.insert(j);
        if let Some(words) = words {
            c.eq(
                &format!("{name}.reason_words"),
                x.reason_words.as_deref(),
                Some(words),
            );
        }
        if kind == "offline" {
            blocking_page(c, &name, x, segment.first().copied(), &zone_name);
        }
    }
}

/// The page mhpscope says was in the way is the first one the kernel dumped for the attempt.
fn blocking_page(
    c: &mut Checker,
    name: &str,
    x: &Attempt,
    dump: Option<&PageDump>,
    zone_name: &dyn Fn(Option<u32>) -> Option<String>,
) {
    let name = format!("{name}.blocking_page");
    let (Some(d), Some(p)) = (dump, &x.blocking_page) else {
        c.check(
            &name,
            dump.is_none() && x.blocking_page.is_none(),
            format!(
                "kernel dumped {:?}; report {:?}",
                dump.map(|d| format!("{:#x}", d.pfn)),
                x.blocking_page.as_ref().map(|p| format!("{:#x}", p.pfn))
            ),
        );
        return;
    };
    c.eq(
        &format!("{name}.pfn"),
        format!("{:#x}", p.pfn),
        format!("{:#x}", d.pfn),
    );
    let got: Option<BTreeSet<String>> = p.flags.as_ref().map(|v| v.iter().cloned().collect());
    let want: BTreeSet<String> = d.flags.iter().cloned().collect();
    c.eq(&format!("{name}.flags"), got, Some(want));
    if let Some(raw) = d.flags_raw {
        c.eq(
            &format!("{name}.flags_raw"),
            p.flags_raw.map(|v| format!("{v:#x}")),
            Some(format!("{raw:#x}")),
        );
    }
    c.eq(&format!("{name}.node"), p.node, d.node);
    c.eq(&format!("{name}.zone"), p.zone.clone(), zone_name(d.zone));
    c.eq(&format!("{name}.refcount"), p.refcount, Some(d.refcount));
    c.eq(&format!("{name}.mapcount"), p.mapcount, Some(d.mapcount));
    if d.page_type.is_some() {
        c.eq(
            &format!("{name}.page_type"),
            p.page_type.clone(),
            d.page_type.clone(),
        );
    }
    c.eq(
        &format!("{name}.dump_reason"),
        p.dump_reason.clone(),
        d.reason.clone(),
    );
    // What the dump itself says the page is, where it says it.
    let has = |n: &str| d.flags.iter().any(|f| f == n) || d.page_type.as_deref() == Some(n);
    let want_what = if has("reserved") {
        Some("reserved")
    } else if has("slab") {
        Some("slab")
    } else if d.page_type.as_deref() == Some("table") {
        Some("page_table")
    } else if has("lru") {
        Some("lru")
    } else {
        None
    };
    if let Some(w) = want_what {
        c.eq(&format!("{name}.what"), p.what.as_deref(), Some(w));
    }
}

/// The kernel onlined d4's blocks itself: attempts marked auto_online, in the zone sysfs shows.
fn auto_online(c: &mut Checker, f: &Failures, a: &Answers) {
    c.check(
        "truth.auto_online",
        !f.auto_onlined.is_empty(),
        format!("{} block(s) onlined by the kernel", f.auto_onlined.len()),
    );
    let add = f.adds.iter().find(|x| x.auto_online_blocks == "online");
    for b in &f.auto_onlined {
        let name = format!("auto_online.memory{}", b.block);
        let lo = add.map_or(0, |x| ns(x.t_before));
        let hi = ns(b.t_seen) + UPTIME_STEP_NS;
        let x = a
            .attempts
            .iter()
            .find(|x| x.kind == "online" && x.block == Some(b.block) && (lo..hi).contains(&x.ts_ns));
        let Some(x) = x else {
            c.check(
                &name,
                false,
                format!("no online attempt of memory{} in [{lo}, {hi}) ns", b.block),
            );
            continue;
        };
        c.eq(&format!("{name}.auto_online"), x.auto_online, true);
        c.eq(&format!("{name}.ret"), x.ret, 0);
        c.eq(&format!("{name}.zone"), x.zone.clone(), b.valid_zones.clone());
        // auto_online_blocks=online: MMOP_ONLINE, the policy picks the zone.
        c.eq(
            &format!("{name}.requested"),
            x.requested.as_deref(),
            Some("online"),
        );
    }
}

/// Readiness per hot-add against the guest's clock: the add lies between the moment before
/// device_add and the moment its blocks were seen; each block's first online inside its write.
fn readiness(c: &mut Checker, t: &GroundTruth, f: &Failures, a: &Answers) {
    let mut want_never: BTreeSet<u64> = BTreeSet::new();
    for add in &f.adds {
        let Some(d) = t.dimms.iter().find(|d| d.id == add.dimm) else {
            continue;
        };
        let name = format!("readiness.{}", d.id);
        let Some(start) = d.addr.map(|x| x / PAGE) else {
            c.check(&name, false, "no address from QMP");
            continue;
        };
        let Some(r) = a.readiness.iter().find(|r| r.start_pfn == start) else {
            c.check(&name, false, format!("no readiness entry for pfn {start:#x}"));
            continue;
        };
        c.eq(&format!("{name}.nr_pages"), r.nr_pages, d.size / PAGE);
        c.eq(&format!("{name}.node"), r.node, d.node);
        let (lo, hi) = window(add.t_before, add.t_seen);
        c.check(
            &format!("{name}.ts"),
            (lo..hi).contains(&r.ts_ns),
            format!("add at {} ns; guest: after {lo} and before {hi} ns", r.ts_ns),
        );
        let mut never = 0;
        for &b in &d.blocks {
            let bname = format!("{name}.memory{b}");
            let got = r.blocks.iter().find(|x| x.block == b).map(|x| x.online_after_ns);
            let first = f
                .writes
                .iter()
                .find(|w| w.block == b && w.value != "offline" && w.rc == 0);
            let auto = f.auto_onlined.iter().find(|x| x.block == b);
            let bounds = match (first, auto) {
                (Some(w), _) => Some((
                    ns(w.t0).saturating_sub(ns(add.t_seen) + UPTIME_STEP_NS),
                    ns(w.t1) + UPTIME_STEP_NS - ns(add.t_before),
                )),
                (None, Some(x)) => Some((0, ns(x.t_seen) + UPTIME_STEP_NS - ns(add.t_before))),
                (None, None) => None,
            };
            match (got, bounds) {
                (None, _) => c.check(&bname, false, "block missing from the readiness entry"),
                (Some(got), None) => {
                    never += 1;
                    c.eq(&format!("{bname}.online_after_ns"), got, None);
                }
                (Some(got), Some((blo, bhi))) => c.check(
                    &format!("{bname}.online_after_ns"),
                    got.is_some_and(|g| (blo..=bhi).contains(&g)),
                    format!("{got:?} ns; guest: between {blo} and {bhi} ns"),
                ),
            }
        }
        c.eq(&format!("{name}.offline_blocks"), r.offline_blocks, never);
        let waited = f.t_stop.unwrap_or(0.0) - add.t_seen;
        if never > 0 && waited >= ONLINE_GRACE_S {
            want_never.insert(r.ts_ns);
        }
    }
    let found: Vec<_> = a.answers.iter().filter(|x| x.kind == "never_onlined").collect();
    let got: BTreeSet<u64> = found.iter().map(|x| x.ts_ns).collect();
    c.check(
        "findings.never_onlined",
        got == want_never,
        format!(
            "at {got:?}, want at {want_never:?} (the adds with blocks never onlined): {:?}",
            found.iter().map(|x| &x.message).collect::<Vec<_>>()
        ),
    );
}

/// Per hot-add: the memmap it took from its node, and that node's free memory as the kernel
/// read it when `__add_pages` began and ended, against zoneinfo read right before device_add
/// and right after the blocks appeared.
///
/// Tolerance, per node: both readings are zone NR_FREE_PAGES, which lags the per-CPU deltas
/// not yet folded in by up to the zones' "vm stats threshold" per CPU (so twice the sum, one
/// lag per reading); free pages held in the per-CPU lists are not in NR_FREE_PAGES and move to
/// and from the buddy lists in between: refills and frees in batches (four batches per CPU and
/// zone), and drains of what the lists held (6.12 drained 1492 of the 7564 pages its lists held
/// before the first add), so the larger of the two; and 1 MiB for what the guest allocates
/// between the two moments
/// (the ACPI device, the control shell's commands, the recorder's file growing in tmpfs).
/// The reading after is taken once the blocks appear, later than `__add_pages` ends: the memory
/// block devices are created and the recorder in the same guest takes in the add's events in
/// between. At the first hot-add of the 6.1 guest the recorder's node lost 8 MiB there (none
/// without the recorder), so that reading gets [`AFTER_SLACK`] more.
fn headroom(c: &mut Checker, t: &GroundTruth, f: &Failures, a: &Answers) {
    let warn: f64 = HEADROOM_WARN.trim_end_matches('%').parse::<f64>().unwrap_or(0.0) / 100.0;
    let mut want_findings = BTreeSet::new();
    let mut ambiguous = BTreeSet::new();
    for add in &f.adds {
        let Some(d) = t.dimms.iter().find(|d| d.id == add.dimm) else {
            continue;
        };
        let name = format!("headroom.{}", d.id);
        let Some(start) = d.addr.map(|x| x / PAGE) else {
            continue;
        };
        let Some(h) = a.headroom.iter().find(|h| h.start_pfn == start) else {
            c.check(&name, false, format!("no headroom entry for pfn {start:#x}"));
            continue;
        };
        c.eq(&format!("{name}.ret"), h.ret, 0);
        c.eq(&format!("{name}.node"), h.node, d.node);
        c.eq(&format!("{name}.nr_pages"), h.nr_pages, d.size / PAGE);
        let memmap = d.size / PAGE * STRUCT_PAGE;
        let node = d.node;
        let tol_pages = |n: i64| {
            2 * add.stat_threshold.get(&n).copied().unwrap_or(0)
                + (4 * add.pcp_batch.get(&n).copied().unwrap_or(0))
                    .max(add.pcp_count.get(&n).copied().unwrap_or(0))
                + 256
        };
        let nh = h.by_node.iter().find(|x| x.node == node);
        c.eq(
            &format!("{name}.taken_bytes"),
            nh.map(|x| x.taken_bytes),
            Some(memmap),
        );
        for (n, &before) in &add.free_before {
            let Some(x) = h.by_node.iter().find(|x| x.node == *n) else {
                c.check(&format!("{name}.node{n}"), false, "node missing from by_node");
                continue;
            };
            let tol = tol_pages(*n) * PAGE;
            let near = |got: Option<u64>, want: u64| got.is_some_and(|g| g.abs_diff(want) <= tol);
            let want = before * PAGE;
            c.check(
                &format!("{name}.node{n}.free_before"),
                near(x.free_before_bytes, want),
                format!(
                    "{:?} bytes; zoneinfo before device_add {want} (± {tol}; per-CPU lists held {} pages)",
                    x.free_before_bytes,
                    add.pcp_count.get(n).copied().unwrap_or(0)
                ),
            );
            // Onlined by the kernel during the add: zoneinfo after it also has the new pages.
            if add.auto_online_blocks == "offline" {
                let want = add.free_after.get(n).copied().unwrap_or(0) * PAGE;
                let tol = tol + AFTER_SLACK;
                c.check(
                    &format!("{name}.node{n}.free_after"),
                    x.free_after_bytes.is_some_and(|g| g.abs_diff(want) <= tol),
                    format!(
                        "{:?} bytes; zoneinfo after the blocks appeared {want} (± {tol})",
                        x.free_after_bytes
                    ),
                );
            }
        }
        let free = add.free_before.get(&node).copied().unwrap_or(0) * PAGE;
        if free > 0 {
            let share = memmap as f64 / free as f64;
            let tol = (tol_pages(node) * PAGE) as f64 / free as f64;
            if (share - warn).abs() <= tol + warn * 0.1 {
                ambiguous.insert(h.ts_ns);
            } else if share > warn {
                want_findings.insert(h.ts_ns);
            }
            println!(
                "     {name}: memmap {memmap} bytes of node {node}'s {free} free: {:.2}% (warn {:.2}%)",
                share * 100.0,
                warn * 100.0
            );
        }
    }
    let got: BTreeSet<u64> = a
        .answers
        .iter()
        .filter(|x| x.kind == "headroom")
        .map(|x| x.ts_ns)
        .filter(|ts| !ambiguous.contains(ts))
        .collect();
    c.eq("findings.headroom", got, want_findings);
}

/// The configuration audit against the sysfs files read right before the recorder stopped.
fn config(c: &mut Checker, f: &Failures, a: &Answers) {
    let item = |k: &str| a.config.iter().find(|x| x.key == k).map(|x| x.value.clone());
    let sys = |k: &str| f.config_end.get(k).cloned();
    for k in ["memmap_on_memory", "auto_online_blocks", "online_policy"] {
        c.eq(&format!("config.{k}"), item(k), sys(k));
    }
    let auto_movable = sys("online_policy").as_deref() == Some("auto-movable");
    for k in ["auto_movable_ratio", "auto_movable_numa_aware"] {
        match item(k) {
            Some(v) => c.eq(&format!("config.{k}"), Some(v), sys(k)),
            None => c.check(
                &format!("config.{k}"),
                !auto_movable,
                format!("absent; online_policy {:?}", sys("online_policy")),
            ),
        }
    }
    let block = sys("block_size_bytes").and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    let shown = item("block_size").and_then(|v| {
        let n: u64 = v.strip_suffix(" MiB")?.trim().parse().ok()?;
        Some(n << 20)
    });
    c.eq("config.block_size", shown, block);
    let movable_node = f.cmdline.split_whitespace().any(|w| w == "movable_node");
    c.eq(
        "config.movable_node",
        item("movable_node"),
        Some(if movable_node { "on" } else { "off" }.to_string()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::failtruth::parse_kernel_log;

    fn attempt(kind: &str, block: u64, ts: u64, ret: i64, errno: &str) -> Attempt {
        Attempt {
            ts_ns: ts,
            kind: kind.into(),
            block: Some(block),
            start_pfn: Some(block * 0x8000),
            nr_pages: Some(0x8000),
            // The test ground truth has no snapshots to take a block's node from.
            node: None,
            zone: Some("Normal".into()),
            requested: (kind == "online").then(|| "online_kernel".into()),
            auto_online: false,
            policy: (kind == "online").then(|| "contig-zones".into()),
            ret,
            errno: errno.into(),
            reason: None,
            reason_words: None,
            blocking_page: None,
            migration: None,
        }
    }

    fn write(test: &str, block: u64, value: &str, errno: Option<&str>, t0: f64) -> TimedWrite {
        TimedWrite {
            test: test.into(),
            block,
            value: value.into(),
            rc: i32::from(errno.is_some()),
            output: String::new(),
            errno: errno.map(str::to_string),
            t0,
            t1: t0 + 0.02,
            policy: "contig-zones".into(),
            injected: None,
            valid_zones_after: Some("Normal".into()),
            state_after: None,
            migrated: None,
        }
    }

    fn checker() -> Checker {
        Checker {
            prefix: "test".into(),
            ..Default::default()
        }
    }

    #[test]
    fn attempts_match_writes_by_block_time_and_errno() {
        let f = Failures {
            writes: vec![
                write("online_kernel", 32, "online_kernel", None, 8.50),
                write("isolate", 32, "offline", Some("EBUSY"), 9.63),
            ],
            ..Default::default()
        };
        let good = Answers {
            attempts: vec![
                attempt("online", 32, 8_515_000_000, 0, "ok"),
                attempt("offline", 32, 9_640_000_000, -16, "EBUSY"),
            ],
            ..Default::default()
        };
        let t = GroundTruth::default();
        let mut c = checker();
        let used = attempts(&mut c, &t, &f, &good);
        invented(&mut c, &good, &used);
        assert_eq!(c.failed, 0);
        // Wrong errno, outside the window, and an extra failure nobody provoked.
        let bad = Answers {
            attempts: vec![
                attempt("online", 32, 8_515_000_000, 0, "ok"),
                attempt("offline", 32, 9_700_000_000, -22, "EINVAL"),
                attempt("offline", 7, 9_800_000_000, -16, "EBUSY"),
            ],
            ..Default::default()
        };
        let mut c = checker();
        let used = attempts(&mut c, &t, &f, &bad);
        invented(&mut c, &bad, &used);
        // time, errno, ret, and the invented one.
        assert_eq!(c.failed, 4);
    }

    #[test]
    fn blocking_page_compares_with_the_dump() {
        let log = "\
[    9.683678] page:00000000469436e8 refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x100400
[    9.684078] flags: 0x57ffffc0000200(slab|node=1|zone=2|lastcpupid=0x1fffff)
[    9.684607] page dumped because: unmovable page
[    9.684707] memory offlining [mem 0x100000000-0x107ffffff] failed due to failure to isolate range
[   11.610934] memory offlining [mem 0x108000000-0x10fffffff] failed due to notifier failure
";
        let f = Failures {
            kernel_log: parse_kernel_log(log),
            zone_names: ["DMA", "DMA32", "Normal", "Movable", "Device"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        };
        let mut iso = attempt("offline", 32, 1, -16, "EBUSY");
        iso.reason_words = Some("failure to isolate range".into());
        iso.blocking_page = Some(crate::lab::report::BlockingPage {
            pfn: 0x100400,
            flags_raw: Some(0x57ffffc0000200),
            flags: Some(vec!["slab".into()]),
            page_type: None,
            node: Some(1),
            zone: Some("Normal".into()),
            what: Some("slab".into()),
            refcount: Some(1),
            mapcount: Some(0),
            dump_reason: Some("unmovable page".into()),
        });
        let mut notif = attempt("offline", 33, 2, -12, "ENOMEM");
        notif.reason_words = Some("notifier failure".into());
        let a = Answers {
            attempts: vec![iso.clone(), notif.clone()],
            ..Default::default()
        };
        let mut c = checker();
        kernel_log(&mut c, &f, &a);
        assert_eq!(c.failed, 0, "all agree");
        assert!(c.passed >= 10);
        // Another pfn, a flag too many, and a page invented for the notifier failure.
        if let Some(p) = iso.blocking_page.as_mut() {
            p.pfn = 0x100401;
            p.flags = Some(vec!["slab".into(), "lru".into()]);
        }
        notif.blocking_page = iso.blocking_page.clone();
        let a = Answers {
            attempts: vec![iso, notif],
            ..Default::default()
        };
        let mut c = checker();
        kernel_log(&mut c, &f, &a);
        assert_eq!(c.failed, 3);
    }
}
