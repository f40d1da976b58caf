//! Checks of `reporting` (free page reporting) against what the `reporting` scenario's guest
//! ftrace and the host saw: cycles and reports counted by ftrace in the same window, qemu's
//! RSS falling as the host discards what was reported, the zones in the guest's zoneinfo, the
//! order in sysfs and the hot-added DIMM's blocks.

use super::{Checker, PAGE};
use crate::lab::report::Report;
use crate::lab::truth::GroundTruth;
use anyhow::{Context, Result};

/// The buddy allocator's largest order on the three lab kernels (MAX_ORDER 11 on 6.1 counts
/// orders 0..=10; 6.12 and 7.2 name the largest one, MAX_PAGE_ORDER, 10).
const MAX_ORDER: u8 = 10;

/// Host RSS against reported bytes. The host discards every reported range (madvise), but
/// only what it had backed shows as a fall: a block the guest reported may hold pages that were
/// reported and discarded before and never touched again (a freed page merging with an already
/// reported buddy makes the larger block unreported, so it is reported again, whole). The
/// scenario makes most of what it frees resident (the DIMM preallocated on the host, dd's
/// buffer written); the fall must be at least this share of the bytes mhpscope saw reported...
const RSS_MIN_SHARE: f64 = 0.5;
/// ...and at most the reported bytes plus this: the host gives back nothing unreported, and
/// qemu's own allocations move its RSS by a few MiB between readings.
const RSS_SLACK: u64 = 16 << 20;

pub fn run(c: &mut Checker, t: &GroundTruth, r: &Report) -> Result<()> {
    let truth = t.reporting.as_ref().context("no reporting ground truth")?;
    let Some(rep) = r.reporting.as_ref() else {
        c.check("reporting", false, "no reporting section in the report");
        return Ok(());
    };
    c.sanity_eq("reporting.ftrace_overrun", truth.ftrace_overrun, Some(false));
    c.eq("reporting.cycles", Some(rep.cycles.count), truth.ftrace_cycles);
    c.eq("reporting.reports", Some(rep.reports), truth.ftrace_reports);
    // A cycle running as the recorder started: its reports are seen, its isolations were not.
    c.eq(
        "reporting.reports_unseen_cycle",
        Some(rep.reports_unseen_cycle),
        truth.ftrace_reports_unseen_cycle,
    );
    c.sanity_eq("reporting.reports_failed", rep.reports_failed, 0);
    c.sanity_eq("reporting.reports_without_zone", rep.reports_without_zone, 0);
    c.sanity_eq("reporting.cycles_without_totals", rep.cycles_without_totals, 0);
    c.eq("reporting.order_param", rep.order_param, truth.order_param);

    // The host's side.
    let fall: u64 = truth
        .rss
        .iter()
        .map(|p| p.high_kib.saturating_sub(p.low_kib) << 10)
        .sum();
    let reported = rep.reported_bytes;
    c.check(
        "reporting.host_rss",
        !truth.rss.is_empty()
            && fall as f64 >= RSS_MIN_SHARE * reported as f64
            && fall <= reported + RSS_SLACK,
        format!(
            "qemu's RSS fell {} MiB over {} phases ({}); mhpscope: {} MiB reported; want a fall in [{:.0}% of it, it + {} MiB]",
            fall >> 20,
            truth.rss.len(),
            truth
                .rss
                .iter()
                .map(|p| format!("{}: {} -> {} MiB", p.what, p.high_kib >> 10, p.low_kib >> 10))
                .collect::<Vec<_>>()
                .join(", "),
            reported >> 20,
            RSS_MIN_SHARE * 100.0,
            RSS_SLACK >> 20
        ),
    );

    // Zones and orders: each zone named is one of the guest's populated zones, everything
    // isolated from it for reporting was reported (the reports of a cycle begun before the
    // recording aside: what it isolated was not counted), and at orders reporting uses.
    let zoneinfo = &t.snapshot("after-reporting")?.parsed;
    let order = truth.order_param.unwrap_or(0).max(0) as u8;
    c.sanity(
        "reporting.zones",
        !rep.zones.is_empty(),
        format!(
            "{:?}",
            rep.zones
                .iter()
                .map(|z| format!("{} {}", z.node, z.zone))
                .collect::<Vec<_>>()
        ),
    );
    for z in &rep.zones {
        let name = format!("reporting.node{}.{}", z.node, z.zone);
        let guest = zoneinfo.zone(z.node, &z.zone);
        c.check(
            &format!("{name}.in_zoneinfo"),
            guest.is_some_and(|g| g.present > 0),
            format!(
                "zoneinfo: present {:?}; report: present {:?}",
                guest.map(|g| g.present),
                z.present_pages
            ),
        );
        c.eq(
            &format!("{name}.isolated_bytes"),
            z.isolated_bytes,
            z.reported_bytes - z.reported_bytes_unseen_cycle.min(z.reported_bytes),
        );
        let orders: Vec<u8> = z.orders.iter().map(|o| o.order).collect();
        c.sanity(
            &format!("{name}.orders"),
            z.orders.iter().all(|o| (order..=MAX_ORDER).contains(&o.order)),
            format!("orders {orders:?}; page_reporting_order {order}, largest order {MAX_ORDER}"),
        );
        let blocks: u64 = z
            .orders
            .iter()
            .map(|o| (PAGE << o.order) * o.isolated_blocks)
            .sum();
        c.sanity_eq(&format!("{name}.orders.bytes"), blocks, z.isolated_bytes);
        c.sanity_eq(
            &format!("{name}.orders.putback"),
            z.orders.iter().map(|o| o.putback_blocks).sum::<u64>(),
            z.orders.iter().map(|o| o.isolated_blocks).sum::<u64>(),
        );
    }

    // The hotplugged zone: d1's blocks, onlined movable on its node, reported from. Freshly
    // onlined, all of it is free at high order: at least half is reported right away (the rest
    // of the zone's reports are dd's movable buffers coming back).
    let d = t.dimms.first().context("no DIMM in the ground truth")?;
    let online = &t.snapshot("after-online")?.parsed;
    let before = &t.snapshot("before-add")?.parsed;
    let managed = |p: &crate::lab::truth::Parsed| p.zone(d.node, "Movable").map_or(0, |z| z.managed);
    let onlined = (managed(online) - managed(before)) * PAGE;
    let z = rep.zones.iter().find(|z| z.node == d.node && z.zone == "Movable");
    c.eq(
        "reporting.hotplugged.hot_added_blocks",
        z.map(|z| z.hot_added_blocks),
        Some(d.blocks.len() as u64),
    );
    c.check(
        "reporting.hotplugged.reported",
        z.is_some_and(|z| z.reports > 0 && z.reported_bytes * 2 >= onlined),
        format!(
            "node {} Movable: {} MiB onlined (zoneinfo managed); reported {:?} MiB in {:?} reports; want at least half of it \
             (more is fine: dd's buffer, allocated movable, comes back from it to be reported again)",
            d.node,
            onlined >> 20,
            z.map(|z| z.reported_bytes >> 20),
            z.map(|z| z.reports)
        ),
    );
    Ok(())
}
