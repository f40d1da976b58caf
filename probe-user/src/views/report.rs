//! The report: one document built from the model, printed as tables or as JSON.
//! A view: it reads the model and never touches the kernel.
use std::fmt::Write as _;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, ContentArrangement, Table};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    errno::errno_name,
    kernel::probes::ProbeStatus,
    model::event::{mhp, pgmap_type_name, Span, ZoneId},
    model::{
        Block, BlockState, Burst, Check, ContiguityChange, DurationSummary, Finding, HotAdd, MemmapAllocs,
        Model, OpKind, Operation, Placement, SpanChange,
    },
    views::answers::{Answers, Thresholds},
};

mod answers;
mod reporting;

/// Inits closer together than this belong to one burst.
pub const BURST_GAP_NS: u64 = 100_000_000;

/// Bumped on any incompatible change of the JSON document.
pub const SCHEMA_VERSION: u32 = 2;

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

/// The report, as `report --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Document {
    /// The document format: bumped on any incompatible change.
    pub schema_version: u32,
    /// "live" or the recording's path.
    pub origin: String,
    pub kernel_release: String,
    /// How long tracing ran.
    pub duration_ns: u64,
    /// Memory block size, bytes.
    pub block_size_bytes: u64,
    /// Bytes.
    pub page_size: u64,
    /// `sizeof(struct page)`, bytes.
    pub struct_page_size: u64,
    /// Events seen.
    pub events: u64,
    /// Events the kernel could not put in the full ring buffer: when not 0, counts are incomplete.
    pub lost_events: u64,
    /// Records that arrived but could not be decoded.
    pub undecodable_events: u64,
    /// Set when the recording ends without its summary (the recorder was killed, the disk
    /// filled): where it ends; everything before is in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    pub probes: Vec<ProbeStatus>,
    pub hot_adds: Vec<HotAddDoc>,
    pub removes: Vec<RemoveDoc>,
    pub nodes: Vec<NodeDoc>,
    /// Memory blocks, from the start-up frame and the events, as ranges of consecutive blocks
    /// alike in everything a range says (as `lsmem` groups them).
    pub blocks: Vec<BlockDoc>,
    pub zones: Vec<ZoneDoc>,
    /// Hot-adds, onlines, offlines and hot-removes in the order seen: the timeline (the latest
    /// `--keep`).
    pub operations: Vec<Operation>,
    /// Operations before those, not kept.
    pub operations_left_out: u64,
    /// Span-check findings before those listed, not kept.
    pub span_findings_left_out: u64,
    /// Each `__add_pages` call: where its memmap came from.
    pub memmap_placements: Vec<PlacementDoc>,
    pub span_findings: Vec<FindingDoc>,
    /// Memmap-init parallelism per burst, hotplugged RAM and ZONE_DEVICE.
    pub ram_init_bursts: Vec<Burst>,
    pub device_init_bursts: Vec<Burst>,
    /// ZONE_DEVICE ranges (memremap_pages).
    pub device_ranges: Vec<DeviceDoc>,
    /// mhpscope's own cost in the kernel, per probe with programs of its own (BPF run-time
    /// statistics; empty when they were unavailable).
    #[serde(default)]
    pub probe_costs: Vec<ProbeCostDoc>,
    /// Why onlines and offlines failed, readiness of added memory, memmap headroom, zone
    /// decisions and the configuration audit.
    pub answers: Answers,
    /// Free page reporting (None when nothing of it was seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting: Option<crate::model::reporting::ReportingDoc>,
}

/// One probe's eBPF programs: how often they ran and how long they took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeCostDoc {
    pub probe: String,
    /// Program runs (entry and exit programs count separately).
    pub runs: u64,
    /// Total time in the programs, ns.
    pub run_time_ns: u64,
    /// run_time_ns / runs.
    pub avg_ns: u64,
}

