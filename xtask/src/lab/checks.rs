//! Checks of `mhpscope report --json` against the lab's ground truth. One line per check, then
//! "lab: <scenario>: N passed, M failed; sanity: S passed, F failed".
//!
//! Two kinds, counted apart. A check compares the report with what the scenario recorded
//! itself (sysfs, zoneinfo, QMP, the kernel log, ftrace): it can only pass on the truth. A
//! sanity check (`Checker::sanity`) has no independent truth to compare with: the report's
//! own consistency (totals that must add up, counts that must be 0), or the guest's setup (the
//! scenario's ftrace did not overrun). A failed sanity check fails the run all the same; it is
//! only kept out of the count of what was shown true.

use crate::lab::report::{Block, Report, Stat, Zone};
use crate::lab::scenario::{self, Flow, Plan};
use crate::lab::top_screen::parse_top_screen;
use crate::lab::truth::{compaction_scanned, GroundTruth};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;

mod failures;
mod reporting;

/// Sizes the checks rely on: x86_64 pages, and `sizeof(struct page)` on all three lab kernels.
const PAGE: u64 = 4096;
const STRUCT_PAGE: u64 = 64;

/// Reads ground-truth.json and report.json from a lab output directory.
pub fn run_from_files(scenario: &str, out: &Path) -> Result<()> {
    let plan = scenario::plan(scenario)?;
    let gt = out.join("ground-truth.json");
    let truth: GroundTruth =
        serde_json::from_slice(&std::fs::read(&gt).with_context(|| format!("reading {}", gt.display()))?)
            .context("parsing ground-truth.json")?;
    let t = run(plan, &truth, out);
    if t.all_failed() > 0 {
        anyhow::bail!("{} lab check(s) failed", t.all_failed());
    }
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Checks against ground truth.
    pub passed: usize,
    pub failed: usize,
    /// Sanity checks (see the module's comment).
    pub sanity_passed: usize,
    pub sanity_failed: usize,
    /// The names of the checks (of either kind) that failed.
    pub failed_checks: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.sanity_passed += o.sanity_passed;
        self.sanity_failed += o.sanity_failed;
        self.failed_checks.extend(o.failed_checks.iter().cloned());
    }

    /// Failures of either kind.
    pub fn all_failed(&self) -> usize {
        self.failed + self.sanity_failed
    }
}

pub fn run(plan: &Plan, truth: &GroundTruth, out: &Path) -> Tally {
    let mut c = Checker {
        prefix: format!("{}.{}", truth.kernel.name, plan.name),
        ..Default::default()
    };
    if let Some(e) = &truth.error {
        c.check("scenario", false, e);
    }
    let path = out.join("report.json");
    let report: Option<Report> = match std::fs::read(&path)
        .context("reading report.json")
        .and_then(|b| serde_json::from_slice(&b).context("parsing report.json"))
    {
        Ok(r) => Some(r),
        Err(e) => {
            c.check("report.parse", false, format!("{e:#}"));
            None
        }
    };
    if let (Some(r), None) = (&report, &truth.error) {
        if let Err(e) = all(&mut c, plan, truth, r) {
            c.check("ground-truth", false, format!("{e:#}"));
        }
    }
    println!(
        "lab: {}: {} passed, {} failed; sanity: {} passed, {} failed",
        c.prefix, c.passed, c.failed, c.sanity_passed, c.sanity_failed
    );
    Tally {
        passed: c.passed,
        failed: c.failed,
        sanity_passed: c.sanity_passed,
        sanity_failed: c.sanity_failed,
        failed_checks: c.failed_checks,
    }
}

#[derive(Default)]
struct Checker {
    prefix: String,
    passed: usize,
    failed: usize,
    sanity_passed: usize,
    sanity_failed: usize,
    failed_checks: Vec<String>,
}

impl Checker {
    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        if ok {
            self.passed += 1;
            println!("ok   {}.{name}: {}", self.prefix, detail.as_ref());
        } else {
            self.failed += 1;
            self.failed_checks.push(name.to_string());
            println!("FAIL {}.{name}: {}", self.prefix, detail.as_ref());
        }
    }

    /// Equality check with "got X, want Y" detail.
    fn eq<T: PartialEq + Debug>(&mut self, name: &str, got: T, want: T) {
        let ok = got == want;
        self.check(name, ok, format!("got {got:?}, want {want:?}"));
    }

    /// A sanity check: no independent truth behind it (see the module's comment).
    fn sanity(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        if ok {
            self.sanity_passed += 1;
            println!("ok   (sanity) {}.{name}: {}", self.prefix, detail.as_ref());
        } else {
            self.sanity_failed += 1;
            self.failed_checks.push(name.to_string());
            println!("FAIL (sanity) {}.{name}: {}", self.prefix, detail.as_ref());
        }
    }

    fn sanity_eq<T: PartialEq + Debug>(&mut self, name: &str, got: T, want: T) {
        let ok = got == want;
        self.sanity(name, ok, format!("got {got:?}, want {want:?}"));
    }
}

