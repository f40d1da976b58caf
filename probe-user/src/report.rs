//! The report: one document built from the model, printed as tables or as JSON.
//! A view: it reads the model and never touches the kernel.
use std::fmt::Write as _;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, Table};
use serde::{Deserialize, Serialize};

use crate::{
    event::{mhp, Span},
    model::{BlockState, ContiguityChange, DurationSummary, Model, OpKind, Operation, Placement, SpanChange},
    probes::ProbeStatus,
};

pub const SCHEMA_VERSION: u32 = 1;

/// Where the data came from, for the report's first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub kernel_release: String,
    pub probes: Vec<ProbeStatus>,
    pub duration_ns: u64,
    pub undecodable_events: u64,
    /// "live" or the recording's path.
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub schema_version: u32,
    pub origin: String,
    pub kernel_release: String,
    pub duration_ns: u64,
    pub block_size_bytes: u64,
    pub page_size: u64,
    pub struct_page_size: u64,
    pub events: u64,
    pub lost_events: u64,
    pub undecodable_events: u64,
    pub probes: Vec<ProbeStatus>,
    pub hot_adds: Vec<HotAddDoc>,
    pub removes: Vec<RemoveDoc>,
    pub nodes: Vec<NodeDoc>,
    pub blocks: Vec<BlockDoc>,
    pub zones: Vec<ZoneDoc>,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HotAddDoc {
    pub ts_ns: u64,
    pub start: u64,
    pub size: u64,
    pub node: Option<i32>,
    pub mhp_flags: u32,
    pub ret: i32,
    pub duration_ns: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveDoc {
    pub ts_ns: u64,
    pub start: u64,
    pub size: u64,
    pub node: Option<i32>,
    pub ret: i32,
    pub duration_ns: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeDoc {
    pub node: i32,
    pub hot_adds: u64,
    pub onlines: u64,
    pub offlines: u64,
    pub removes: u64,
    pub failed: u64,
    pub memmap_init: DurationSummary,
    pub online: DurationSummary,
    pub offline: DurationSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockDoc {
    pub id: u64,
    pub start: u64,
    pub node: Option<i32>,
    pub zone: Option<String>,
    pub state: BlockState,
    pub hot_added: bool,
    pub onlined: u32,
    pub offlined: u32,
    pub vmemmap: VmemmapDoc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmemmapDoc {
    pub placement: Placement,
    pub pages: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneDoc {
    pub node: i32,
    pub zone: String,
    pub start_pfn: u64,
    pub spanned_pages: u64,
    pub present_pages: Option<u64>,
    pub managed_pages: Option<u64>,
    pub contiguous: Option<bool>,
    pub contiguity_checks: DurationSummary,
    pub span_changes: Vec<SpanChange>,
    pub contiguity_changes: Vec<ContiguityChange>,
}

impl Document {
    pub fn build(model: &Model, source: Source) -> Document {
        let l = &model.layout;
        let ops = |kind: OpKind| model.operations.iter().filter(move |o| o.kind == kind);
        Document {
            schema_version: SCHEMA_VERSION,
            origin: source.origin,
            kernel_release: source.kernel_release,
            duration_ns: source.duration_ns,
            block_size_bytes: l.block_size_bytes,
            page_size: l.page_size,
            struct_page_size: l.struct_page_size,
            events: model.events,
            lost_events: model.lost_events,
            undecodable_events: source.undecodable_events,
            probes: source.probes,
            hot_adds: ops(OpKind::Add)
                .map(|o| HotAddDoc {
                    ts_ns: o.ts_ns,
                    start: o.start,
                    size: o.size,
                    node: o.node,
                    mhp_flags: o.mhp_flags.unwrap_or(0),
                    ret: o.ret,
                    duration_ns: o.duration_ns,
                })
                .collect(),
            removes: ops(OpKind::Remove)
                .map(|o| RemoveDoc {
                    ts_ns: o.ts_ns,
                    start: o.start,
                    size: o.size,
                    node: o.node,
                    ret: o.ret,
                    duration_ns: o.duration_ns,
                })
                .collect(),
            nodes: model
                .nodes
                .iter()
                .map(|(&node, s)| NodeDoc {
                    node,
                    hot_adds: s.hot_adds,
                    onlines: s.online.count(),
                    offlines: s.offline.count(),
                    removes: s.removes,
                    failed: s.failed,
                    memmap_init: s.memmap_init.summary(),
                    online: s.online.summary(),
                    offline: s.offline.summary(),
                })
                .collect(),
            blocks: model
                .blocks
                .values()
                .map(|b| BlockDoc {
                    id: b.id,
                    start: b.id * l.block_size_bytes,
                    node: b.node,
                    zone: b.zone.map(|z| l.zone_name(z)),
                    state: b.state.clone(),
                    hot_added: b.hot_added,
                    onlined: b.onlined,
                    offlined: b.offlined,
                    vmemmap: VmemmapDoc {
                        placement: b.placement,
                        pages: b.vmemmap_pages,
                        bytes: b.vmemmap_pages * l.page_size,
                    },
                })
                .collect(),
            zones: model
                .zones
                .iter()
                .map(|(id, z)| ZoneDoc {
                    node: id.node,
                    zone: l.zone_name(id.zone),
                    start_pfn: z.span.start_pfn,
                    spanned_pages: z.span.spanned_pages,
                    present_pages: z.present,
                    managed_pages: z.managed,
                    contiguous: z.contiguous,
                    contiguity_checks: z.contiguity_checks.summary(),
                    span_changes: z.span_changes.clone(),
                    contiguity_changes: z.contiguity_changes.clone(),
                })
                .collect(),
            operations: model.operations.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let attached = self.probes.iter().filter(|p| p.attached).count();
        let _ = writeln!(
            out,
            "mhpscope report: kernel {}, {} ({}), {} events, {} lost, {} probes of {} attached",
            self.kernel_release,
            self.origin,
            fmt_ns(self.duration_ns),
            self.events,
            self.lost_events,
            attached,
            self.probes.len()
        );
        if self.lost_events > 0 {
            let _ = writeln!(
                out,
                "WARNING: {} events were lost to a full ring buffer; counts below are incomplete",
                self.lost_events
            );
        }
        if self.undecodable_events > 0 {
            let _ = writeln!(
                out,
                "WARNING: {} records could not be decoded",
                self.undecodable_events
            );
        }
        section(&mut out, "Probes", self.probes_table());
        section(&mut out, "Nodes", self.nodes_table());
        section(
            &mut out,
            "Memmap initialisation per node (move_pfn_range_to_zone)",
            self.memmap_table(),
        );
        let (blocks, untouched) = self.blocks_table();
        let title = if untouched > 0 {
            format!("Memory blocks touched while tracing ({untouched} others unchanged)")
        } else {
            "Memory blocks touched while tracing".to_string()
        };
        section(&mut out, &title, blocks);
        section(&mut out, "Zones", self.zones_table());
        section(&mut out, "Zone span changes", self.span_table());
        section(&mut out, "Contiguity transitions", self.contiguity_table());
        section(&mut out, "Timeline", self.timeline_table());
        out
    }

    fn probes_table(&self) -> Table {
        let mut t = table(&["probe", "attached", "how", "why not"]);
        for p in &self.probes {
            t.add_row(vec![
                p.name.clone(),
                if p.attached { "yes" } else { "no" }.into(),
                p.method.clone().unwrap_or_else(|| "-".into()),
                p.reason.clone().unwrap_or_default(),
            ]);
        }
        t
    }

    fn nodes_table(&self) -> Table {
        let mut t = table(&[
            "node",
            "hot-adds",
            "onlines",
            "offlines",
            "removes",
            "failed",
            "online p50",
            "offline p50",
        ]);
        for n in &self.nodes {
            t.add_row(right(vec![
                n.node.to_string(),
                n.hot_adds.to_string(),
                n.onlines.to_string(),
                n.offlines.to_string(),
                n.removes.to_string(),
                n.failed.to_string(),
                fmt_opt_ns(&n.online),
                fmt_opt_ns(&n.offline),
            ]));
        }
        t
    }

    fn memmap_table(&self) -> Table {
        let mut t = table(&["node", "count", "p50", "p99", "max", "total", "pages", "pages/s"]);
        for n in self.nodes.iter().filter(|n| n.memmap_init.count > 0) {
            let m = &n.memmap_init;
            t.add_row(right(vec![
                n.node.to_string(),
                m.count.to_string(),
                fmt_ns(m.p50_ns),
                fmt_ns(m.p99_ns),
                fmt_ns(m.max_ns),
                fmt_ns(m.total_ns),
                m.pages.to_string(),
                format!("{:.0}", m.pages_per_sec),
            ]));
        }
        t
    }

    fn blocks_table(&self) -> (Table, usize) {
        let mut t = table(&[
            "block",
            "phys start",
            "node",
            "zone",
            "state",
            "on/off",
            "vmemmap",
            "pages",
            "bytes",
        ]);
        let mut untouched = 0;
        for b in &self.blocks {
            if !b.hot_added && b.onlined == 0 && b.offlined == 0 && b.vmemmap.placement == Placement::Unknown
            {
                untouched += 1;
                continue;
            }
            let placement = match b.vmemmap.placement {
                Placement::SelfHosted => "self-hosted (altmap)",
                Placement::ExistingMemory => "existing memory",
                Placement::Unknown => "unknown",
            };
            t.add_row(vec![
                format!("memory{}", b.id),
                format!("{:#x}", b.start),
                opt(b.node),
                b.zone.clone().unwrap_or_else(|| "-".into()),
                b.state.as_str().to_string(),
                format!("{}/{}", b.onlined, b.offlined),
                placement.to_string(),
                b.vmemmap.pages.to_string(),
                fmt_bytes(b.vmemmap.bytes),
            ]);
        }
        (t, untouched)
    }

    fn zones_table(&self) -> Table {
        let mut t = table(&[
            "node",
            "zone",
            "span (pfn)",
            "spanned",
            "present",
            "managed",
            "contiguous",
            "span changes",
            "contiguity changes",
        ]);
        for z in &self.zones {
            t.add_row(vec![
                z.node.to_string(),
                z.zone.clone(),
                fmt_span(Span {
                    start_pfn: z.start_pfn,
                    spanned_pages: z.spanned_pages,
                }),
                z.spanned_pages.to_string(),
                opt(z.present_pages),
                opt(z.managed_pages),
                z.contiguous
                    .map_or("?".into(), |c| if c { "yes" } else { "no" }.to_string()),
                z.span_changes.len().to_string(),
                z.contiguity_changes.len().to_string(),
            ]);
        }
        t
    }

    fn span_table(&self) -> Table {
        let mut t = table(&[
            "time",
            "node",
            "zone",
            "cause",
            "range (pfn)",
            "span before",
            "span after",
        ]);
        for z in &self.zones {
            for c in &z.span_changes {
                t.add_row(vec![
                    fmt_ts(c.ts_ns),
                    z.node.to_string(),
                    z.zone.clone(),
                    c.cause.clone(),
                    format!("{:#x}+{:#x}", c.pfn, c.nr_pages),
                    fmt_span(c.before),
                    fmt_span(c.after),
                ]);
            }
        }
        t
    }

    fn contiguity_table(&self) -> Table {
        let mut t = table(&[
            "time",
            "node",
            "zone",
            "before",
            "after",
            "set_zone_contiguous took",
        ]);
        let yes_no = |b: bool| if b { "contiguous" } else { "NOT contiguous" };
        for z in &self.zones {
            for c in &z.contiguity_changes {
                t.add_row(vec![
                    fmt_ts(c.ts_ns),
                    z.node.to_string(),
                    z.zone.clone(),
                    c.before.map_or("unknown".into(), |b| yes_no(b).to_string()),
                    yes_no(c.after).to_string(),
                    fmt_ns(c.duration_ns),
                ]);
            }
        }
        t
    }

    fn timeline_table(&self) -> Table {
        let mut t = table(&[
            "time",
            "operation",
            "phys range",
            "node",
            "zone",
            "result",
            "took",
            "flags",
        ]);
        for o in &self.operations {
            t.add_row(vec![
                fmt_ts(o.ts_ns),
                format!("{:?}", o.kind).to_lowercase(),
                format!("{:#x}-{:#x} ({})", o.start, o.start + o.size, fmt_bytes(o.size)),
                opt(o.node),
                o.zone.clone().unwrap_or_else(|| "-".into()),
                if o.ret == 0 {
                    "ok".into()
                } else {
                    format!("error {}", o.ret)
                },
                fmt_ns(o.duration_ns),
                o.mhp_flags.map(mhp::describe).unwrap_or_default(),
            ]);
        }
        t
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    t
}

fn right(cells: Vec<String>) -> Vec<Cell> {
    cells
        .into_iter()
        .map(|c| Cell::new(c).set_alignment(CellAlignment::Right))
        .collect()
}

fn section(out: &mut String, title: &str, t: Table) {
    let _ = writeln!(out, "\n{title}");
    if t.row_count() == 0 {
        let _ = writeln!(out, "  (none)");
    } else {
        let _ = writeln!(out, "{t}");
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn fmt_opt_ns(s: &DurationSummary) -> String {
    if s.count == 0 {
        "-".into()
    } else {
        fmt_ns(s.p50_ns)
    }
}

fn fmt_span(s: Span) -> String {
    if s.spanned_pages == 0 {
        "empty".into()
    } else {
        format!("{:#x}-{:#x}", s.start_pfn, s.end_pfn())
    }
}

/// Event time (CLOCK_MONOTONIC) as seconds since boot.
fn fmt_ts(ns: u64) -> String {
    format!("{:.6}", ns as f64 / 1e9)
}

pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

pub fn fmt_bytes(b: u64) -> String {
    const MIB: u64 = 1 << 20;
    if b >= MIB && b.is_multiple_of(MIB) {
        format!("{} MiB", b / MIB)
    } else if b >= 1024 && b.is_multiple_of(1024) {
        format!("{} KiB", b / 1024)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(fmt_ns(950), "950 ns");
        assert_eq!(fmt_ns(12_345), "12.3 us");
        assert_eq!(fmt_ns(5_789_000), "5.79 ms");
        assert_eq!(fmt_ns(12_345_678), "12.35 ms");
        assert_eq!(fmt_ns(12_345_678_901), "12.35 s");
        assert_eq!(fmt_bytes(2 << 20), "2 MiB");
        assert_eq!(fmt_bytes(4096), "4 KiB");
        assert_eq!(fmt_bytes(100), "100 B");
    }
}