/// One `__add_pages` call and where its memmap came from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlacementDoc {
    pub ts_ns: u64,
    pub node: i32,
    /// Physical range, bytes.
    pub start: u64,
    pub size: u64,
    /// Memory blocks of the range.
    pub blocks: Vec<u64>,
    /// The memmap lives in the range itself (vmem_altmap).
    pub self_hosted: bool,
    /// Pages of the range holding its own memmap.
    pub altmap_pages: Option<u64>,
    /// Measured allocations from existing memory (None: not traced).
    pub allocated: Option<AllocDoc>,
    /// Nodes other than `node` that supplied memory for it.
    pub off_node: Vec<i32>,
    pub ret: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AllocDoc {
    /// huge_bytes + small_bytes.
    pub total_bytes: u64,
    /// 2 MiB vmemmap blocks (order >= 9).
    pub huge_bytes: u64,
    /// Page tables, section metadata, base-page vmemmap.
    pub small_bytes: u64,
    /// By the node the memory is on; node -1 when not known.
    pub by_node: Vec<NodeBytes>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeBytes {
    pub node: i32,
    pub bytes: u64,
}

/// A span check finding, with its zones' names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FindingDoc {
    #[serde(flatten)]
    pub finding: FindingFields,
    /// Name of `zone`.
    pub zone_name: String,
    /// Name of `other_zone`.
    pub other_zone_name: Option<String>,
}

/// A zone span check that found something, at a span change (the model's `Finding`, its
/// message written out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Finding")]
pub struct FindingFields {
    pub ts_ns: u64,
    pub zone: ZoneId,
    pub check: Check,
    /// Kernel function of the event, e.g. "remove_pfn_range_from_zone".
    pub cause: String,
    /// The event's pfn range.
    pub event_pfn: u64,
    pub event_nr_pages: u64,
    /// The zone's span before and after the event.
    pub before: Span,
    pub after: Span,
    /// The pfns involved, half-open [start, end).
    pub pfns: (u64, u64),
    /// The other zone, for `Overlap`.
    pub other_zone: Option<ZoneId>,
    /// One plain sentence for humans.
    pub message: String,
}

impl From<&Finding> for FindingFields {
    fn from(f: &Finding) -> FindingFields {
        FindingFields {
            ts_ns: f.ts_ns,
            zone: f.zone,
            check: f.check,
            cause: f.cause.into(),
            event_pfn: f.event_pfn,
            event_nr_pages: f.event_nr_pages,
            before: f.before,
            after: f.after,
            pfns: f.pfns,
            other_zone: f.other_zone,
            message: f.message(),
        }
    }
}

/// A ZONE_DEVICE range (memremap_pages) and its memmap initialisation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeviceDoc {
    pub ts_ns: u64,
    pub node: i32,
    /// Physical range, half-open, bytes.
    pub start: u64,
    pub end: u64,
    /// `enum memory_type`: private, coherent, fs_dax, generic, pci_p2pdma or unknown.
    pub pgmap_type: String,
    /// The memmap lives on the device (PGMAP_ALTMAP_VALID).
    pub altmap: bool,
    /// 0 or a negative errno.
    pub ret: i32,
    /// Time spent in memremap_pages.
    pub memremap_ns: u64,
    /// Its memmap_init_zone_device calls.
    pub inits: Vec<DeviceInitDoc>,
    /// When memunmap_pages tore it down; null if not seen.
    pub removed_ns: Option<u64>,
}

/// One memmap_init_zone_device call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeviceInitDoc {
    pub node: i32,
    /// Zone name.
    pub zone: String,
    pub pfn: u64,
    pub nr_pages: u64,
    pub duration_ns: u64,
}

/// One add_memory_resource call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HotAddDoc {
    pub ts_ns: u64,
    /// Physical range, bytes.
    pub start: u64,
    pub size: u64,
    /// None when not known.
    pub node: Option<i32>,
    /// `MHP_*` flags: 1 MERGE_RESOURCE, 2 MEMMAP_ON_MEMORY, 4 NID_IS_MGID, 8 OFFLINE_INACCESSIBLE.
    pub mhp_flags: u32,
    /// 0 or a negative errno.
    pub ret: i32,
    pub duration_ns: u64,
}

/// One try_remove_memory call.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RemoveDoc {
    pub ts_ns: u64,
    /// Physical range, bytes.
    pub start: u64,
    pub size: u64,
    /// None when not known.
    pub node: Option<i32>,
    /// 0 or a negative errno.
    pub ret: i32,
    pub duration_ns: u64,
}