fn all(c: &mut Checker, plan: &Plan, t: &GroundTruth, r: &Report) -> Result<()> {
    top_in_guest(c, plan, t);
    self_cost(c, t, r);
    c.sanity_eq("report.schema_version", r.schema_version, Some(2));
    c.eq(
        "report.kernel_release",
        r.kernel_release.clone(),
        t.kernel.release.clone(),
    );
    c.sanity(
        "report.events",
        r.events.unwrap_or(0) > 0,
        format!("{:?} events recorded", r.events),
    );
    c.sanity_eq("lost_events", r.lost_events, Some(0));
    let detached: Vec<String> = r
        .probes
        .iter()
        .filter(|p| !p.attached)
        .map(|p| format!("{} ({:?}: {:?})", p.name, p.function, p.reason))
        .collect();
    c.sanity(
        "probes.attached",
        !r.probes.is_empty() && detached.is_empty(),
        if detached.is_empty() {
            format!("all {} probes attached", r.probes.len())
        } else {
            format!("not attached: {}", detached.join(", "))
        },
    );
    for &m in plan.avoid {
        let with: Vec<&str> = r
            .probes
            .iter()
            .filter(|p| p.method.as_deref() == Some(m))
            .map(|p| p.name.as_str())
            .collect();
        c.check(
            &format!("probes.avoided.{m}"),
            with.is_empty(),
            format!("recorded with --avoid {m}; probes attached with it: {with:?}"),
        );
    }
    fallbacks(c, plan, t, r);
    page_alloc_way(c, plan, r);

    if plan.flow == Flow::Failures {
        // Its blocks stay where the failures left them (no unplug): the hot-adds, where their
        // memmap came from, and the answers.
        hot_adds(c, t, r);
        placement(c, t, r, &Default::default());
        return failures::run(c, t, r);
    }
    if plan.flow == Flow::Reporting {
        hot_adds(c, t, r);
        return reporting::run(c, t, r);
    }
    if !plan.dimms.is_empty() {
        let before = &t.snapshot("before-add")?.parsed;
        let online = &t.snapshot("after-online")?.parsed;
        let removed = &t.snapshot("after-remove")?.parsed;
        let block_size = before.block_size_bytes.context("no block size in ground truth")?;
        c.eq("report.block_size_bytes", r.block_size_bytes, Some(block_size));
        hot_adds(c, t, r);
        removes(c, t, r);
        blocks(c, t, r)?;
        let nodes: BTreeSet<i64> = plan.dimms.iter().map(|d| d.node).collect();
        let vm = vmemmap(c, plan, t, r, block_size)?;
        placement(c, t, r, &vm);
        for &node in &nodes {
            zones(c, node, before, online, removed, r);
            node_stats(c, t, r, node, before, online);
        }
        span_findings(c, t, r, &vm)?;
        bursts(c, plan, t, r, &nodes, &vm);
    }
    if plan.compaction {
        slowpath(c, t, r);
    }
    if plan.nvdimm {
        devdax(c, t, r);
    }
    Ok(())
}

/// Each fallback choice against the guest's own ftrace list: a function that ftrace can trace
/// is watched itself (with fentry, or with a kprobe when the plan avoids fentry, after the
/// avoided way); one that it cannot is watched through its caller.
fn fallbacks(c: &mut Checker, plan: &Plan, t: &GroundTruth, r: &Report) {
    let (want, avoided) = if plan.avoids("fentry") {
        ("kprobe", 1)
    } else {
        ("fentry", 0)
    };
    for (probe, caller) in [
        ("memmap_init_range", "move_pfn_range_to_zone"),
        ("memmap_init_zone_device", "memremap_pages"),
        ("__add_pages", "arch_add_memory"),
    ] {
        let Some(&traceable) = t.traceable.get(probe) else {
            c.check(
                &format!("fallback.{probe}"),
                false,
                "no traceability in the ground truth",
            );
            continue;
        };
        let p = r.probes.iter().find(|p| p.name == probe);
        let method = p.and_then(|p| p.method.clone()).unwrap_or_default();
        let function = p.and_then(|p| p.function.clone()).unwrap_or_default();
        let ok = if traceable {
            method == want && function == probe && p.is_some_and(|p| p.tried.len() == avoided)
        } else {
            method == "caller" && function == caller && p.is_some_and(|p| p.tried.len() >= 2)
        };
        c.check(
            &format!("fallback.{probe}"),
            ok,
            format!(
                "ftrace can trace it: {traceable} (then {want:?} expected); mhpscope chose {method:?} on {function:?} after {} failed way(s)",
                p.map_or(0, |p| p.tried.len())
            ),
        );
    }
}

