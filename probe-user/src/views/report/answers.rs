//! The answers as text: findings first (under the report's first line), then the attempts,
//! readiness, headroom and configuration tables after the zone tables.
use std::fmt::Write as _;

use super::{fmt_bytes, fmt_ns, fmt_ts, section, table, Out};
use crate::{
    model::attempts::AttemptKind,
    views::answers::{serde_name, AnswerKind, Answers, AttemptDoc},
};

/// The findings, most important first: what a reader wants to know before any table.
pub fn write_answers(out: &mut Out, a: &Answers) {
    let _ = writeln!(out, "\nAnswers");
    if a.answers.is_empty() {
        let _ = writeln!(
            out,
            "  no failed online or offline, no block left offline, no headroom finding"
        );
    }
    for f in &a.answers {
        let tag = match f.kind {
            AnswerKind::OfflineFailed => "offline failed",
            AnswerKind::OnlineFailed => "online failed",
            AnswerKind::AllocationFailed => "allocation failed",
            AnswerKind::NeverOnlined => "not onlined",
            AnswerKind::Headroom => "headroom",
        };
        let _ = writeln!(out, "  {} {tag}: {}", fmt_ts(f.ts_ns), f.message);
    }
    let warned: Vec<_> = a.config.iter().filter(|c| c.warn).collect();
    for c in warned {
        let _ = writeln!(out, "  config: {}", c.consequence);
    }
}

pub fn write_details(out: &mut Out, a: &Answers, page_size: u64) {
    let mut t = table(&[
        "time",
        "what",
        "block",
        "node",
        "zone",
        "asked",
        "result",
        "reason",
        "page in the way",
        "migrated",
        "took",
    ]);
    for at in &a.attempts {
        t.add_row(vec![
            fmt_ts(at.ts_ns),
            kind(at),
            at.block.map_or("-".into(), |b| format!("memory{b}")),
            at.node.map_or("-".into(), |n| n.to_string()),
            at.zone.clone().unwrap_or_else(|| "-".into()),
            asked(at),
            at.errno.clone(),
            at.reason_words.clone().unwrap_or_default(),
            page(at),
            migrated(at),
            fmt_ns(at.duration_ns),
        ]);
    }
    section(
        out,
        "Online and offline attempts (reasons in the kernel's words)",
        t,
    );

    let mut t = table(&["added", "node", "phys range", "block", "online after"]);
    for r in &a.readiness {
        for b in &r.blocks {
            t.add_row(vec![
                fmt_ts(r.ts_ns),
                r.node.to_string(),
                format!(
                    "{:#x}-{:#x}",
                    r.start_pfn * page_size,
                    (r.start_pfn + r.nr_pages) * page_size
                ),
                format!("memory{}", b.block),
                b.online_after_ns.map_or("never onlined".into(), fmt_ns),
            ]);
        }
    }
    section(out, "Readiness: from the hot-add to each block online", t);

    let mut t = table(&[
        "time",
        "node",
        "phys range",
        "result",
        "memmap from",
        "node free before",
        "after",
        "share",
    ]);
    for h in &a.headroom {
        for n in &h.by_node {
            t.add_row(vec![
                fmt_ts(h.ts_ns),
                h.node.to_string(),
                format!(
                    "{:#x}-{:#x}",
                    h.start_pfn * page_size,
                    (h.start_pfn + h.nr_pages) * page_size
                ),
                h.errno.clone(),
                format!("node {}: {}", n.node, fmt_bytes(n.taken_bytes)),
                n.free_before_bytes.map_or("-".into(), fmt_bytes),
                n.free_after_bytes.map_or("-".into(), fmt_bytes),
                n.share_of_free
                    .map_or("-".into(), |s| format!("{:.1}%", s * 100.0)),
            ]);
        }
    }
    section(
        out,
        "Memmap headroom per hot-add (node free memory read in the kernel as __add_pages began and ended)",
        t,
    );

    let mut t = table(&["setting", "value", "what it means"]);
    for c in &a.config {
        t.add_row(vec![
            serde_name(&c.key).unwrap_or_default(),
            c.value.clone(),
            if c.warn {
                format!("! {}", c.consequence)
            } else {
                c.consequence.clone()
            },
        ]);
    }
    section(out, "Hotplug configuration", t);
}

fn kind(a: &AttemptDoc) -> String {
    let k = match a.kind {
        AttemptKind::Online => "online",
        AttemptKind::Offline => "offline",
    };
    if a.auto_online {
        format!("{k} (auto)")
    } else {
        k.into()
    }
}

/// What the online asked for, and the policy that decided when it left the choice open.
fn asked(a: &AttemptDoc) -> String {
    let Some(r) = a.requested else {
        return "-".into();
    };
    let asked = r.as_str().to_string();
    match (&a.policy, r) {
        (Some(p), crate::model::event::OnlineType::Online | crate::model::event::OnlineType::Unset) => {
            format!("{asked}, {p}")
        }
        _ => asked,
    }
}

fn page(a: &AttemptDoc) -> String {
    let Some(p) = &a.blocking_page else {
        return String::new();
    };
    let what = p.what.and_then(|w| serde_name(&w)).unwrap_or_default();
    let flags = p
        .flags
        .as_ref()
        .map(|f| f.join("|"))
        .unwrap_or_else(|| format!("{:#x}", p.flags_raw));
    let place = match (p.node, &p.zone) {
        (Some(n), Some(z)) => format!(" n{n} {z}"),
        _ => String::new(),
    };
    format!("{:#x} {what} ({flags}){place} ref {}", p.pfn, p.refcount)
}

fn migrated(a: &AttemptDoc) -> String {
    let m = a.migration;
    if m.passes == 0 && m.retries == 0 {
        return String::new();
    }
    let mut s = format!("{} ok", m.succeeded);
    if m.failed > 0 {
        let _ = write!(s, ", {} failed", m.failed);
    }
    if m.retries > 0 {
        let _ = write!(s, ", {} retries", m.retries);
    }
    s
}
