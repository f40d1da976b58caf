//! Per node: memmap initialisation times (RAM, and ZONE_DEVICE when there is any), their
//! recent history as a sparkline, the hotplug operation counts and the last operation.
use ratatui::{
    style::{Color, Modifier, Style},
    text::Line,
};

use super::{styled, Body, Ctx};
use crate::{
    model::{DurationSummary, Init, OpKind, Recent},
    views::report::NodeDoc,
    views::tui::fmt::{short_ns, since, sparkline},
};

/// Label, count, p50, p99, max: the columns before the sparkline.
const STATS_WIDTH: usize = 6 + 5 + 3 * 7 + 1;

pub fn body(ctx: &Ctx, width: usize) -> Body {
    let (Some(doc), Some(model)) = (ctx.doc, ctx.model()) else {
        return Body::waiting();
    };
    let spark_width = width.saturating_sub(STATS_WIDTH).min(40);
    let mut rows = Vec::new();
    let nodes: Vec<&NodeDoc> = doc.nodes.iter().filter(|n| ctx.shows(Some(n.node))).collect();
    for n in &nodes {
        let history = |inits: &Recent<Init>| -> Vec<u64> {
            inits
                .iter()
                .filter(|i| i.node == n.node)
                .map(|i| i.end_ns.saturating_sub(i.start_ns))
                .collect()
        };
        rows.push(stats_row(
            format!("{} RAM", n.node),
            &n.memmap_init,
            &history(&model.ram_inits),
            spark_width,
        ));
        if n.device_init.count > 0 {
            rows.push(stats_row(
                format!("{} dev", n.node),
                &n.device_init,
                &history(&model.device_inits),
                spark_width,
            ));
        }
        rows.push(counts_row(ctx, n));
    }
    let header = format!(
        "{:<6}{:>5} {:>6} {:>6} {:>6} {}",
        "node", "inits", "p50", "p99", "max", "init times"
    );
    Body {
        note: format!("{} of {}", nodes.len(), doc.nodes.len()),
        header: Some(Line::styled(header, Style::new().add_modifier(Modifier::BOLD))),
        rows,
        footer: Vec::new(),
    }
}

fn stats_row(label: String, s: &DurationSummary, history: &[u64], spark_width: usize) -> Line<'static> {
    let t = |ns: u64| {
        if s.count == 0 {
            "-".to_string()
        } else {
            short_ns(ns)
        }
    };
    let stats = format!(
        "{label:<6}{:>5} {:>6} {:>6} {:>6} ",
        s.count,
        t(s.p50_ns),
        t(s.p99_ns),
        t(s.max_ns)
    );
    Line::from(vec![
        styled(stats, Style::new()),
        styled(sparkline(history, spark_width), Style::new().fg(Color::Green)),
    ])
}

fn counts_row(ctx: &Ctx, n: &NodeDoc) -> Line<'static> {
    let counts = format!(
        "add {} on {} off {} rm {} ",
        n.hot_adds, n.onlines, n.offlines, n.removes
    );
    let failed_style = if n.failed > 0 {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    let last = ctx
        .doc
        .and_then(|d| d.operations.iter().rev().find(|o| o.node == Some(n.node)))
        .map_or_else(String::new, |o| {
            let kind = match o.kind {
                OpKind::Add => "add",
                OpKind::Online => "online",
                OpKind::Offline => "offline",
                OpKind::Remove => "remove",
            };
            let result = if o.ret == 0 {
                String::new()
            } else {
                format!(" err {}", o.ret)
            };
            format!(" last {kind}{result} {}", since(o.ts_ns, ctx.start_ns()))
        });
    Line::from(vec![
        styled(counts, Style::new()),
        styled(format!("fail {}", n.failed), failed_style),
        styled(last, Style::new().fg(Color::Gray)),
    ])
}