/// Page allocations come from the raw tracepoint (the guests are x86-64 with `vmemmap_base` in
/// kallsyms), or from the classic one when the scenario avoids raw tracepoints.
fn page_alloc_way(c: &mut Checker, plan: &Plan, r: &Report) {
    let p = r.probes.iter().find(|p| p.name == "mm_page_alloc");
    let method = p.and_then(|p| p.method.clone()).unwrap_or_default();
    let tried: Vec<String> = p
        .map(|p| {
            p.tried
                .iter()
                .map(|a| {
                    let field = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
                    format!("{}: {}", field("way"), field("error"))
                })
                .collect()
        })
        .unwrap_or_default();
    let avoid = plan.avoids("raw_tracepoint");
    let ok = if avoid {
        method == "tracepoint" && tried.len() == 1 && tried[0].starts_with("raw_tracepoint: ")
    } else {
        method == "raw_tracepoint" && tried.is_empty()
    };
    c.check(
        "probes.mm_page_alloc.way",
        ok,
        format!("avoid raw tracepoints: {avoid}; attached with {method:?}, after {tried:?}"),
    );
}

fn hot_adds(c: &mut Checker, t: &GroundTruth, r: &Report) {
    let added = t.dimms.iter().filter(|d| d.added).count();
    let ok_adds: Vec<_> = r.hot_adds.iter().filter(|h| h.ret == 0).collect();
    c.eq("hot_adds.count", ok_adds.len(), added);
    c.eq(
        "hot_adds.nodes_sum",
        r.nodes.iter().map(|n| n.hot_adds).sum::<u64>(),
        added as u64,
    );
    for d in t.dimms.iter().filter(|d| d.added) {
        let m = ok_adds
            .iter()
            .find(|h| Some(h.start) == d.addr && h.size == d.size);
        c.check(
            &format!("hot_add.{}", d.id),
            m.is_some_and(|h| h.node == Some(d.node)),
            match m {
                Some(h) => format!(
                    "start {:#x} size {:#x} node {:?} (plugged into node {})",
                    h.start, h.size, h.node, d.node
                ),
                None => format!(
                    "no successful hot-add at {:?} size {:#x} (query-memory-devices)",
                    d.addr.map(|a| format!("{a:#x}")),
                    d.size
                ),
            },
        );
    }
}

fn removes(c: &mut Checker, t: &GroundTruth, r: &Report) {
    let deleted = t.dimms.iter().filter(|d| d.deleted).count();
    let ok: Vec<_> = r.removes.iter().filter(|x| x.ret == 0).collect();
    c.eq("removes.count", ok.len(), deleted);
    c.eq(
        "removes.nodes_sum",
        r.nodes.iter().map(|n| n.removes).sum::<u64>(),
        deleted as u64,
    );
    for d in t.dimms.iter().filter(|d| d.deleted) {
        let m = ok.iter().any(|x| Some(x.start) == d.addr && x.size == d.size);
        c.check(
            &format!("remove.{}", d.id),
            m,
            format!(
                "successful remove of {:?} size {:#x}",
                d.addr.map(|a| format!("{a:#x}")),
                d.size
            ),
        );
    }
}

fn blocks(c: &mut Checker, t: &GroundTruth, r: &Report) -> Result<()> {
    let truth_set: BTreeSet<u64> = t.hot_added_blocks().into_iter().collect();
    let report_set: BTreeSet<u64> = r.blocks.iter().filter(|b| b.hot_added).map(|b| b.id).collect();
    c.eq("blocks.hot_added", report_set, truth_set.clone());
    let online = &t.snapshot("after-online")?.parsed;
    let removed = &t.snapshot("after-remove")?.parsed;
    for d in &t.dimms {
        let added = &t.snapshot(&format!("after-add-{}", d.id))?.parsed;
        for &id in &d.blocks {
            let name = format!("block.{id}");
            let Some(b) = r.blocks.iter().find(|b| b.id == id) else {
                c.check(&name, false, "missing from the report");
                continue;
            };
            let writes = |w: &[crate::lab::truth::StateWrite]| {
                w.iter().filter(|w| w.block == id && w.rc == 0).count() as u64
            };
            c.eq(&format!("{name}.onlined"), b.onlined, writes(&t.online_writes));
            c.eq(&format!("{name}.offlined"), b.offlined, writes(&t.offline_writes));
            let gone = removed.block(id).is_none();
            c.eq(
                &format!("{name}.state"),
                b.state.as_deref(),
                Some(if gone { "removed" } else { "offline" }),
            );
            c.eq(
                &format!("{name}.node"),
                b.node,
                added.block(id).and_then(|x| x.node),
            );
            c.eq(
                &format!("{name}.zone"),
                b.zone.clone(),
                online.block(id).and_then(|x| x.valid_zones.clone()),
            );
        }
    }
    Ok(())
}

