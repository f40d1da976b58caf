//! The model: what mhpscope knows about memory hotplug on one kernel, built from the static
//! frame and the traced events. Pure and deterministic: no I/O, no printing.
mod stats;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
pub use stats::{percentile, DurationSummary, Durations};

use crate::{
    event::{Event, Op, Span, ZoneId},
    frame::Frame,
};

/// Kernel facts needed to interpret events: zone names, page and block sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub zone_names: Vec<String>,
    pub page_size: u64,
    pub struct_page_size: u64,
    pub block_size_bytes: u64,
}

impl Layout {
    pub fn zone_name(&self, idx: u8) -> String {
        self.zone_names
            .get(idx as usize)
            .cloned()
            .unwrap_or_else(|| format!("zone{idx}"))
    }

    pub fn zone_index(&self, name: &str) -> Option<u8> {
        self.zone_names.iter().position(|n| n == name).map(|i| i as u8)
    }

    fn pages_per_block(&self) -> u64 {
        (self.block_size_bytes / self.page_size.max(1)).max(1)
    }

    /// Memory block holding `pfn`.
    pub fn block_of_pfn(&self, pfn: u64) -> u64 {
        pfn / self.pages_per_block()
    }

    /// Blocks overlapping the pfn range [pfn, pfn + nr_pages).
    pub fn blocks_of_pfns(&self, pfn: u64, nr_pages: u64) -> std::ops::RangeInclusive<u64> {
        self.block_of_pfn(pfn)..=self.block_of_pfn(pfn + nr_pages.max(1) - 1)
    }

    /// Blocks overlapping the physical range [start, start + size).
    pub fn blocks_of_range(&self, start: u64, size: u64) -> std::ops::RangeInclusive<u64> {
        let page = self.page_size.max(1);
        self.blocks_of_pfns(start / page, size.div_ceil(page))
    }

