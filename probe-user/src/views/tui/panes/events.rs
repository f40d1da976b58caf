//! The latest events, newest first: time since the stream started, kernel function, the
//! arguments that matter, and how long the call took.
use ratatui::{
    style::{Color, Modifier, Style},
    text::{Line, Span},
};

use super::{styled, Body, Ctx};
use crate::{
    model::event::{pgmap_type_name, Event, Op, ZoneId},
    model::Model,
    views::tui::fmt::{short_bytes, short_ns, since},
};

pub fn body(ctx: &Ctx) -> Body {
    let Some(model) = ctx.model() else {
        return Body::waiting();
    };
    let rows: Vec<Line<'static>> = ctx
        .stream
        .recent
        .iter()
        .rev()
        .filter(|ev| ctx.shows(node_of(ev, model)))
        .map(|ev| row(ev, model, ctx.start_ns()))
        .collect();
    Body {
        note: format!("{} of {} seen, newest first", rows.len(), model.events),
        header: None,
        rows,
        footer: Vec::new(),
    }
}

fn row(ev: &Event, model: &Model, start_ns: u64) -> Line<'static> {
    let mut spans = vec![
        styled(
            format!("{} ", since(ev.ts_ns, start_ns)),
            Style::new().fg(Color::DarkGray),
        ),
        styled(ev.op.function(), Style::new().fg(Color::Cyan)),
        Span::raw(format!(" {}", args(&ev.op, model))),
    ];
    if ev.duration_ns > 0 {
        spans.push(styled(
            format!(" {}", short_ns(ev.duration_ns)),
            Style::new().fg(Color::Gray),
        ));
    }
    if let Some(ret) = ret_of(&ev.op).filter(|&r| r != 0) {
        spans.push(styled(
            format!(" err {ret}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// The node an event is about, as far as it says or the model knows.
pub fn node_of(ev: &Event, model: &Model) -> Option<i32> {
    let page = model.layout.page_size.max(1);
    match &ev.op {
        Op::AddMemoryResource { start, .. } | Op::TryRemoveMemory { start, .. } => {
            model.node_of_pfn(start / page)
        }
        Op::MemunmapPages { start, .. } => model.devices.iter().find(|d| d.start == *start).map(|d| d.node),
        Op::ArchAddMemory { node, .. } | Op::AddPages { node, .. } | Op::MemremapPages { node, .. } => {
            Some(*node)
        }
        Op::PageAlloc { window_node, .. } => Some(*window_node),
        Op::MhpInitMemmapOnMemory { zone, .. }
        | Op::OnlinePages { zone, .. }
        | Op::MovePfnRangeToZone { zone, .. }
        | Op::OfflinePages { zone, .. }
        | Op::RemovePfnRangeFromZone { zone, .. }
        | Op::SetZoneContiguous { zone, .. }
        | Op::MemmapInitRange { zone, .. }
        | Op::MemmapInitZoneDevice { zone, .. }
        | Op::SlowPathSample { zone, .. }
        | Op::ReportedPagesSample { zone, .. } => Some(zone.node),
        Op::PageReport { zone, .. } => zone.map(|z| z.node),
        Op::BlockOnline { node, .. } | Op::BlockOffline { node, .. } | Op::NodeFreePages { node, .. } => {
            Some(*node)
        }
        Op::DumpPage { pfn, .. } => model.node_of_pfn(*pfn),
        Op::IsolateRange { pfn, .. }
        | Op::WalkSystemRam { pfn, .. }
        | Op::DissolveHugePages { pfn, .. }
        | Op::TestPagesIsolated { pfn, .. } => model.node_of_pfn(*pfn),
        Op::MemoryNotify { .. }
        | Op::NodeNotify { .. }
        | Op::MigratePages { .. }
        | Op::LostEventsSample { .. }
        | Op::ProbeCostSample { .. }
        | Op::ReportingRegister { .. }
        | Op::ReportingCycle { .. }
        | Op::ReportingRequestsSample { .. }
        | Op::ReportingOrderSample { .. } => None,
    }
}

fn ret_of(op: &Op) -> Option<i32> {
    match op {
        Op::AddMemoryResource { ret, .. }
        | Op::ArchAddMemory { ret, .. }
        | Op::MhpInitMemmapOnMemory { ret, .. }
        | Op::OnlinePages { ret, .. }
        | Op::OfflinePages { ret, .. }
        | Op::TryRemoveMemory { ret, .. }
        | Op::AddPages { ret, .. }
        | Op::BlockOnline { ret, .. }
        | Op::BlockOffline { ret, .. }
        | Op::IsolateRange { ret, .. }
        | Op::MemoryNotify { ret, .. }
        | Op::NodeNotify { ret, .. }
        | Op::DissolveHugePages { ret, .. }
        | Op::MemremapPages { ret, .. }
        | Op::ReportingRegister { ret, .. }
        | Op::PageReport { ret, .. } => Some(*ret),
        _ => None,
    }
}

/// The arguments worth a glance, tersely.
fn args(op: &Op, model: &Model) -> String {
    let zone = |z: &ZoneId| format!("n{} {}", z.node, model.layout.zone_name(z.zone));
    let pfns = |pfn: u64, nr: u64| format!("{pfn:#x}+{nr:#x}");
    match op {
        Op::AddMemoryResource { start, size, .. } | Op::TryRemoveMemory { start, size, .. } => {
            format!("{start:#x} {}", short_bytes(*size))
        }
        Op::ArchAddMemory {
            node,
            start,
            size,
            altmap,
            ..
        } => {
            let altmap = altmap.map_or(String::new(), |a| format!(" altmap {}p", a.alloc + a.align));
            format!("n{node} {start:#x} {}{altmap}", short_bytes(*size))
        }
        Op::AddPages {
            node,
            pfn,
            nr_pages,
            altmap,
            ..
        } => format!(
            "n{node} {}{}",
            pfns(*pfn, *nr_pages),
            if *altmap { " altmap" } else { "" }
        ),
        Op::PageAlloc {
            pfn,
            order,
            window_node,
            ..
        } => format!("pfn {pfn:#x} order {order} for n{window_node}"),
        Op::MhpInitMemmapOnMemory {
            pfn,
            nr_pages,
            zone: z,
            ..
        }
        | Op::OnlinePages {
            pfn,
            nr_pages,
            zone: z,
            ..
        }
        | Op::OfflinePages {
            pfn,
            nr_pages,
            zone: z,
            ..
        } => format!("{} {}", zone(z), pfns(*pfn, *nr_pages)),
        Op::MovePfnRangeToZone {
            pfn,
            nr_pages,
            zone: z,
            after,
            ..
        }
        | Op::RemovePfnRangeFromZone {
            pfn,
            nr_pages,
            zone: z,
            after,
            ..
        } => format!(
            "{} {} span {:#x}+{:#x}",
            zone(z),
            pfns(*pfn, *nr_pages),
            after.start_pfn,
            after.spanned_pages
        ),
        Op::SetZoneContiguous {
            zone: z, contiguous, ..
        } => format!(
            "{} {}",
            zone(z),
            if *contiguous {
                "contiguous"
            } else {
                "NOT contiguous"
            }
        ),
        Op::MemmapInitRange {
            zone: z,
            pfn,
            nr_pages,
            context,
        } => format!(
            "{} {} {}",
            zone(z),
            pfns(*pfn, *nr_pages),
            if *context == 1 { "hotplug" } else { "early" }
        ),
        Op::MemmapInitZoneDevice {
            zone: z,
            pfn,
            nr_pages,
            pgmap_type,
            ..
        } => format!(
            "{} {} {}",
            zone(z),
            pfns(*pfn, *nr_pages),
            pgmap_type_name(*pgmap_type)
        ),
        Op::MemremapPages {
            node,
            start,
            end,
            pgmap_type,
            altmap,
            ..
        } => format!(
            "n{node} {start:#x}-{end:#x} {}{}",
            pgmap_type_name(*pgmap_type),
            if *altmap { " altmap" } else { "" }
        ),
        Op::MemunmapPages {
            start,
            end,
            pgmap_type,
            ..
        } => format!("{start:#x}-{end:#x} {}", pgmap_type_name(*pgmap_type)),
        Op::SlowPathSample { zone: z, calls } => format!("{} calls {calls}", zone(z)),
        Op::LostEventsSample { total } => format!("{total} lost so far"),
        Op::ReportingRegister { order, .. } => {
            format!("order {}", order.map_or("?".into(), |o| o.to_string()))
        }
        Op::ReportingCycle {
            reports,
            bytes,
            totals_known,
            ..
        } => {
            if *totals_known {
                format!("{reports} reports {}", short_bytes(*bytes))
            } else {
                "totals unknown".into()
            }
        }
        Op::PageReport {
            zone: z,
            nents,
            bytes,
            ..
        } => format!(
            "{} {nents} blocks {}",
            z.as_ref().map_or("zone ?".into(), zone),
            short_bytes(*bytes)
        ),
        Op::ReportedPagesSample {
            zone: z,
            order,
            isolated,
            ..
        } => format!("{} order {order} isolated {isolated}", zone(z)),
        Op::ReportingRequestsSample { calls } => format!("{calls} requests so far"),
        Op::ReportingOrderSample { order } => format!("order {order}"),
        Op::ProbeCostSample {
            probe,
            runs,
            run_time_ns,
        } => format!("{probe} runs {runs} avg {}ns", run_time_ns / (*runs).max(1)),
        Op::BlockOnline {
            pfn,
            requested,
            zone: z,
            policy,
            ..
        } => format!(
            "memory{} {}{}{}",
            model.layout.block_of_pfn(*pfn),
            requested.as_str(),
            policy.map_or(String::new(), |p| format!(" ({})", p.policy.as_str())),
            z.as_ref().map_or(String::new(), |z| format!(" -> {}", zone(z)))
        ),
        Op::BlockOffline { pfn, .. } => format!("memory{}", model.layout.block_of_pfn(*pfn)),
        Op::IsolateRange { pfn, nr_pages, .. } => pfns(*pfn, *nr_pages),
        Op::MemoryNotify { action, .. } => action.kernel_name().to_string(),
        Op::NodeNotify { action, .. } => format!("action {action}"),
        Op::WalkSystemRam {
            pfn,
            nr_pages,
            ram_pages,
        } => format!("{} RAM {ram_pages}", pfns(*pfn, *nr_pages)),
        Op::DissolveHugePages { pfn, end_pfn, .. } => format!("{pfn:#x}-{end_pfn:#x}"),
        Op::TestPagesIsolated {
            pfn,
            end_pfn,
            fin_pfn,
        } => {
            if fin_pfn >= end_pfn {
                format!("{pfn:#x}-{end_pfn:#x} isolated")
            } else {
                format!("{pfn:#x}-{end_pfn:#x} busy at {fin_pfn:#x}")
            }
        }
        Op::MigratePages {
            succeeded, failed, ..
        } => format!("migrated {succeeded} failed {failed}"),
        Op::DumpPage { pfn, reason, .. } => format!("pfn {pfn:#x} {reason}"),
        Op::NodeFreePages {
            node,
            free_pages,
            moment,
            ..
        } => format!(
            "n{node} free {} {moment:?}",
            short_bytes(free_pages * model.layout.page_size)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::Layout,
        recording::stream::{Stream, Update, RECENT_EVENTS},
        views::tui::app::App,
    };

    #[test]
    fn the_log_keeps_the_latest_events_newest_first() {
        let mut stream = Stream::new("t");
        stream.model = Some(Model::new(Layout {
            zone_names: vec!["DMA".into(), "Normal".into()],
            page_size: 4096,
            struct_page_size: 64,
            block_size_bytes: 128 << 20,
            page_flags: None,
            features: Default::default(),
        }));
        let total = RECENT_EVENTS as u64 + 100;
        for i in 1..=total {
            stream.apply(Update::Event(Event {
                ts_ns: i * 1_000_000,
                duration_ns: 0,
                tid: 1,
                op: Op::SlowPathSample {
                    zone: ZoneId {
                        node: (i % 2) as i32,
                        zone: 1,
                    },
                    calls: i,
                },
            }));
        }
        let app = App::new();
        let ctx = Ctx {
            app: &app,
            stream: &stream,
            doc: None,
        };
        let body = body(&ctx);
        assert_eq!(
            body.note,
            format!("{RECENT_EVENTS} of {total} seen, newest first")
        );
        assert_eq!(
            body.rows[0].to_string(),
            format!(
                "+{:.3} __pageblock_pfn_to_page n0 Normal calls {total}",
                total as f64 / 1e3
            )
        );

        let app = App {
            filter: Some([1].into()),
            ..App::new()
        };
        let body = super::body(&Ctx { app: &app, ..ctx });
        assert_eq!(body.rows.len(), RECENT_EVENTS / 2, "node 1's events only");
        assert!(body.rows.iter().all(|r| r.to_string().contains(" n1 ")));
    }
}