/// Self-hosted memmap pages per hot-added block, from zoneinfo: onlining a block raises its
/// zone's present pages by the whole block but managed pages only by what the buddy allocator
/// got; the difference is the memmap inside the block. Needs a snapshot after each online
/// (scenarios that online one by one); otherwise only the zone totals are known.
fn truth_vmemmap(t: &GroundTruth) -> Result<Option<std::collections::BTreeMap<u64, u64>>> {
    let mut out = std::collections::BTreeMap::new();
    // The snapshot right before the online step is the last add's.
    let Some(d) = t.dimms.last() else {
        return Ok(Some(out));
    };
    let mut last = &t.snapshot(&format!("after-add-{}", d.id))?.parsed;
    for id in t.hot_added_blocks() {
        let Ok(s) = t.snapshot(&format!("after-online-{id}")) else {
            return Ok(None);
        };
        let node = t
            .dimms
            .iter()
            .find(|d| d.blocks.contains(&id))
            .map(|d| d.node)
            .context("block without DIMM")?;
        let z = |p: &crate::lab::truth::Parsed| {
            p.zone(node, "Movable")
                .map(|z| (z.present, z.managed))
                .unwrap_or((0, 0))
        };
        let (p0, m0) = z(last);
        let (p1, m1) = z(&s.parsed);
        out.insert(id, (p1 - p0).saturating_sub(m1 - m0));
        last = &s.parsed;
    }
    Ok(Some(out))
}

/// Checks the placement each block's vmemmap got; returns the true self-hosted pages per block.
fn vmemmap(
    c: &mut Checker,
    plan: &Plan,
    t: &GroundTruth,
    r: &Report,
    block_size: u64,
) -> Result<std::collections::BTreeMap<u64, u64>> {
    let block_of = |id: u64| -> Option<&Block> { r.blocks.iter().find(|b| b.id == id) };
    let truth = match truth_vmemmap(t)? {
        Some(v) => v,
        None => {
            // Onlined together: only the totals are known. Without memmap_on_memory nothing is
            // self-hosted, and zoneinfo must agree.
            let online = &t.snapshot("after-online")?.parsed;
            let held: u64 = plan
                .dimms
                .iter()
                .map(|d| d.node)
                .collect::<BTreeSet<_>>()
                .iter()
                .filter_map(|&n| online.zone(n, "Movable"))
                .map(|z| z.present - z.managed)
                .sum();
            c.eq("vmemmap.zoneinfo_self_hosted_total", held, 0);
            t.hot_added_blocks().into_iter().map(|id| (id, 0)).collect()
        }
    };
    let per_block = block_size / PAGE * STRUCT_PAGE / PAGE;
    for (&id, &pages) in &truth {
        let v = block_of(id).and_then(|b| b.vmemmap.as_ref());
        let placement = v.and_then(|v| v.placement.clone());
        let got = v.map(|v| v.pages).unwrap_or(0);
        if pages > 0 {
            c.check(
                &format!("vmemmap.{id}"),
                placement.as_deref() == Some("self_hosted") && got == pages,
                format!(
                    "zoneinfo: {pages} pages of the block hold its memmap; report {placement:?} {got} pages"
                ),
            );
        } else {
            c.check(
                &format!("vmemmap.{id}"),
                placement.as_deref() == Some("existing_memory"),
                format!(
                    "zoneinfo: no memmap inside the block (memmap_on_memory {:?}); report {placement:?}",
                    t.memmap_on_memory
                ),
            );
        }
        if pages > 0 {
            c.eq(&format!("vmemmap.{id}.size"), pages, per_block);
        }
    }
    Ok(truth)
}

