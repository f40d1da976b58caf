//! Per zone: span, page counts, contiguity, how often span and contiguity changed, slow-path
//! `__pageblock_pfn_to_page` calls, and the span checker's findings (listed below the table).
use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use super::{styled, Body, Ctx};
use crate::{
    model::Check,
    views::report::{FindingDoc, ZoneDoc},
    views::tui::fmt::since,
};

pub fn body(ctx: &Ctx) -> Body {
    let Some(doc) = ctx.doc else {
        return Body::waiting();
    };
    let findings: Vec<&FindingDoc> = doc
        .span_findings
        .iter()
        .filter(|f| ctx.shows(Some(f.finding.zone.node)))
        .collect();
    let in_filter: Vec<&ZoneDoc> = doc.zones.iter().filter(|z| ctx.shows(Some(z.node))).collect();
    // A boot kernel has several empty zones per node that never change: rows of zeros.
    let zones: Vec<&ZoneDoc> = in_filter.iter().copied().filter(|z| !idle(z)).collect();
    let mut rows: Vec<Line<'static>> = zones
        .iter()
        .map(|z| {
            let n = findings
                .iter()
                .filter(|f| f.finding.zone.node == z.node && f.zone_name == z.zone)
                .count();
            zone_row(z, n)
        })
        .collect();
    if let Some(r) = &doc.reporting {
        rows.extend(reporting_rows(r, ctx));
    }
    if !findings.is_empty() {
        rows.push(Line::from(""));
        rows.push(Line::styled(
            format!("span-check findings ({}):", findings.len()),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        rows.extend(findings.iter().map(|f| finding_row(f, ctx.start_ns())));
    }
    let header = format!(
        "{:<10}{:<24}{:>11}{:>11}{:>11} {:<4}{:>6} {:<10}{:>4}",
        "zone", "span (pfn)", "spanned", "present", "managed", "cont", "chg", "slow-path", "find"
    );
    let mut note = format!("{} shown", zones.len());
    if zones.len() < in_filter.len() {
        note.push_str(&format!(", {} empty hidden", in_filter.len() - zones.len()));
    }
    note.push_str(&format!(
        ", {} findings · chg = span/contiguity changes",
        findings.len()
    ));
    Body {
        note,
        header: Some(Line::styled(header, Style::new().add_modifier(Modifier::BOLD))),
        rows,
        footer: Vec::new(),
    }
}

/// Free page reporting: one line for the cycles and the host's ack wait, then a compact line
/// per zone that reported.
fn reporting_rows(r: &crate::model::reporting::ReportingDoc, ctx: &Ctx) -> Vec<Line<'static>> {
    use crate::views::report::{fmt_bytes, fmt_ns};
    let mut rows = vec![
        Line::from(""),
        Line::styled(
            format!(
                "reporting: {} cycles p50 {} max {} · {} reports {} · ack p50 {} p99 {}",
                r.cycles.count,
                fmt_ns(r.cycles.p50_ns),
                fmt_ns(r.cycles.max_ns),
                r.reports,
                fmt_bytes(r.reported_bytes),
                fmt_ns(r.host_ack.p50_ns),
                fmt_ns(r.host_ack.p99_ns),
            ),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ];
    for z in r.zones.iter().filter(|z| ctx.shows(Some(z.node))) {
        let orders: Vec<String> = z.orders.iter().map(|o| o.order.to_string()).collect();
        // Compact enough for 80 columns: reported (callback), isolated (counters), orders,
        // free/present pages, then holes and hot-added blocks when there are any.
        let mut text = format!(
            "{:<10}rep {:>8} iso {:>8} o{:<5} free {:>7}/{:<7}",
            format!("{} {}", z.node, z.zone),
            fmt_bytes(z.reported_bytes),
            fmt_bytes(z.isolated_bytes),
            if orders.is_empty() {
                "-".into()
            } else {
                orders.join(",")
            },
            z.free_pages.map_or("-".into(), |p| p.to_string()),
            z.present_pages.map_or("-".into(), |p| p.to_string()),
        );
        if z.sparse == Some(true) {
            text.push_str(" sparse");
        }
        if z.hot_added_blocks > 0 {
            text.push_str(&format!(" hot+{}", z.hot_added_blocks));
        }
        rows.push(Line::from(text));
    }
    rows
}

/// Empty now and nothing seen happening to it.
fn idle(z: &ZoneDoc) -> bool {
    z.spanned_pages == 0
        && z.present_pages.unwrap_or(0) == 0
        && z.span_changes.is_empty()
        && z.contiguity_changes.is_empty()
        && z.slowpath_calls.unwrap_or(0) == 0
}

fn zone_row(z: &ZoneDoc, findings: usize) -> Line<'static> {
    let span = if z.spanned_pages == 0 {
        "empty".to_string()
    } else {
        format!("{:#x}-{:#x}", z.start_pfn, z.start_pfn + z.spanned_pages)
    };
    let opt = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    let contiguous = match z.contiguous {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let slowpath = match z.slowpath_calls {
        None => "off".to_string(),
        Some(0) => "0".to_string(),
        Some(calls) => format!("{calls} {:.0}/s", z.slowpath_rate),
    };
    let text = format!(
        "{:<10}{:<24}{:>11}{:>11}{:>11} {:<4}{:>6} {:<10}",
        format!("{} {}", z.node, z.zone),
        span,
        z.spanned_pages,
        opt(z.present_pages),
        opt(z.managed_pages),
        contiguous,
        format!("{}/{}", z.span_changes.len(), z.contiguity_changes.len()),
        slowpath,
    );
    let style = if findings > 0 {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    Line::from(vec![Span::raw(text), styled(format!("{findings:>4}"), style)])
}

fn finding_row(f: &FindingDoc, start_ns: u64) -> Line<'static> {
    let x = &f.finding;
    let style = match x.check {
        Check::BecameEmpty => Style::new().fg(Color::Gray),
        _ => Style::new().fg(Color::Red),
    };
    Line::from(vec![
        Span::raw(format!(
            "{} {} {} ",
            since(x.ts_ns, start_ns),
            x.zone.node,
            f.zone_name
        )),
        styled(format!("{:?}", x.check), style),
        Span::raw(format!(" {:#x}-{:#x}: {}", x.pfns.0, x.pfns.1, x.message)),
    ])
}
