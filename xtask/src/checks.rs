//! Checks of `mhpscope report --json` against the lab's ground truth. One line per check, then
//! "lab: N passed, M failed".

use crate::report::{Block, Report, Stat, Zone};
use crate::scenario::HOTPLUG_NODE;
use crate::truth::GroundTruth;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::Path;

/// Reads ground-truth.json and report.json from a lab output directory.
pub fn run_from_files(out: &Path) -> Result<()> {
    let gt = out.join("ground-truth.json");
    let truth: GroundTruth =
        serde_json::from_slice(&std::fs::read(&gt).with_context(|| format!("reading {}", gt.display()))?)
            .context("parsing ground-truth.json")?;
    run(&truth, out)
}

pub fn run(truth: &GroundTruth, out: &Path) -> Result<()> {
    let mut c = Checker::default();
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
    if let Some(r) = &report {
        if let Err(e) = all(&mut c, truth, r) {
            c.check("ground-truth", false, format!("{e:#}"));
        }
    }
    println!("lab: {} passed, {} failed", c.passed, c.failed);
    if c.failed > 0 {
        bail!("{} lab check(s) failed", c.failed);
    }
    Ok(())
}

#[derive(Default)]
struct Checker {
    passed: usize,
    failed: usize,
}

impl Checker {
    fn check(&mut self, name: &str, ok: bool, detail: impl AsRef<str>) {
        if ok {
            self.passed += 1;
            println!("ok   {name}: {}", detail.as_ref());
        } else {
            self.failed += 1;
            println!("FAIL {name}: {}", detail.as_ref());
        }
    }

    /// Equality check with "got X, want Y" detail.
    fn eq<T: PartialEq + Debug>(&mut self, name: &str, got: T, want: T) {
        let ok = got == want;
        self.check(name, ok, format!("got {got:?}, want {want:?}"));
    }
}

fn all(c: &mut Checker, t: &GroundTruth, r: &Report) -> Result<()> {
    let before = &t.snapshot("before-add")?.parsed;
    let online = &t.snapshot("after-online")?.parsed;
    let removed = &t.snapshot("after-remove")?.parsed;
    let block_size = before.block_size_bytes.context("no block size in ground truth")?;

    c.eq("report.schema_version", r.schema_version, Some(1));
    c.eq(
        "report.kernel_release",
        r.kernel_release.clone(),
        t.kernel.release.clone(),
    );
    c.eq("report.block_size_bytes", r.block_size_bytes, Some(block_size));
    c.check(
        "report.events",
        r.events.unwrap_or(0) > 0,
        format!("{:?} events recorded", r.events),
    );
    c.eq("lost_events", r.lost_events, Some(0));
    let detached: Vec<String> = r
        .probes
        .iter()
        .filter(|p| !p.attached)
        .map(|p| format!("{} ({:?}: {:?})", p.name, p.function, p.reason))
        .collect();
    c.check(
        "probes.attached",
        !r.probes.is_empty() && detached.is_empty(),
        if detached.is_empty() {
            format!("all {} probes attached", r.probes.len())
        } else {
            format!("not attached: {}", detached.join(", "))
        },
    );

    hot_adds(c, t, r);
    removes(c, t, r);
    blocks(c, t, r)?;
    vmemmap(c, t, r, block_size)?;
    zones(c, before, online, removed, r);
    node_stats(c, t, r, before, online);
    Ok(())
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
            let writes = |w: &[crate::truth::StateWrite]| {
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

fn vmemmap(c: &mut Checker, t: &GroundTruth, r: &Report, block_size: u64) -> Result<()> {
    let (Some(ps), Some(sps)) = (r.page_size, r.struct_page_size) else {
        c.check(
            "vmemmap",
            false,
            format!(
                "report lacks page_size/struct_page_size ({:?}/{:?})",
                r.page_size, r.struct_page_size
            ),
        );
        return Ok(());
    };
    // One block's struct pages, in pages: 128 MiB / 4 KiB * 64 B / 4 KiB = 512.
    let expected = block_size / ps * sps / ps;
    let block_of = |id: u64| -> Option<&Block> { r.blocks.iter().find(|b| b.id == id) };
    let mut self_hosted_sum = 0;
    for d in &t.dimms {
        // 6.1 self-hosts the memmap only for a DIMM of exactly one block.
        let single = d.blocks.len() == 1;
        for &id in &d.blocks {
            let v = block_of(id).and_then(|b| b.vmemmap.as_ref());
            let placement = v.and_then(|v| v.placement.clone());
            let pages = v.map(|v| v.pages).unwrap_or(0);
            if placement.as_deref() == Some("self_hosted") {
                self_hosted_sum += pages;
            }
            if single {
                c.check(
                    &format!("vmemmap.{id}"),
                    placement.as_deref() == Some("self_hosted") && pages == expected,
                    format!(
                        "{} ({} MiB): placement {placement:?} pages {pages}, want self_hosted {expected}",
                        d.id,
                        d.size >> 20
                    ),
                );
            } else {
                c.check(
                    &format!("vmemmap.{id}"),
                    placement.as_deref() == Some("existing_memory"),
                    format!(
                        "{} ({} MiB): placement {placement:?}, want existing_memory",
                        d.id,
                        d.size >> 20
                    ),
                );
            }
        }
    }
    let z = t
        .snapshot("after-online")?
        .parsed
        .zone(HOTPLUG_NODE, "Movable")
        .cloned();
    let held = z.map(|z| z.present - z.managed);
    c.eq(
        "vmemmap.zoneinfo_present_minus_managed",
        Some(self_hosted_sum),
        held,
    );
    Ok(())
}

fn zones(
    c: &mut Checker,
    before: &crate::truth::Parsed,
    online: &crate::truth::Parsed,
    removed: &crate::truth::Parsed,
    r: &Report,
) {
    let name = format!("zone.node{HOTPLUG_NODE}.Movable");
    let Some(z): Option<&Zone> = r
        .zones
        .iter()
        .find(|z| z.node == HOTPLUG_NODE && z.zone == "Movable")
    else {
        c.check(&name, false, "missing from the report");
        return;
    };
    let tb = before.zone(HOTPLUG_NODE, "Movable");
    let tr = removed.zone(HOTPLUG_NODE, "Movable");
    let to = online.zone(HOTPLUG_NODE, "Movable");
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
    before: &crate::truth::Parsed,
    online: &crate::truth::Parsed,
) {
    let name = format!("node{HOTPLUG_NODE}");
    let Some(n) = r.nodes.iter().find(|n| n.node == HOTPLUG_NODE) else {
        c.check(&name, false, "missing from the report");
        return;
    };
    let onlines = t.online_writes.iter().filter(|w| w.rc == 0).count() as u64;
    let offlines = t.offline_writes.iter().filter(|w| w.rc == 0).count() as u64;
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
    let managed = |p: &crate::truth::Parsed| p.zone(HOTPLUG_NODE, "Movable").map(|z| z.managed).unwrap_or(0);
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