/// Where the memmap of each hot-add came from. A DIMM on a node that had memory gets it from
/// that node; one on a memoryless node from the first node with memory in its fallback order
/// (the guest's boot log). The amount is the struct pages of the range, and on kernels that
/// count it, /proc/vmstat nr_memmap_pages agrees.
fn placement(c: &mut Checker, t: &GroundTruth, r: &Report, vm: &std::collections::BTreeMap<u64, u64>) {
    for d in t.dimms.iter().filter(|d| d.added) {
        let name = format!("placement.{}", d.id);
        let Some(addr) = d.addr else {
            c.check(&name, false, "no address from QMP");
            continue;
        };
        let hosted = d.blocks.iter().all(|b| vm.get(b).copied().unwrap_or(0) > 0);
        let mine: Vec<_> = r
            .memmap_placements
            .iter()
            .filter(|p| p.start >= addr && p.start + p.size <= addr + d.size)
            .collect();
        let covered: u64 = mine.iter().map(|p| p.size).sum();
        c.eq(&format!("{name}.covered"), covered, d.size);
        c.check(
            &format!("{name}.home_node"),
            !mine.is_empty() && mine.iter().all(|p| p.node == d.node),
            format!(
                "__add_pages node(s) {:?}, DIMM on node {}",
                mine.iter().map(|p| p.node).collect::<Vec<_>>(),
                d.node
            ),
        );
        let huge: u64 = mine
            .iter()
            .map(|p| p.allocated.as_ref().map_or(u64::MAX, |a| a.huge_bytes))
            .sum();
        if hosted {
            c.check(
                &format!("{name}.self_hosted"),
                mine.iter().all(|p| p.self_hosted) && huge == 0,
                format!("zoneinfo says self-hosted; report self_hosted {:?}, vmemmap bytes from existing memory {huge}",
                    mine.iter().map(|p| p.self_hosted).collect::<Vec<_>>()),
            );
            continue;
        }
        let want_bytes = d.size / PAGE * STRUCT_PAGE;
        let had_memory = t.nodes_with_memory.contains(&d.node);
        let want_node = if had_memory {
            Some(d.node)
        } else {
            t.fallback_order
                .get(&d.node)
                .and_then(|o| o.iter().copied().find(|n| t.nodes_with_memory.contains(n)))
        };
        let mut by_node: std::collections::BTreeMap<i64, u64> = Default::default();
        for p in &mine {
            for nb in p.allocated.iter().flat_map(|a| a.by_node.iter()) {
                *by_node.entry(nb.node).or_default() += nb.bytes;
            }
        }
        c.eq(&format!("{name}.vmemmap_bytes"), huge, want_bytes);
        let main_node = by_node.iter().max_by_key(|(_, &b)| b).map(|(&n, _)| n);
        c.check(
            &format!("{name}.node"),
            main_node.is_some() && main_node == want_node,
            format!(
                "DIMM on node {} (had memory: {had_memory}); memmap expected from node {want_node:?}; report by node {by_node:?}",
                d.node
            ),
        );
        let off = mine
            .iter()
            .any(|p| want_node.is_some_and(|n| p.off_node.contains(&n)));
        c.eq(&format!("{name}.off_node_marked"), off, !had_memory);
    }
    // Kernels that count memmap pages (6.11+) must agree with the report's total for the adds.
    let (Ok(before), Ok(after)) = (t.snapshot("before-add"), t.snapshot("after-online")) else {
        return;
    };
    if let (Some(b), Some(a)) = (
        before.parsed.vmstat.get("nr_memmap_pages"),
        after.parsed.vmstat.get("nr_memmap_pages"),
    ) {
        let from_existing: u64 = r
            .memmap_placements
            .iter()
            .filter_map(|p| p.allocated.as_ref().map(|a| a.huge_bytes))
            .sum();
        let hosted: u64 = vm.values().sum::<u64>() * PAGE;
        c.eq(
            "placement.nr_memmap_pages_delta",
            (a - b) * PAGE,
            from_existing + hosted,
        );
    }
}

/// Span findings against zoneinfo and the true self-hosted pages.
fn span_findings(
    c: &mut Checker,
    t: &GroundTruth,
    r: &Report,
    vm: &std::collections::BTreeMap<u64, u64>,
) -> Result<()> {
    let block_size = t
        .snapshot("before-add")?
        .parsed
        .block_size_bytes
        .unwrap_or(128 << 20);
    let movable = 3;
    for d in &t.dimms {
        let empty_after = t
            .snapshot("after-offline")
            .ok()
            .and_then(|s| s.parsed.zone(d.node, "Movable").map(|z| z.spanned == 0))
            .unwrap_or(false);
        let empties = r
            .span_findings
            .iter()
            .filter(|f| f.check == "became_empty" && f.zone.node == d.node && f.zone.zone == movable)
            .count();
        c.check(
            &format!("span.{}.became_empty", d.id),
            (empties > 0) == empty_after,
            format!(
                "zoneinfo after offline: node {} Movable empty {empty_after}; findings {empties}",
                d.node
            ),
        );
        // A self-hosted block's memmap pages stay in the zone after its other pages leave:
        // offlining shrinks the span past them (the shrink_zone_span issue of the seeds).
        for &b in &d.blocks {
            let pages = vm.get(&b).copied().unwrap_or(0);
            let start = b * block_size / PAGE;
            let hit = r.span_findings.iter().any(|f| {
                f.check == "outside_span"
                    && f.zone.node == d.node
                    && f.cause == "remove_pfn_range_from_zone"
                    && f.pfns == (start, start + pages)
            });
            c.eq(&format!("span.block{b}.outside_span"), hit, pages > 0);
        }
    }
    for (check, want) in [("unaligned_shrink", 0usize), ("overlap", 0)] {
        let n = r.span_findings.iter().filter(|f| f.check == check).count();
        c.eq(&format!("span.{check}"), n, want);
    }
    Ok(())
}