/// Per-node counts and timings of what was traced.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeDoc {
    pub node: i32,
    pub hot_adds: u64,
    /// Successful online_pages / offline_pages calls.
    pub onlines: u64,
    pub offlines: u64,
    pub removes: u64,
    /// Operations that returned an error.
    pub failed: u64,
    /// Memmap initialisation of hotplugged RAM.
    pub memmap_init: DurationSummary,
    /// Memmap initialisation of ZONE_DEVICE memory.
    pub device_init: DurationSummary,
    /// Timings of the successful online_pages / offline_pages calls.
    pub online: DurationSummary,
    pub offline: DurationSummary,
}

/// Consecutive memory blocks (sysfs memoryN), alike in all below; figures are per block.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BlockDoc {
    /// The N of the first memoryN.
    pub first: u64,
    /// Blocks in the range: memory`first` to memory`first + count - 1`.
    pub count: u64,
    /// Physical address of the first block, bytes.
    pub start: u64,
    /// Bytes of the range.
    pub size: u64,
    pub node: Option<i32>,
    /// Zone it was last onlined to.
    pub zone: Option<String>,
    pub state: BlockState,
    /// Hot-added while tracing.
    pub hot_added: bool,
    /// Times onlined and offlined while tracing.
    pub onlined: u32,
    pub offlined: u32,
    pub vmemmap: VmemmapDoc,
}

/// A block's memmap (its `struct page` array).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct VmemmapDoc {
    pub placement: Placement,
    /// Self-hosted: altmap pages; otherwise the computed memmap size.
    pub pages: u64,
    /// pages * page_size.
    pub bytes: u64,
    /// The block's share of its hot-add's measured allocations from existing memory.
    pub allocated: Option<AllocDoc>,
    /// Nodes other than the block's own that supplied them.
    pub off_node: Vec<i32>,
}

/// A zone at the end of tracing, and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ZoneDoc {
    pub node: i32,
    /// Zone name.
    pub zone: String,
    /// The span.
    pub start_pfn: u64,
    pub spanned_pages: u64,
    /// From /proc/zoneinfo, the last frame read; null when not known.
    pub present_pages: Option<u64>,
    pub managed_pages: Option<u64>,
    /// `zone->contiguous`, when known.
    pub contiguous: Option<bool>,
    /// set_zone_contiguous calls.
    pub contiguity_checks: DurationSummary,
    /// The latest span and contiguity changes (`--keep`).
    pub span_changes: Vec<SpanChange>,
    pub contiguity_changes: Vec<ContiguityChange>,
    /// All span and contiguity changes while traced, kept or not.
    pub span_change_count: u64,
    pub contiguity_change_count: u64,
    /// Slow-path `__pageblock_pfn_to_page` calls while tracing; null when they were not
    /// counted (the probe is off unless `--with pageblock_pfn_to_page`).
    pub slowpath_calls: Option<u64>,
    /// Calls per second over the last sample interval.
    pub slowpath_rate: f64,
    /// Calls per second at peak.
    pub slowpath_peak_rate: f64,
}

fn alloc_doc(a: &MemmapAllocs) -> AllocDoc {
    AllocDoc {
        total_bytes: a.total(),
        huge_bytes: a.huge_bytes,
        small_bytes: a.small_bytes,
        by_node: a
            .by_node
            .iter()
            .map(|(&node, &bytes)| NodeBytes { node, bytes })
            .collect(),
    }
}

/// The model's blocks as ranges of alike neighbours: one entry per range, not per block, so
/// that a host with a million blocks makes a document of a few.
fn block_ranges(model: &Model) -> Vec<BlockDoc> {
    let l = &model.layout;
    let alike = |a: &Block, b: &Block| {
        a.id + 1 == b.id
            && (a.node, a.zone, a.state, a.hot_added, a.onlined, a.offlined)
                == (b.node, b.zone, b.state, b.hot_added, b.onlined, b.offlined)
            && (a.placement, a.vmemmap_pages, a.hot_add) == (b.placement, b.vmemmap_pages, b.hot_add)
    };
    let mut out: Vec<BlockDoc> = Vec::new();
    let mut last: Option<&Block> = None;
    for b in model.blocks.iter() {
        if let (Some(prev), Some(doc)) = (last, out.last_mut()) {
            if alike(prev, b) {
                doc.count += 1;
                doc.size += l.block_size_bytes;
                last = Some(b);
                continue;
            }
        }
        let allocs = model.block_allocs(b);
        out.push(BlockDoc {
            first: b.id,
            count: 1,
            start: b.id * l.block_size_bytes,
            size: l.block_size_bytes,
            node: b.node,
            zone: b.zone.map(|z| l.zone_name(z)),
            state: b.state,
            hot_added: b.hot_added,
            onlined: b.onlined,
            offlined: b.offlined,
            vmemmap: VmemmapDoc {
                placement: b.placement,
                pages: b.vmemmap_pages,
                bytes: b.vmemmap_pages * l.page_size,
                off_node: match (&allocs, b.node) {
                    (Some(a), Some(n)) => a.off_node(n),
                    _ => Vec::new(),
                },
                allocated: allocs.as_ref().map(alloc_doc),
            },
        });
        last = Some(b);
    }
    out
}