    /// Memmap pages needed for `nr_pages` pages (struct page array, in pages).
    pub fn memmap_pages_for(&self, nr_pages: u64) -> u64 {
        (nr_pages * self.struct_page_size).div_ceil(self.page_size.max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockState {
    Online,
    Offline,
    Removed,
    #[serde(untagged)]
    Other(String),
}

impl BlockState {
    fn from_sysfs(s: &str) -> BlockState {
        match s {
            "online" => BlockState::Online,
            "offline" => BlockState::Offline,
            other => BlockState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BlockState::Online => "online",
            BlockState::Offline => "offline",
            BlockState::Removed => "removed",
            BlockState::Other(s) => s,
        }
    }
}

/// Where a block's memmap (its `struct page` array) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// In the block itself (vmem_altmap, memmap_on_memory).
    SelfHosted,
    /// Allocated from memory that existed before the hot-add.
    ExistingMemory,
    /// Not seen being created (present before tracing began).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: u64,
    pub node: Option<i32>,
    /// Zone index it was last onlined to.
    pub zone: Option<u8>,
    pub state: BlockState,
    pub hot_added: bool,
    pub onlined: u32,
    pub offlined: u32,
    pub placement: Placement,
    pub vmemmap_pages: u64,
}

impl Block {
    fn new(id: u64) -> Block {
        Block {
            id,
            node: None,
            zone: None,
            state: BlockState::Other("unknown".into()),
            hot_added: false,
            onlined: 0,
            offlined: 0,
            placement: Placement::Unknown,
            vmemmap_pages: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    pub hot_adds: u64,
    pub removes: u64,
    pub failed: u64,
    pub memmap_init: Durations,
    pub online: Durations,
    pub offline: Durations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanChange {
    pub ts_ns: u64,
    /// Kernel function that changed the span.
    pub cause: String,
    pub pfn: u64,
    pub nr_pages: u64,
    pub before: Span,
    pub after: Span,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContiguityChange {
    pub ts_ns: u64,
    /// Last known value; None when this is the first one seen.
    pub before: Option<bool>,
    pub after: bool,
    pub duration_ns: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ZoneState {
    pub span: Span,
    pub present: Option<u64>,
    pub managed: Option<u64>,
    pub contiguous: Option<bool>,
    pub span_changes: Vec<SpanChange>,
    pub contiguity_changes: Vec<ContiguityChange>,
    /// set_zone_contiguous calls and time spent in them.
    pub contiguity_checks: Durations,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Add,
    Online,
    Offline,
    Remove,
}

/// One user-visible hotplug operation, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub ts_ns: u64,
    pub kind: OpKind,
    /// Physical address range.
    pub start: u64,
    pub size: u64,
    pub node: Option<i32>,
    pub zone: Option<String>,
    pub ret: i32,
    pub duration_ns: u64,
    /// add_memory_resource's MHP flags (adds only).
    pub mhp_flags: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub layout: Layout,
    pub blocks: BTreeMap<u64, Block>,
    pub nodes: BTreeMap<i32, NodeStats>,
    pub zones: BTreeMap<ZoneId, ZoneState>,
    pub operations: Vec<Operation>,
    pub events: u64,
    pub lost_events: u64,
}

impl Model {
    pub fn new(layout: Layout) -> Model {
        Model {
            layout,
            blocks: BTreeMap::new(),
            nodes: BTreeMap::new(),
            zones: BTreeMap::new(),
            operations: Vec::new(),
            events: 0,
            lost_events: 0,
        }
    }

    /// Seeds blocks, nodes and zones from the static picture taken at start-up.
    pub fn apply_frame(&mut self, frame: &Frame) {
        for b in &frame.blocks {
            let state = BlockState::from_sysfs(&b.state);
            let zone = match state {
                BlockState::Online => b
                    .valid_zones
                    .as_deref()
                    .and_then(|z| self.layout.zone_index(z.trim())),
                _ => None,
            };
            let block = self.blocks.entry(b.id).or_insert_with(|| Block::new(b.id));
            block.node = b.node.or(block.node);
            block.state = state;
            block.zone = zone.or(block.zone);
        }
        for n in &frame.nodes {
            self.nodes.entry(n.node).or_default();
        }
        self.update_zone_figures(frame, true);
    }

    /// Present/managed pages from a later frame (the end of a recording); spans come from events.
    pub fn apply_final_frame(&mut self, frame: &Frame) {
        self.update_zone_figures(frame, false);
    }

    fn update_zone_figures(&mut self, frame: &Frame, with_span: bool) {
        for z in &frame.zones {
            let Some(idx) = self.layout.zone_index(&z.zone) else {
                continue;
            };
            let zone = self
                .zones
                .entry(ZoneId {
                    node: z.node,
                    zone: idx,
                })
                .or_default();
            zone.present = Some(z.present);
            zone.managed = Some(z.managed);
            if with_span {
                zone.span = Span {
                    start_pfn: z.start_pfn.unwrap_or(0),
                    spanned_pages: z.spanned,
                };
            }
        }
    }

    pub fn set_lost_events(&mut self, lost: u64) {
        self.lost_events = lost;
    }

    pub fn ingest(&mut self, ev: &Event) {
        self.events += 1;
        match ev.op {
            Op::AddMemoryResource {
                start,
                size,
                mhp_flags,
                ret,
                ..
            } => {
                let node = self.node_of_range(start, size);
                if ret == 0 {
                    if let Some(n) = node {
                        self.nodes.entry(n).or_default().hot_adds += 1;
                    }
                } else {
                    // The kernel rolled back whatever arch_add_memory had added.
                    self.set_state_in_range(start, size, BlockState::Removed);
                    self.count_failure(node);
                }
                self.push_op(ev, OpKind::Add, start, size, node, None, ret, Some(mhp_flags));
            }
            Op::ArchAddMemory {
                node,
                start,
                size,
                altmap,
                ret,
            } => {
                if ret != 0 {
                    return;
                }
                let ids = self.layout.blocks_of_range(start, size);
                let n_blocks = ids.clone().count() as u64;
                let (placement, pages) = match altmap {
                    Some(a) => (Placement::SelfHosted, (a.alloc + a.align) / n_blocks.max(1)),
                    None => (
                        Placement::ExistingMemory,
                        self.layout.memmap_pages_for(self.layout.pages_per_block()),
                    ),
                };
                for id in ids {
                    // A hot-add creates the block afresh, whatever was known of that id before.
                    self.blocks.insert(
                        id,
                        Block {
                            node: Some(node),
                            state: BlockState::Offline,
                            hot_added: true,
                            placement,
                            vmemmap_pages: pages,
                            ..Block::new(id)
                        },
                    );
                }
            }
            Op::MhpInitMemmapOnMemory {
                pfn,
                nr_pages,
                zone,
                ret,
            } => {
                if ret == 0 {
                    let id = self.layout.block_of_pfn(pfn);
                    let b = self.blocks.entry(id).or_insert_with(|| Block::new(id));
                    b.placement = Placement::SelfHosted;
                    b.vmemmap_pages = nr_pages;
                    b.node = b.node.or(Some(zone.node));
                }
            }
            Op::OnlinePages {
                pfn,
                nr_pages,
                zone,
                ret,
            } => self.online_or_offline(ev, OpKind::Online, pfn, nr_pages, zone, ret),
            Op::OfflinePages {
                pfn,
                nr_pages,
                zone,
                ret,
            } => self.online_or_offline(ev, OpKind::Offline, pfn, nr_pages, zone, ret),
            Op::MovePfnRangeToZone {
                pfn,
                nr_pages,
                zone,
                before,
                after,
            } => {
                self.nodes
                    .entry(zone.node)
                    .or_default()
                    .memmap_init
                    .record(ev.duration_ns, nr_pages);
                self.span_change(ev, zone, pfn, nr_pages, before, after);
            }
            Op::RemovePfnRangeFromZone {
                pfn,
                nr_pages,
                zone,
                before,
                after,
            } => self.span_change(ev, zone, pfn, nr_pages, before, after),
            Op::SetZoneContiguous {
                zone,
                contiguous,
                span,
                ..
            } => {
                let z = self.zones.entry(zone).or_default();
                z.contiguity_checks.record(ev.duration_ns, 0);
                if z.contiguous != Some(contiguous) {
                    z.contiguity_changes.push(ContiguityChange {
                        ts_ns: ev.ts_ns,
                        before: z.contiguous,
                        after: contiguous,
                        duration_ns: ev.duration_ns,
                    });
                    z.contiguous = Some(contiguous);
                }
                z.span = span;
            }
            Op::TryRemoveMemory { start, size, ret } => {
                let node = self.node_of_range(start, size);
                if ret == 0 {
                    self.set_state_in_range(start, size, BlockState::Removed);
                    if let Some(n) = node {
                        self.nodes.entry(n).or_default().removes += 1;
                    }
                } else {
                    self.count_failure(node);
                }
                self.push_op(ev, OpKind::Remove, start, size, node, None, ret, None);
            }
        }
    }

    fn online_or_offline(
        &mut self,
        ev: &Event,
        kind: OpKind,
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    ) {
        let stats = self.nodes.entry(zone.node).or_default();
        if ret == 0 {
            let durations = if kind == OpKind::Online {
                &mut stats.online
            } else {
                &mut stats.offline
            };
            durations.record(ev.duration_ns, nr_pages);
            for id in self.layout.blocks_of_pfns(pfn, nr_pages) {
                let b = self.blocks.entry(id).or_insert_with(|| Block::new(id));
                b.node = b.node.or(Some(zone.node));
                if kind == OpKind::Online {
                    b.state = BlockState::Online;
                    b.zone = Some(zone.zone);
                    b.onlined += 1;
                } else {
                    b.state = BlockState::Offline;
                    b.offlined += 1;
                }
            }
        } else {
            stats.failed += 1;
        }
        let (start, size) = self.pfn_range_bytes(pfn, nr_pages);
        let name = self.layout.zone_name(zone.zone);
        self.push_op(ev, kind, start, size, Some(zone.node), Some(name), ret, None);
    }

    fn span_change(&mut self, ev: &Event, zone: ZoneId, pfn: u64, nr_pages: u64, before: Span, after: Span) {
        let z = self.zones.entry(zone).or_default();
        if before != after {
            z.span_changes.push(SpanChange {
                ts_ns: ev.ts_ns,
                cause: ev.op.function().to_string(),
                pfn,
                nr_pages,
                before,
                after,
            });
        }
        z.span = after;
    }

    fn pfn_range_bytes(&self, pfn: u64, nr_pages: u64) -> (u64, u64) {
        (pfn * self.layout.page_size, nr_pages * self.layout.page_size)
    }

    /// Node of the first known block in a physical range.
    fn node_of_range(&self, start: u64, size: u64) -> Option<i32> {
        self.layout
            .blocks_of_range(start, size)
            .find_map(|id| self.blocks.get(&id).and_then(|b| b.node))
    }

    fn set_state_in_range(&mut self, start: u64, size: u64, state: BlockState) {
        for id in self.layout.blocks_of_range(start, size) {
            if let Some(b) = self.blocks.get_mut(&id) {
                b.state = state.clone();
            }
        }
    }

    fn count_failure(&mut self, node: Option<i32>) {
        if let Some(n) = node {
            self.nodes.entry(n).or_default().failed += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_op(
        &mut self,
        ev: &Event,
        kind: OpKind,
        start: u64,
        size: u64,
        node: Option<i32>,
        zone: Option<String>,
        ret: i32,
        mhp_flags: Option<u32>,
    ) {
        self.operations.push(Operation {
            ts_ns: ev.ts_ns,
            kind,
            start,
            size,
            node,
            zone,
            ret,
            duration_ns: ev.duration_ns,
            mhp_flags,
        });
    }
}

#[cfg(test)]
mod tests;