/// Memmap-init bursts: the inits of every onlined block are in the report's bursts, and each
/// burst's concurrency is its busy time over its wall time.
fn bursts(
    c: &mut Checker,
    plan: &Plan,
    t: &GroundTruth,
    r: &Report,
    nodes: &BTreeSet<i64>,
    vm: &std::collections::BTreeMap<u64, u64>,
) {
    let onlined = t.online_writes.iter().filter(|w| w.rc == 0).count() as u64;
    // A self-hosted block initialises its memmap pages first, in a call of their own.
    let hosted = vm.values().filter(|&&p| p > 0).count() as u64;
    let inits: u64 = r.ram_init_bursts.iter().map(|b| b.inits).sum();
    c.eq("bursts.inits", inits, onlined + hosted);
    for (i, b) in r.ram_init_bursts.iter().enumerate() {
        let ratio = b.busy_ns as f64 / b.wall_ns.max(1) as f64;
        let ok = (b.concurrency - ratio).abs() < 1e-6 || (b.wall_ns == 0 && b.concurrency == 1.0);
        c.sanity(
            &format!("bursts.{i}.concurrency"),
            ok && b.concurrency <= b.max_overlap as f64 + 1e-9,
            format!(
                "{} inits on nodes {:?}: busy {} ns / wall {} ns = {:.3}, reported {:.3}, max at once {}",
                b.inits, b.nodes, b.busy_ns, b.wall_ns, ratio, b.concurrency, b.max_overlap
            ),
        );
    }
    if plan.together {
        let all: Vec<i64> = nodes.iter().copied().collect();
        let step = t.steps.iter().find(|s| s.name == "online");
        let joint = r.ram_init_bursts.iter().find(|b| b.nodes == all);
        c.check(
            "bursts.together",
            joint.is_some_and(|b| step.is_some_and(|s| (b.wall_ns as f64) <= s.duration_ms * 1e6)),
            format!(
                "a burst over nodes {all:?} no longer than the online step ({:?} ms): {:?}",
                step.map(|s| s.duration_ms),
                joint.map(|b| (b.inits, b.wall_ns, b.concurrency))
            ),
        );
    }
}

/// Compaction while ZONE_MOVABLE was not contiguous went down the slow path.
fn slowpath(c: &mut Checker, t: &GroundTruth, r: &Report) {
    let ran = t
        .compactions
        .iter()
        .any(|x| compaction_scanned(&x.vmstat_after) > compaction_scanned(&x.vmstat_before));
    let z = r.zones.iter().find(|z| z.node == 1 && z.zone == "Movable");
    let non_contiguous = z.is_some_and(|z| {
        z.contiguity_changes
            .iter()
            .any(|ch| ch.get("after") == Some(&serde_json::Value::Bool(false)))
    });
    let calls = z.and_then(|z| z.slowpath_calls);
    c.check(
        "slowpath.node1.Movable",
        !ran || !non_contiguous || calls.is_some_and(|n| n > 0),
        format!("compaction scanned pages: {ran}; zone seen non-contiguous: {non_contiguous}; slow-path calls {calls:?}"),
    );
    c.check(
        "slowpath.compaction_ran",
        ran && non_contiguous,
        "the scenario must exercise the slow path",
    );
}

/// devdax namespaces: one ZONE_DEVICE range per ndctl run, memmap on the device for --map=dev.
fn devdax(c: &mut Checker, t: &GroundTruth, r: &Report) {
    c.eq("devdax.ranges", r.device_ranges.len(), t.devdax.len());
    for (i, run) in t.devdax.iter().enumerate() {
        let name = format!("devdax.{}", run.map);
        let Some(d) = r.device_ranges.get(i) else {
            c.check(&name, false, "missing from the report");
            continue;
        };
        let want = run.pmem.map(|(a, b)| (a, b + 1));
        c.eq(&format!("{name}.range"), Some((d.start, d.end)), want);
        c.eq(&format!("{name}.node"), d.node, 1);
        c.eq(&format!("{name}.ret"), d.ret, 0);
        c.eq(&format!("{name}.type"), d.pgmap_type.as_str(), "generic");
        c.eq(&format!("{name}.altmap"), d.altmap, run.map == "dev");
        c.eq(&format!("{name}.removed"), d.removed_ns.is_some(), run.destroyed);
        let pages: u64 = d.inits.iter().map(|i| i.nr_pages).sum();
        c.check(
            &format!("{name}.memmap_init"),
            !d.inits.is_empty()
                && d.inits
                    .iter()
                    .all(|i| i.node == 1 && i.zone == "Device" && i.duration_ns > 0)
                && want.is_some_and(|(a, b)| pages == (b - a) / PAGE),
            format!(
                "inits {:?}",
                d.inits
                    .iter()
                    .map(|i| (i.node, &i.zone, i.pfn, i.nr_pages, i.duration_ns))
                    .collect::<Vec<_>>()
            ),
        );
    }
    let inits: u64 = r.device_init_bursts.iter().map(|b| b.inits).sum();
    c.eq("devdax.bursts.inits", inits, t.devdax.len() as u64);
    let node1 = r
        .nodes
        .iter()
        .find(|n| n.node == 1)
        .and_then(|n| n.device_init.as_ref());
    c.eq(
        "devdax.node1.device_init.count",
        node1.map(|s| s.count),
        Some(t.devdax.len() as u64),
    );
}