impl BlockDoc {
    /// `memoryN`, or `memoryN-M` for a range.
    pub fn name(&self) -> String {
        match self.count {
            0 | 1 => format!("memory{}", self.first),
            n => format!("memory{}-{}", self.first, self.first + n - 1),
        }
    }

    /// The block ids of the range.
    pub fn ids(&self) -> std::ops::Range<u64> {
        self.first..self.first + self.count
    }
}

fn placement_doc(model: &Model, h: &HotAdd) -> PlacementDoc {
    let l = &model.layout;
    PlacementDoc {
        ts_ns: h.ts_ns,
        node: h.node,
        start: h.pfn * l.page_size,
        size: h.nr_pages * l.page_size,
        blocks: l.blocks_of_pfns(h.pfn, h.nr_pages).collect(),
        self_hosted: h.self_hosted,
        altmap_pages: h.altmap_pages,
        allocated: h.allocs.as_ref().map(alloc_doc),
        off_node: h.allocs.as_ref().map(|a| a.off_node(h.node)).unwrap_or_default(),
        ret: h.ret,
    }
}

impl Document {
    /// The document of everything a stream has seen so far; None before its header.
    pub fn of_stream(stream: &crate::recording::stream::Stream, thresholds: Thresholds) -> Option<Document> {
        let (header, model) = (stream.header.as_ref()?, stream.model.as_ref()?);
        let mut doc = Document::build(
            model,
            Source {
                kernel_release: header.host.kernel_release.clone(),
                probes: header.probes.clone(),
                duration_ns: stream.duration_ns(),
                undecodable_events: stream.summary.as_ref().map_or(0, |s| s.undecodable_events),
                origin: stream.origin.clone(),
            },
            thresholds,
        );
        doc.truncated = stream.truncated.clone();
        Some(doc)
    }

