//! Free page reporting as text: the cycles, the reports and their host waits, then one row
//! per zone and order that reported, beside the zone's free and present pages.
use std::fmt::Write as _;

use super::{fmt_bytes, fmt_ns, fmt_ts, section, table, Out};
use crate::model::reporting::ReportingDoc;

pub fn write_reporting(out: &mut Out, r: &ReportingDoc) {
    let _ = writeln!(out, "\nFree page reporting");
    match &r.registered {
        Some(reg) => {
            let _ = writeln!(
                out,
                "  device registered at {}: order {} (device asked {}{}){}",
                fmt_ts(reg.ts_ns),
                reg.order.map_or("?".into(), |o| o.to_string()),
                reg.device_order,
                reg.capacity.map_or(String::new(), |c| format!(", capacity {c}")),
                if reg.ret != 0 {
                    format!(", failed: {}", crate::errno::errno_name(reg.ret))
                } else {
                    String::new()
                }
            );
        }
        None => {
            let _ = writeln!(out, "  no device registered while tracing");
        }
    }
    if let Some(o) = r.order_param {
        let _ = writeln!(out, "  page_reporting_order (sysfs): {o}");
    }
    let c = &r.cycles;
    let _ = writeln!(
        out,
        "  cycles {} ({:.2}/s) p50 {} p99 {} max {}{}",
        c.count,
        r.cycles_per_s,
        fmt_ns(c.p50_ns),
        fmt_ns(c.p99_ns),
        fmt_ns(c.max_ns),
        if r.cycles_without_totals > 0 {
            format!(" ({} without totals)", r.cycles_without_totals)
        } else {
            String::new()
        }
    );
    let a = &r.host_ack;
    let _ = writeln!(
        out,
        "  reports {} ({:.2}/s, {} failed) {} handed to the host; host ack p50 {} p99 {} max {}",
        r.reports,
        r.reports_per_s,
        r.reports_failed,
        fmt_bytes(r.reported_bytes),
        fmt_ns(a.p50_ns),
        fmt_ns(a.p99_ns),
        fmt_ns(a.max_ns),
    );
    if r.reports_unseen_cycle > 0 {
        let _ = writeln!(
            out,
            "  {} of the reports came from a cycle that began before tracing did: its pages were isolated unseen, \
             so they are not in the isolated figures below",
            r.reports_unseen_cycle
        );
    }
    let _ = writeln!(
        out,
        "  requests (__page_reporting_notify) {} ({:.1}/s lately)",
        r.requests, r.requests_per_s
    );
    let mut t = table(&[
        "zone",
        "reports",
        "reported",
        "order",
        "isolated",
        "put back",
        "isolated bytes",
        "free",
        "present",
        "sparse",
        "hot-added",
    ]);
    for z in &r.zones {
        let name = format!("{} {}", z.node, z.zone);
        let figures = |t: &mut comfy_table::Table, order: String, iso: String, put: String, bytes: String| {
            t.add_row(vec![
                name.clone(),
                z.reports.to_string(),
                fmt_bytes(z.reported_bytes),
                order,
                iso,
                put,
                bytes,
                z.free_pages.map_or("-".into(), |p| p.to_string()),
                z.present_pages.map_or("-".into(), |p| p.to_string()),
                match z.sparse {
                    Some(true) => "yes (holes)".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                if z.hot_added_blocks > 0 {
                    format!("{} blocks", z.hot_added_blocks)
                } else {
                    "no".into()
                },
            ]);
        };
        if z.orders.is_empty() {
            figures(&mut t, "-".into(), "-".into(), "-".into(), "-".into());
        }
        for o in &z.orders {
            figures(
                &mut t,
                o.order.to_string(),
                o.isolated_blocks.to_string(),
                o.putback_blocks.to_string(),
                fmt_bytes(o.isolated_bytes),
            );
        }
    }
    section(
        out,
        "Reported free pages per zone and order (reports from the callback; blocks isolated and put back from the counters)",
        t,
    );
}