fn zones(
    c: &mut Checker,
    node: i64,
    before: &crate::lab::truth::Parsed,
    online: &crate::lab::truth::Parsed,
    removed: &crate::lab::truth::Parsed,
    r: &Report,
) {
    let name = format!("zone.node{node}.Movable");
    let Some(z): Option<&Zone> = r.zones.iter().find(|z| z.node == node && z.zone == "Movable") else {
        c.check(&name, false, "missing from the report");
        return;
    };
    let tb = before.zone(node, "Movable");
    let tr = removed.zone(node, "Movable");
    let to = online.zone(node, "Movable");
    c.eq(
        &format!("{name}.truth_restored"),
        tr.map(|z| z.spanned),
        tb.map(|z| z.spanned),
    );
    c.eq(
        &format!("{name}.final_spanned"),
        z.spanned_pages,
        tr.map(|z| z.spanned),
    );
    if let Some(tz) = tr.filter(|z| z.spanned > 0) {
        c.eq(&format!("{name}.final_start_pfn"), z.start_pfn, tz.start_pfn);
    }
    let grew = z
        .span_changes
        .iter()
        .filter(|s| s.after.spanned_pages > s.before.spanned_pages)
        .count();
    let shrank = z
        .span_changes
        .iter()
        .filter(|s| s.after.spanned_pages < s.before.spanned_pages)
        .count();
    c.check(
        &format!("{name}.span_changes"),
        grew > 0 && shrank > 0,
        format!("{grew} grew, {shrank} shrank"),
    );
    // The largest span the report saw is the one zoneinfo showed with all blocks online.
    let max = z
        .span_changes
        .iter()
        .map(|s| (s.after.spanned_pages, s.after.start_pfn))
        .max();
    c.eq(
        &format!("{name}.max_span"),
        max,
        to.map(|z| (z.spanned, z.start_pfn.unwrap_or(0))),
    );
    c.check(
        &format!("{name}.contiguity_changes"),
        !z.contiguity_changes.is_empty(),
        format!("{} change(s)", z.contiguity_changes.len()),
    );
}

fn node_stats(
    c: &mut Checker,
    t: &GroundTruth,
    r: &Report,
    node: i64,
    before: &crate::lab::truth::Parsed,
    online: &crate::lab::truth::Parsed,
) {
    let name = format!("node{node}");
    let Some(n) = r.nodes.iter().find(|n| n.node == node) else {
        c.check(&name, false, "missing from the report");
        return;
    };
    let on_node: BTreeSet<u64> = t
        .dimms
        .iter()
        .filter(|d| d.node == node)
        .flat_map(|d| d.blocks.iter().copied())
        .collect();
    let count_ok = |w: &[crate::lab::truth::StateWrite]| {
        w.iter()
            .filter(|w| w.rc == 0 && on_node.contains(&w.block))
            .count() as u64
    };
    let onlines = count_ok(&t.online_writes);
    let offlines = count_ok(&t.offline_writes);
    c.eq(&format!("{name}.onlines"), n.onlines, onlines);
    c.eq(&format!("{name}.offlines"), n.offlines, offlines);
    let count = |s: &Option<Stat>| s.as_ref().map(|s| s.count);
    c.eq(&format!("{name}.online.count"), count(&n.online), Some(onlines));
    c.eq(
        &format!("{name}.offline.count"),
        count(&n.offline),
        Some(offlines),
    );
    c.check(
        &format!("{name}.memmap_init.count"),
        count(&n.memmap_init).unwrap_or(0) > 0,
        format!("{:?}", count(&n.memmap_init)),
    );
    for (what, s) in [
        ("online", &n.online),
        ("offline", &n.offline),
        ("memmap_init", &n.memmap_init),
    ] {
        if let Some(s) = s.as_ref().filter(|s| s.count > 0) {
            c.check(
                &format!("{name}.{what}.total_ns"),
                s.total_ns > 0,
                format!("{} ns", s.total_ns),
            );
        }
    }
    // Pages handed to the buddy allocator by onlining = growth of zoneinfo's managed count.
    let managed = |p: &crate::lab::truth::Parsed| p.zone(node, "Movable").map(|z| z.managed).unwrap_or(0);
    let delta = managed(online) - managed(before);
    c.eq(
        &format!("{name}.online.pages"),
        n.online.as_ref().map(|s| s.pages),
        Some(delta),
    );
    c.eq(
        &format!("{name}.offline.pages"),
        n.offline.as_ref().map(|s| s.pages),
        Some(delta),
    );
}

/// `mhpscope top` ran live in the guest: after the online step its screen showed every
/// hot-added block, the DIMMs' hot-adds and the blocks' onlines on their node.
fn top_in_guest(c: &mut Checker, plan: &Plan, t: &GroundTruth) {
    if !plan.top || t.mhpscope.is_none() {
        return;
    }
    let Some(screen) = t.top_screens.iter().find(|s| s.after == "online") else {
        c.check(
            "top.guest",
            false,
            "no screen of top captured after the online step",
        );
        return;
    };
    let view = parse_top_screen(&screen.text);
    let blocks = t.hot_added_blocks().len() as u64;
    c.eq("top.guest.hot_added_blocks", view.hot_added_blocks, Some(blocks));
    let mut want: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for d in &t.dimms {
        let e = want.entry(d.node).or_default();
        e.0 += 1;
        e.1 += d.blocks.len() as u64;
    }
    for (node, w) in want {
        c.eq(
            &format!("top.guest.node{node}.adds_onlines"),
            view.nodes.get(&node).copied(),
            Some(w),
        );
    }
}