    pub fn build(model: &Model, source: Source, thresholds: Thresholds) -> Document {
        let l = &model.layout;
        let (ram_init_bursts, device_init_bursts) = model.init_bursts(BURST_GAP_NS);
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
            truncated: None,
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
                    device_init: s.device_init.summary(),
                    online: s.online.summary(),
                    offline: s.offline.summary(),
                })
                .collect(),
            blocks: block_ranges(model),
            zones: model
                .zones
                .iter()
                .map(|(id, z)| {
                    let (slowpath_rate, slowpath_peak_rate) = z.slowpath_rates();
                    ZoneDoc {
                        node: id.node,
                        zone: l.zone_name(id.zone),
                        start_pfn: z.span.start_pfn,
                        spanned_pages: z.span.spanned_pages,
                        present_pages: z.present,
                        managed_pages: z.managed,
                        contiguous: z.contiguous,
                        contiguity_checks: z.contiguity_checks.summary(),
                        span_changes: z.span_changes.iter().cloned().collect(),
                        contiguity_changes: z.contiguity_changes.iter().cloned().collect(),
                        span_change_count: z.span_changes.seen(),
                        contiguity_change_count: z.contiguity_changes.seen(),
                        slowpath_calls: model.slowpath_counted.then(|| z.slowpath_calls()),
                        slowpath_rate,
                        slowpath_peak_rate,
                    }
                })
                .collect(),
            operations: model.operations.iter().cloned().collect(),
            operations_left_out: model.operations.left_out(),
            span_findings_left_out: model.findings.left_out(),
            memmap_placements: model.hot_adds.iter().map(|h| placement_doc(model, h)).collect(),
            span_findings: model
                .findings
                .iter()
                .map(|f| FindingDoc {
                    finding: f.into(),
                    zone_name: l.zone_name(f.zone.zone),
                    other_zone_name: f.other_zone.map(|z: ZoneId| l.zone_name(z.zone)),
                })
                .collect(),
            ram_init_bursts,
            device_init_bursts,
            probe_costs: model
                .probe_costs
                .iter()
                .map(|(probe, c)| ProbeCostDoc {
                    probe: probe.clone(),
                    runs: c.runs,
                    run_time_ns: c.run_time_ns,
                    avg_ns: c.avg_ns(),
                })
                .collect(),
            device_ranges: model
                .devices
                .iter()
                .map(|d| DeviceDoc {
                    ts_ns: d.ts_ns,
                    node: d.node,
                    start: d.start,
                    end: d.end,
                    pgmap_type: pgmap_type_name(d.pgmap_type).into(),
                    altmap: d.altmap,
                    ret: d.ret,
                    memremap_ns: d.duration_ns,
                    inits: d
                        .inits
                        .iter()
                        .map(|&(zone, pfn, nr_pages, duration_ns)| DeviceInitDoc {
                            node: zone.node,
                            zone: l.zone_name(zone.zone),
                            pfn,
                            nr_pages,
                            duration_ns,
                        })
                        .collect(),
                    removed_ns: d.removed_ns,
                })
                .collect(),
            answers: Answers::build(
                model,
                &model.config,
                Thresholds {
                    now_ns: thresholds.now_ns.max(model.last_ts_ns()),
                    ..thresholds
                },
            ),
            reporting: model.reporting.seen().then(|| model.reporting_doc()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    /// The tables as wide as they come (for files and pipes).
    pub fn to_text(&self) -> String {
        self.to_text_width(None)
    }

    /// The tables wrapped to fit `width` columns (a terminal's), or as wide as they come.
    pub fn to_text_width(&self, width: Option<u16>) -> String {
        let mut out = Out {
            text: String::new(),
            width,
        };
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
        if let Some(why) = &self.truncated {
            let _ = writeln!(out, "WARNING: {why}");
        }
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
        answers::write_answers(&mut out, &self.answers);
        section(&mut out, "Probes", self.probes_table());
        section(&mut out, "Nodes", self.nodes_table());
        let init_fn = self
            .probes
            .iter()
            .find(|p| p.name == crate::kernel::probes::MEMMAP_INIT_RANGE && p.attached)
            .map_or("not traced", |p| p.function.as_str());
        section(
            &mut out,
            &format!("Memmap initialisation per node: hotplugged RAM ({init_fn})"),
            self.memmap_table(|n| &n.memmap_init),
        );
        if self.nodes.iter().any(|n| n.device_init.count > 0) {
            let dev_fn = self
                .probes
                .iter()
                .find(|p| p.name == crate::kernel::probes::MEMMAP_INIT_ZONE_DEVICE && p.attached)
                .map_or("not traced", |p| p.function.as_str());
            section(
                &mut out,
                &format!("Memmap initialisation per node: ZONE_DEVICE ({dev_fn})"),
                self.memmap_table(|n| &n.device_init),
            );
        }
        section(
            &mut out,
            "Memmap init parallelism per burst (concurrency = sum of init times / wall time)",
            self.bursts_table(),
        );
        section(
            &mut out,
            "Memmap placement per hot-add (__add_pages; bytes taken from memory that existed before)",
            self.placement_table(),
        );
        if !self.device_ranges.is_empty() {
            section(
                &mut out,
                "ZONE_DEVICE ranges (memremap_pages)",
                self.devices_table(),
            );
        }
        let (blocks, untouched) = self.blocks_table();
        let title = if untouched > 0 {
            format!("Memory blocks touched while tracing ({untouched} others unchanged)")
        } else {
            "Memory blocks touched while tracing".to_string()
        };
        section(&mut out, &title, blocks);
        section(&mut out, "Zones", self.zones_table());
        section(&mut out, "Zone span changes", self.span_table());
        section(
            &mut out,
            &with_left_out("Zone span check findings", self.span_findings_left_out),
            self.findings_table(),
        );
        section(&mut out, "Contiguity transitions", self.contiguity_table());
        answers::write_details(&mut out, &self.answers, self.page_size);
        if let Some(r) = &self.reporting {
            reporting::write_reporting(&mut out, r);
        }
        section(
            &mut out,
            &with_left_out("Timeline", self.operations_left_out),
            self.timeline_table(),
        );
        out.text
    }

    fn probes_table(&self) -> Table {
        let mut t = table(&["probe", "attached", "how", "runs", "avg", "loses / why not"]);
        for p in &self.probes {
            let cost = self.probe_costs.iter().find(|c| c.probe == p.name);
            let note = match (&p.loses, &p.reason) {
                (Some(l), _) => format!("loses: {l}"),
                (None, Some(r)) => r.clone(),
                _ => String::new(),
            };
            t.add_row(vec![
                p.name.clone(),
                if p.attached { "yes" } else { "no" }.into(),
                p.how().unwrap_or_else(|| "-".into()),
                cost.map_or("-".into(), |c| c.runs.to_string()),
                cost.map_or("-".into(), |c| fmt_ns(c.avg_ns)),
                note,
            ]);
        }
        t
    }

    fn bursts_table(&self) -> Table {
        let mut t = table(&[
            "kind",
            "start",
            "inits",
            "nodes",
            "sum of inits",
            "wall",
            "concurrency",
            "max at once",
        ]);
        let rows = self
            .ram_init_bursts
            .iter()
            .map(|b| ("RAM", b))
            .chain(self.device_init_bursts.iter().map(|b| ("ZONE_DEVICE", b)));
        for (kind, b) in rows {
            t.add_row(vec![
                kind.to_string(),
                fmt_ts(b.start_ns),
                b.inits.to_string(),
                b.nodes
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                fmt_ns(b.busy_ns),
                fmt_ns(b.wall_ns),
                format!("{:.2}", b.concurrency),
                b.max_overlap.to_string(),
            ]);
        }
        t
    }

    fn placement_table(&self) -> Table {
        let mut t = table(&[
            "time",
            "node",
            "phys range",
            "blocks",
            "memmap",
            "from existing memory",
            "by node",
        ]);
        for p in &self.memmap_placements {
            let memmap = if p.self_hosted {
                match p.altmap_pages {
                    Some(n) => format!("self-hosted ({n} pages)"),
                    None => "self-hosted".into(),
                }
            } else {
                "existing memory".into()
            };
            let (total, by_node) = match &p.allocated {
                None => ("not traced".to_string(), String::new()),
                Some(a) => (
                    format!(
                        "{} ({} vmemmap + {} other)",
                        fmt_bytes(a.total_bytes),
                        fmt_bytes(a.huge_bytes),
                        fmt_bytes(a.small_bytes)
                    ),
                    a.by_node
                        .iter()
                        .map(|nb| {
                            let name = if nb.node < 0 {
                                "node ?".to_string()
                            } else {
                                format!("node {}", nb.node)
                            };
                            let off = if nb.node >= 0 && nb.node != p.node {
                                " OFF-NODE"
                            } else {
                                ""
                            };
                            format!("{name}: {}{off}", fmt_bytes(nb.bytes))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            };
            t.add_row(vec![
                fmt_ts(p.ts_ns),
                p.node.to_string(),
                format!("{:#x}-{:#x}", p.start, p.start + p.size),
                p.blocks
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                memmap,
                if p.ret == 0 {
                    total
                } else {
                    format!("failed ({})", errno_name(p.ret))
                },
                by_node,
            ]);
        }
        t
    }

    fn devices_table(&self) -> Table {
        let mut t = table(&[
            "time",
            "node",
            "phys range",
            "type",
            "memmap",
            "memremap took",
            "memmap init (zone, pages, took)",
            "removed",
        ]);
        for d in &self.device_ranges {
            let inits = d
                .inits
                .iter()
                .map(|i| format!("{} {}, {}, {}", i.node, i.zone, i.nr_pages, fmt_ns(i.duration_ns)))
                .collect::<Vec<_>>()
                .join("; ");
            t.add_row(vec![
                fmt_ts(d.ts_ns),
                d.node.to_string(),
                format!("{:#x}-{:#x} ({})", d.start, d.end, fmt_bytes(d.end - d.start)),
                d.pgmap_type.clone(),
                if d.altmap {
                    "on the device (altmap)"
                } else {
                    "in RAM"
                }
                .into(),
                if d.ret == 0 {
                    fmt_ns(d.memremap_ns)
                } else {
                    format!("failed ({})", errno_name(d.ret))
                },
                inits,
                d.removed_ns.map_or("-".into(), fmt_ts),
            ]);
        }
        t
    }

    fn findings_table(&self) -> Table {
        let mut t = table(&["time", "node", "zone", "check", "event", "pfns", "meaning"]);
        for f in &self.span_findings {
            let x = &f.finding;
            let meaning = match x.check {
                Check::OutsideSpan => "pages assigned to the zone lie outside its span".to_string(),
                Check::Overlap => format!(
                    "span overlaps zone {}",
                    f.other_zone_name.as_deref().unwrap_or("?")
                ),
                Check::UnalignedShrink => "shrink ends off a 2 MiB subsection boundary".to_string(),
                Check::BecameEmpty => "the zone became empty".to_string(),
            };
            t.add_row(vec![
                fmt_ts(x.ts_ns),
                x.zone.node.to_string(),
                f.zone_name.clone(),
                format!("{:?}", x.check),
                format!("{}({:#x}+{:#x})", x.cause, x.event_pfn, x.event_nr_pages),
                format!("{:#x}-{:#x}", x.pfns.0, x.pfns.1),
                meaning,
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

    fn memmap_table(&self, which: impl Fn(&NodeDoc) -> &DurationSummary) -> Table {
        let mut t = table(&["node", "count", "p50", "p99", "max", "total", "pages", "pages/s"]);
        for n in self.nodes.iter().filter(|n| which(n).count > 0) {
            let m = which(n);
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
                untouched += b.count as usize;
                continue;
            }
            let placement = match (&b.vmemmap.placement, &b.vmemmap.allocated) {
                (Placement::SelfHosted, _) => "self-hosted (altmap)".to_string(),
                (Placement::ExistingMemory, Some(a)) => {
                    let nodes: Vec<String> = a
                        .by_node
                        .iter()
                        .filter(|nb| nb.bytes > 0)
                        .map(|nb| {
                            let off = if b.vmemmap.off_node.contains(&nb.node) {
                                " OFF-NODE"
                            } else {
                                ""
                            };
                            format!("node {} {}{off}", nb.node, fmt_bytes(nb.bytes))
                        })
                        .collect();
                    format!("existing memory: {}", nodes.join(", "))
                }
                (Placement::ExistingMemory, None) => "existing memory (computed)".to_string(),
                (Placement::Unknown, _) => "unknown".to_string(),
            };
            t.add_row(vec![
                b.name(),
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
            "slow-path calls (last/peak per s)",
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
                z.span_change_count.to_string(),
                z.contiguity_change_count.to_string(),
                match z.slowpath_calls {
                    None => "not counted".into(),
                    Some(0) => "0".into(),
                    Some(calls) => format!("{calls} ({:.0}/{:.0})", z.slowpath_rate, z.slowpath_peak_rate),
                },
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
                    c.cause.to_string(),
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
                o.zone.as_deref().unwrap_or("-").to_string(),
                if o.ret == 0 {
                    "ok".into()
                } else {
                    format!("failed {}", errno_name(o.ret))
                },
                fmt_ns(o.duration_ns),
                o.mhp_flags.map(mhp::describe).unwrap_or_default(),
            ]);
        }
        t
    }
}

pub(crate) fn table(header: &[&str]) -> Table {
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

/// A table title, saying how many older rows `--keep` left out.
pub(crate) fn with_left_out(title: &str, left_out: u64) -> String {
    if left_out == 0 {
        title.to_string()
    } else {
        format!("{title} (the latest only: {left_out} older left out; --keep keeps more)")
    }
}

/// The report's text and the width its tables must fit.
pub(crate) struct Out {
    pub text: String,
    pub width: Option<u16>,
}

impl std::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.text.push_str(s);
        Ok(())
    }
}

pub(crate) fn section(out: &mut Out, title: &str, mut t: Table) {
    if let Some(w) = out.width {
        // Cells wrap so that the table fits: the widest columns give way first.
        t.set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(w);
    }
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
pub(crate) fn fmt_ts(ns: u64) -> String {
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