/// The recorder's self-cost: online_pages's entry and exit programs ran once per online, in
/// the report (its last sample) and in `mhpscope probes` run beside it.
fn self_cost(c: &mut Checker, t: &GroundTruth, r: &Report) {
    let onlines = match &t.failures {
        // Every online that reached online_pages: the writes that worked, the one failed by the
        // notifier (inside online_pages), and the kernel's own.
        Some(f) => {
            (f.writes
                .iter()
                .filter(|w| w.value != "offline" && (w.rc == 0 || w.injected.is_some()))
                .count()
                + f.auto_onlined.len()) as u64
        }
        None => t.online_writes.iter().filter(|w| w.rc == 0).count() as u64,
    };
    if onlines == 0 {
        return;
    }
    let pair = r.probes.iter().any(|p| {
        p.name == "online_pages" && p.attached && matches!(p.method.as_deref(), Some("fentry" | "kprobe"))
    });
    if !pair {
        return;
    }
    let cost = r.probe_costs.iter().find(|p| p.probe == "online_pages");
    c.eq(
        "self_cost.report.online_pages.runs",
        cost.map(|p| p.runs),
        Some(2 * onlines),
    );
    c.check(
        "self_cost.report.online_pages.avg_ns",
        cost.is_some_and(|p| p.avg_ns > 0),
        format!("{:?} ns per run", cost.map(|p| p.avg_ns)),
    );
    let row = t.probes_at_end.as_deref().and_then(|text| {
        text.lines()
            .skip_while(|l| !l.starts_with("Self-cost"))
            .map(|l| l.trim_matches(|ch: char| ch == '│' || ch.is_whitespace()))
            .find(|l| l.starts_with("online_pages "))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    c.eq("self_cost.probes.online_pages.runs", row, Some(2 * onlines));
}

/// The checks on a real run's artifacts (the failures scenario on 6.12, kept in
/// xtask/testdata): they all pass there, and a report broken in one answer fails that answer's
/// check, so a check that could not fail would show here.
#[cfg(test)]
mod stored_run_tests {
    use super::*;
    use serde_json::{json, Value};

    fn stored() -> (GroundTruth, Value) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/failures-6.12");
        let truth = serde_json::from_slice(&std::fs::read(dir.join("ground-truth.json")).unwrap()).unwrap();
        let report = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        (truth, report)
    }

    fn checks_of(truth: &GroundTruth, report: &Value, name: &str) -> Tally {
        let dir = std::env::temp_dir().join(format!("mhpscope-checks-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
        let t = run(scenario::plan("failures").unwrap(), truth, &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        t
    }

    fn attempt<'a>(report: &'a mut Value, reason: &str) -> &'a mut Value {
        report["answers"]["attempts"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|a| a["reason"] == reason)
            .unwrap_or_else(|| panic!("an attempt with reason {reason}"))
    }

    #[test]
    fn a_real_run_passes_and_broken_reports_fail() {
        let (truth, report) = stored();
        let good = checks_of(&truth, &report, "good");
        assert_eq!(good.failed, 0, "{:?}", good.failed_checks);
        assert!(good.passed > 100, "{}", good.passed);

        let mut bad = report.clone();
        let a = attempt(&mut bad, "memory_holes");
        a["reason"] = json!("unmovable_page");
        a["reason_words"] = json!("unmovable page");
        let t = checks_of(&truth, &bad, "reason");
        assert!(
            t.failed_checks.iter().any(|n| n.ends_with(".reason_words")),
            "{:?}",
            t.failed_checks
        );

        let mut bad = report.clone();
        attempt(&mut bad, "failure_to_isolate_range")["blocking_page"]["pfn"] = json!(0x100001);
        let t = checks_of(&truth, &bad, "pfn");
        assert!(
            t.failed_checks.iter().any(|n| n.ends_with(".pfn")),
            "{:?}",
            t.failed_checks
        );

        let mut bad = report.clone();
        attempt(&mut bad, "signal_backoff")["errno"] = json!("EBUSY");
        let t = checks_of(&truth, &bad, "errno");
        assert!(t.failed > 0, "an errno the shell did not see passed");

        let mut bad = report;
        bad["answers"]["attempts"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a["reason"] != "notifier_failure");
        let t = checks_of(&truth, &bad, "missing");
        assert!(
            t.failed >= 2,
            "two notifier failures went missing: {:?}",
            t.failed_checks
        );
    }
}
