//! The model: what mhpscope knows about memory hotplug on one kernel, built from the static
//! frame and the traced events. Pure and deterministic: no I/O, no printing.
pub mod attempts;
mod blocks;
pub mod bursts;
mod dense_map;
pub mod event;
pub mod page_flags;
pub mod recent;
pub mod reporting;
pub mod span_checks;
mod stats;

use std::{borrow::Cow, collections::BTreeMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use stats::{percentile, DurationSummary, Durations};

use crate::{
    kernel::frame::{Frame, HotplugConfig},
    kernel::probes::{ProbeStatus, MEMMAP_INIT_RANGE, MEMMAP_INIT_ZONE_DEVICE},
    model::event::{AddMoment, Event, Op, Span, ZoneId},
};
pub use attempts::{Attempt, AttemptKind, Attempts, BlockCall, DumpedPage, FailReason, Step};
pub use blocks::Blocks;
pub use bursts::{Burst, Init};
pub use dense_map::DenseMap;
pub use page_flags::PageFlagsLayout;
pub use recent::{Recent, DEFAULT_KEEP};
pub use span_checks::{Check, Finding, SpanChecker};

/// Memmap of hotplugged RAM, or of ZONE_DEVICE memory.
#[derive(Clone, Copy)]
enum InitKind {
    Ram,
    Device,
}

/// enum meminit_context: MEMINIT_HOTPLUG.
const MEMINIT_HOTPLUG: u32 = 1;

/// Kernel facts needed to interpret events: zone names, page and block sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Layout {
    /// Zone names by index into `pgdat->node_zones` (the `zone` of a ZoneId).
    pub zone_names: Vec<String>,
    /// Bytes.
    pub page_size: u64,
    /// `sizeof(struct page)`, bytes.
    pub struct_page_size: u64,
    /// Memory block size, bytes.
    pub block_size_bytes: u64,
    /// How `page->flags` and `page->page_type` are laid out (None in recordings made before
    /// mhpscope read it, or where BTF lacked it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_flags: Option<PageFlagsLayout>,
    /// What the kernel was built with (unknown in recordings made before mhpscope read it).
    #[serde(default)]
    pub features: KernelFeatures,
}

/// Kernel build options that change what hotplug can do, from the kernel's BTF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KernelFeatures {
    /// CONFIG_ZONE_DEVICE: pmem/devdax/CXL ranges as ZONE_DEVICE memory.
    pub zone_device: Option<bool>,
    /// CONFIG_MEMORY_HOTREMOVE: memory can be offlined and removed again.
    pub hot_remove: Option<bool>,
    /// Zone contiguity kept in `zone->pages_with_online_memmap` (newer mm) rather than
    /// recomputed by `set_zone_contiguous` on every resize.
    pub contiguity_from_counter: Option<bool>,
}

impl Layout {
    pub fn zone_name(&self, idx: u8) -> String {
        self.zone_names
            .get(idx as usize)
            .cloned()
            .unwrap_or_else(|| format!("zone{idx}"))
    }

    /// The zone's name without allocating when it is one of the kernel's own (all of them in
    /// practice): operations carry it, and ingesting an event must not allocate.
    pub fn zone_label(&self, idx: u8) -> Cow<'static, str> {
        const KERNEL: [&str; 6] = ["DMA", "DMA32", "Normal", "HighMem", "Movable", "Device"];
        match self.zone_names.get(idx as usize) {
            Some(name) => KERNEL
                .iter()
                .find(|k| *k == name)
                .map_or_else(|| Cow::Owned(name.clone()), |k| Cow::Borrowed(*k)),
            None => Cow::Owned(format!("zone{idx}")),
        }
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

/// A memory block's state: sysfs's (online, offline, going-offline), removed by a hot-remove
/// while tracing, or unknown (sysfs said something else, or the block was never seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BlockState {
    Online,
    Offline,
    GoingOffline,
    Removed,
    Unknown,
}

impl BlockState {
    fn from_sysfs(s: &str) -> BlockState {
        match s {
            "online" => BlockState::Online,
            "offline" => BlockState::Offline,
            "going-offline" => BlockState::GoingOffline,
            _ => BlockState::Unknown,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            BlockState::Online => "online",
            BlockState::Offline => "offline",
            BlockState::GoingOffline => "going-offline",
            BlockState::Removed => "removed",
            BlockState::Unknown => "unknown",
        }
    }
}

/// Where a block's memmap (its `struct page` array) lives.
/// One probe's eBPF programs: runs and time spent in them so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeCost {
    pub runs: u64,
    pub run_time_ns: u64,
}

impl ProbeCost {
    /// Average ns per run; 0 before any run.
    pub fn avg_ns(&self) -> u64 {
        self.run_time_ns / self.runs.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// In the block itself (vmem_altmap, memmap_on_memory).
    SelfHosted,
    /// Allocated from memory that existed before the hot-add.
    ExistingMemory,
    /// Not seen being created (present before tracing began).
    Unknown,
}

/// Memory taken from existing memory for one hot-add's memmap (kmem:mm_page_alloc inside
/// `__add_pages`), by the node that memory is on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemmapAllocs {
    /// node -> bytes; node -1 when the page's node is not known.
    pub by_node: BTreeMap<i32, u64>,
    /// Allocations of order >= 9 (2 MiB vmemmap blocks) and smaller ones (page tables,
    /// section metadata, base-page vmemmap when no huge page was available).
    pub huge_bytes: u64,
    pub small_bytes: u64,
}

impl MemmapAllocs {
    pub fn total(&self) -> u64 {
        self.huge_bytes + self.small_bytes
    }

    /// Nodes other than `home` that supplied memory.
    pub fn off_node(&self, home: i32) -> Vec<i32> {
        self.by_node
            .keys()
            .copied()
            .filter(|&n| n != home && n >= 0)
            .collect()
    }
}

/// Pages per node.
type NodePages = BTreeMap<i32, u64>;

/// One `__add_pages` call: the sparse sections of a hot-add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotAdd {
    pub ts_ns: u64,
    pub node: i32,
    pub pfn: u64,
    pub nr_pages: u64,
    pub self_hosted: bool,
    /// Pages of the range holding its own memmap (altmap), when known.
    pub altmap_pages: Option<u64>,
    /// None when page allocations were not traced.
    pub allocs: Option<MemmapAllocs>,
    pub ret: i32,
    /// Free pages per node, read in the kernel as `__add_pages` began and as it ended.
    pub free_before: BTreeMap<i32, u64>,
    pub free_after: BTreeMap<i32, u64>,
    /// When each of its blocks (in order) was first onlined after the add.
    pub first_online_ns: Vec<Option<u64>>,
}

/// A ZONE_DEVICE range (memremap_pages) and its memmap initialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRange {
    pub ts_ns: u64,
    pub node: i32,
    /// Physical range, half-open.
    pub start: u64,
    pub end: u64,
    pub pgmap_type: u32,
    /// The memmap lives on the device (PGMAP_ALTMAP_VALID).
    pub altmap: bool,
    pub ret: i32,
    pub duration_ns: u64,
    /// memmap_init_zone_device calls for it: (zone, pfn, nr_pages, duration_ns).
    pub inits: Vec<(ZoneId, u64, u64, u64)>,
    pub removed_ns: Option<u64>,
}

/// One memory block: compact (a host may have a million), see `blocks`.
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
    /// Index in `Model::hot_adds` of the `__add_pages` call that created it.
    pub hot_add: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct NodeStats {
    pub hot_adds: u64,
    pub removes: u64,
    pub failed: u64,
    /// Memmap initialisation of hotplugged RAM.
    pub memmap_init: Durations,
    /// Memmap initialisation of ZONE_DEVICE memory.
    pub device_init: Durations,
    pub online: Durations,
    pub offline: Durations,
}

/// A change of a zone's span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SpanChange {
    pub ts_ns: u64,
    /// Kernel function that changed the span.
    pub cause: Cow<'static, str>,
    /// The pfn range the function was called for.
    pub pfn: u64,
    pub nr_pages: u64,
    pub before: Span,
    pub after: Span,
}

/// A `set_zone_contiguous` call that changed `zone->contiguous` (or gave its first known value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContiguityChange {
    pub ts_ns: u64,
    /// Last known value; None when this is the first one seen.
    pub before: Option<bool>,
    pub after: bool,
    /// Time spent in the call.
    pub duration_ns: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ZoneState {
    pub span: Span,
    pub present: Option<u64>,
    pub managed: Option<u64>,
    /// Free pages (/proc/zoneinfo "pages free" of the latest frame).
    pub free: Option<u64>,
    pub contiguous: Option<bool>,
    /// The latest span and contiguity changes (`--keep`); `seen()` counts all of them.
    pub span_changes: Recent<SpanChange>,
    pub contiguity_changes: Recent<ContiguityChange>,
    /// set_zone_contiguous calls and time spent in them.
    pub contiguity_checks: Durations,
    /// The latest slow-path `__pageblock_pfn_to_page` sample: (time, calls so far).
    slowpath_last: Option<(u64, u64)>,
    /// Calls per second over the last sampled interval, and the highest such rate.
    slowpath_rate: f64,
    slowpath_peak_rate: f64,
}

impl ZoneState {
    pub fn slowpath_calls(&self) -> u64 {
        self.slowpath_last.map_or(0, |s| s.1)
    }

    /// Calls per second over the last sampled interval, and the highest such rate.
    pub fn slowpath_rates(&self) -> (f64, f64) {
        (self.slowpath_rate, self.slowpath_peak_rate)
    }

    fn slowpath_sample(&mut self, ts_ns: u64, calls: u64) {
        if let Some((t0, c0)) = self.slowpath_last {
            let dt = ts_ns.saturating_sub(t0).max(1) as f64 / 1e9;
            self.slowpath_rate = calls.saturating_sub(c0) as f64 / dt;
            self.slowpath_peak_rate = self.slowpath_peak_rate.max(self.slowpath_rate);
        }
        self.slowpath_last = Some((ts_ns, calls));
    }
}

/// Hot-add, online, offline or hot-remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Add,
    Online,
    Offline,
    Remove,
}

/// One user-visible hotplug operation, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Operation {
    pub ts_ns: u64,
    pub kind: OpKind,
    /// Physical address range, bytes.
    pub start: u64,
    pub size: u64,
    /// None when not known.
    pub node: Option<i32>,
    /// Zone name, for onlines and offlines.
    pub zone: Option<Cow<'static, str>>,
    /// 0 or a negative errno.
    pub ret: i32,
    pub duration_ns: u64,
    /// add_memory_resource's MHP flags (adds only).
    pub mhp_flags: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub layout: Layout,
    pub blocks: Blocks,
    pub nodes: DenseMap<i32, NodeStats>,
    pub zones: DenseMap<ZoneId, ZoneState>,
    /// The latest operations (`--keep`); `op_counts` counts every one.
    pub operations: Recent<Operation>,
    /// Operations by (kind, succeeded, node): exact, whatever `--keep` left out.
    pub op_counts: BTreeMap<(OpKind, bool, Option<i32>), u64>,
    /// One per hot-added range: a range added again replaces its earlier entry, so this
    /// follows the host's size, not the number of adds.
    pub hot_adds: Vec<HotAdd>,
    /// Where each (node, first pfn) is in `hot_adds`: finding a range is not a search.
    hot_add_at: std::collections::HashMap<(i32, u64), u32>,
    /// The latest ZONE_DEVICE ranges created (`--keep`), torn down or not.
    pub devices: Recent<DeviceRange>,
    /// The latest span-check findings (`--keep`); `finding_counts` counts every one.
    pub findings: Recent<Finding>,
    pub finding_counts: BTreeMap<(ZoneId, Check), u64>,
    /// The latest memmap inits as time intervals, for the parallelism per burst: RAM and
    /// ZONE_DEVICE.
    pub ram_inits: Recent<Init>,
    pub device_inits: Recent<Init>,
    /// How many entries each history keeps.
    keep: usize,
    pub events: u64,
    pub lost_events: u64,
    /// Each probe's eBPF run count and run time so far (its latest sample).
    pub probe_costs: BTreeMap<String, ProbeCost>,
    /// Whether memmap_init_range / memmap_init_zone_device are traced themselves; if not,
    /// their callers' durations stand in.
    exact_ram_init: bool,
    exact_device_init: bool,
    /// Whether kmem:mm_page_alloc was traced (memmap placement is then measured, not computed).
    allocs_traced: bool,
    /// Whether slow-path `__pageblock_pfn_to_page` calls are counted (the probe is off by
    /// default): without it, a zone's 0 calls means "not counted", not "none".
    pub slowpath_counted: bool,
    checker: SpanChecker,
    /// Allocations of `__add_pages` calls still running, by (node, first pfn).
    open_allocs: BTreeMap<(i32, u64), MemmapAllocs>,
    /// Node free pages read as `__add_pages` calls began and ended (before and after), by
    /// their first pfn, until their own event arrives.
    open_free: BTreeMap<u64, (NodePages, NodePages)>,
    /// Every online and offline attempt, with why it failed.
    pub attempts: Attempts,
    /// The hotplug configuration in force (the latest frame's).
    pub config: HotplugConfig,
    /// Free page reporting.
    pub reporting: reporting::Reporting,
    last_ts_ns: u64,
}

impl Model {
    pub fn new(layout: Layout) -> Model {
        Model {
            layout,
            blocks: Blocks::default(),
            nodes: DenseMap::default(),
            zones: DenseMap::default(),
            operations: Recent::default(),
            op_counts: BTreeMap::new(),
            hot_adds: Vec::new(),
            hot_add_at: std::collections::HashMap::new(),
            devices: Recent::default(),
            findings: Recent::default(),
            finding_counts: BTreeMap::new(),
            ram_inits: Recent::default(),
            device_inits: Recent::default(),
            keep: DEFAULT_KEEP,
            events: 0,
            lost_events: 0,
            probe_costs: BTreeMap::new(),
            exact_ram_init: false,
            exact_device_init: false,
            allocs_traced: false,
            slowpath_counted: false,
            checker: SpanChecker::new(span_checks::X86_64_SUBSECTION_PAGES),
            open_allocs: BTreeMap::new(),
            open_free: BTreeMap::new(),
            attempts: Attempts::default(),
            config: HotplugConfig::default(),
            reporting: reporting::Reporting::default(),
            last_ts_ns: 0,
        }
    }

    /// How many entries of each history (operations, span and contiguity changes, findings,
    /// attempts, memmap inits) to keep; counts stay exact.
    /// 0 keeps everything.
    pub fn set_keep(&mut self, keep: usize) {
        self.keep = keep;
        self.operations.set_cap(self.keep);
        self.findings.set_cap(self.keep);
        self.ram_inits.set_cap(self.keep);
        self.device_inits.set_cap(self.keep);
        self.devices.set_cap(self.keep);
        self.attempts.set_keep(self.keep);
        for (_, z) in self.zones.iter_mut() {
            z.span_changes.set_cap(self.keep);
            z.contiguity_changes.set_cap(self.keep);
        }
    }

    /// Which probes attached decides which events carry memmap-init times and placements.
    pub fn set_probes(&mut self, probes: &[ProbeStatus]) {
        let exact = |name: &str| probes.iter().any(|p| p.name == name && p.exact());
        self.exact_ram_init = exact(MEMMAP_INIT_RANGE);
        self.exact_device_init = exact(MEMMAP_INIT_ZONE_DEVICE);
        self.allocs_traced = probes.iter().any(|p| p.name == "mm_page_alloc" && p.attached)
            && probes
                .iter()
                .any(|p| p.name == crate::kernel::probes::ADD_PAGES && p.attached);
        self.slowpath_counted = probes
            .iter()
            .any(|p| p.name == crate::kernel::probes::PAGEBLOCK_PFN_TO_PAGE && p.attached);
    }

    /// Seeds blocks, nodes and zones from the static picture taken at start-up.
    pub fn apply_frame(&mut self, frame: &Frame) {
        self.config = frame.config.clone();
        self.blocks.reserve(frame.blocks.len() as usize);
        for run in frame.blocks.runs() {
            let state = BlockState::from_sysfs(&run.state);
            let zone = match state {
                BlockState::Online => run
                    .valid_zones
                    .as_deref()
                    .and_then(|z| self.layout.zone_index(z.trim())),
                _ => None,
            };
            for id in run.first..run.first + run.count {
                let block = self.blocks.entry(id);
                block.node = run.node.or(block.node);
                block.state = state;
                block.zone = zone.or(block.zone);
            }
        }
        for n in &frame.nodes {
            self.nodes.or_default(n.node);
        }
        self.update_zone_figures(frame, true);
        self.seed_checker();
    }

    /// The span checker starts from the frame: each zone's span, and the online blocks of a
    /// single zone as its pages (clipped to the span: boot blocks may straddle a hole).
    fn seed_checker(&mut self) {
        for (&id, zone) in &self.zones {
            self.checker.seed_span(id, zone.span);
        }
        let per_block = self.layout.pages_per_block();
        for b in self.blocks.iter() {
            let (Some(node), Some(zone), BlockState::Online) = (b.node, b.zone, b.state) else {
                continue;
            };
            let id = ZoneId { node, zone };
            let Some(span) = self.zones.get(&id).map(|z| z.span) else {
                continue;
            };
            let start = (b.id * per_block).max(span.start_pfn);
            let end = ((b.id + 1) * per_block).min(span.end_pfn());
            if start < end {
                self.checker.seed_assigned(id, start, end - start);
            }
        }
    }

    /// Present/managed pages from a later frame (the end of a recording); spans come from events.
    pub fn apply_final_frame(&mut self, frame: &Frame) {
        if frame.config != HotplugConfig::default() {
            self.config = frame.config.clone();
        }
        self.update_zone_figures(frame, false);
    }

    fn update_zone_figures(&mut self, frame: &Frame, with_span: bool) {
        for z in &frame.zones {
            let Some(idx) = self.layout.zone_index(&z.zone) else {
                continue;
            };
            let zone = self.zones.or_default(ZoneId {
                node: z.node,
                zone: idx,
            });
            zone.present = Some(z.present);
            zone.managed = Some(z.managed);
            zone.free = z.free.or(zone.free);
            if with_span {
                zone.span = Span {
                    start_pfn: z.start_pfn.unwrap_or(0),
                    spanned_pages: z.spanned,
                };
            }
        }
    }

    /// The final count (a summary's): it never goes below what samples showed.
    pub fn set_lost_events(&mut self, lost: u64) {
        self.lost_events = self.lost_events.max(lost);
    }

    /// The newest event time seen: "now" for a recording.
    pub fn last_ts_ns(&self) -> u64 {
        self.last_ts_ns
    }

    pub fn ingest(&mut self, ev: &Event) {
        self.events += 1;
        self.last_ts_ns = self.last_ts_ns.max(ev.ts_ns);
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
                        self.nodes.or_default(n).hot_adds += 1;
                    }
                } else {
                    // The kernel rolled back whatever arch_add_memory had added.
                    self.set_state_in_range(start, size, BlockState::Removed);
                    self.count_failure(node);
                }
                self.push_op(ev, OpKind::Add, start, size, node, None, ret, Some(mhp_flags));
                self.attempts.hot_add_done(ev.tid, ev.start_ns(), ev.ts_ns);
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
                let page = self.layout.page_size.max(1);
                let at = self.hot_add_at.get(&(node, start / page)).copied();
                if let Some(h) = at.and_then(|i| self.hot_adds.get_mut(i as usize)) {
                    // __add_pages already created the blocks: only the altmap size is new.
                    if altmap.is_some() {
                        h.altmap_pages = Some(pages * n_blocks);
                        for id in ids {
                            if let Some(b) = self.blocks.get_mut(id) {
                                b.vmemmap_pages = pages;
                            }
                        }
                    }
                    return;
                }
                self.insert_hot_added(ids, node, placement, pages, None);
            }
            Op::AddPages {
                node,
                pfn,
                nr_pages,
                altmap,
                ret,
            } => {
                let allocs = self.open_allocs.remove(&(node, pfn));
                let (free_before, free_after) = self.open_free.remove(&pfn).unwrap_or_default();
                let n_blocks = if ret == 0 {
                    self.layout.blocks_of_pfns(pfn, nr_pages).count()
                } else {
                    0
                };
                let allocs = if self.allocs_traced {
                    Some(allocs.unwrap_or_default())
                } else {
                    allocs
                };
                let hot_add = HotAdd {
                    ts_ns: ev.ts_ns,
                    node,
                    pfn,
                    nr_pages,
                    self_hosted: altmap,
                    altmap_pages: None,
                    allocs,
                    ret,
                    free_before,
                    free_after,
                    first_online_ns: vec![None; n_blocks],
                };
                // A range added again (after a remove) takes its earlier entry's place.
                let index = match self.hot_add_at.get(&(node, pfn)) {
                    Some(&i) => {
                        self.hot_adds[i as usize] = hot_add;
                        i
                    }
                    None => {
                        self.hot_adds.push(hot_add);
                        let i = (self.hot_adds.len() - 1) as u32;
                        self.hot_add_at.insert((node, pfn), i);
                        i
                    }
                };
                if ret != 0 {
                    return;
                }
                let ids = self.layout.blocks_of_pfns(pfn, nr_pages);
                let (placement, pages) = if altmap {
                    // The altmap size comes with arch_add_memory's exit.
                    (Placement::SelfHosted, 0)
                } else {
                    (
                        Placement::ExistingMemory,
                        self.layout.memmap_pages_for(self.layout.pages_per_block()),
                    )
                };
                self.insert_hot_added(ids, node, placement, pages, Some(index));
            }
            Op::PageAlloc {
                pfn,
                order,
                window_node,
                window_pfn,
            } => {
                let node = self.node_of_pfn(pfn).unwrap_or(-1);
                let bytes = self.layout.page_size << order.min(20);
                let a = self.open_allocs.entry((window_node, window_pfn)).or_default();
                *a.by_node.entry(node).or_default() += bytes;
                if order >= 9 {
                    a.huge_bytes += bytes;
                } else {
                    a.small_bytes += bytes;
                }
            }
            Op::MemmapInitRange {
                zone,
                pfn: _,
                nr_pages,
                context,
            } => {
                if self.exact_ram_init && context == MEMINIT_HOTPLUG {
                    self.record_init(InitKind::Ram, ev, zone.node, nr_pages);
                }
            }
            Op::MemmapInitZoneDevice {
                zone, pfn, nr_pages, ..
            } => {
                if self.exact_device_init {
                    self.record_init(InitKind::Device, ev, zone.node, nr_pages);
                }
                let end_byte = (pfn + nr_pages) * self.layout.page_size;
                let start_byte = pfn * self.layout.page_size;
                // The range being created: memremap_pages has not returned yet.
                if let Some(d) = self.pending_device(start_byte, end_byte) {
                    d.inits.push((zone, pfn, nr_pages, ev.duration_ns));
                } else {
                    self.push_device(DeviceRange {
                        ts_ns: ev.ts_ns,
                        node: zone.node,
                        start: start_byte,
                        end: end_byte,
                        pgmap_type: 0,
                        altmap: false,
                        ret: 0,
                        duration_ns: 0,
                        inits: vec![(zone, pfn, nr_pages, ev.duration_ns)],
                        removed_ns: None,
                    });
                    // Marked as pending by duration 0 until memremap_pages returns.
                }
            }
            Op::MemremapPages {
                node,
                start,
                end,
                pgmap_type,
                altmap,
                ret,
                ..
            } => {
                let pages = (end.saturating_sub(start)) / self.layout.page_size.max(1);
                if !self.exact_device_init && ret == 0 {
                    self.record_init(InitKind::Device, ev, node, pages);
                }
                let range = DeviceRange {
                    ts_ns: ev.ts_ns,
                    node,
                    start,
                    end,
                    pgmap_type,
                    altmap,
                    ret,
                    // Non-zero: no longer pending.
                    duration_ns: ev.duration_ns.max(1),
                    inits: Vec::new(),
                    removed_ns: None,
                };
                match self.pending_device(start, end) {
                    // Its memmap_init_zone_device calls came first.
                    Some(d) => {
                        let inits = std::mem::take(&mut d.inits);
                        *d = DeviceRange { inits, ..range };
                    }
                    None => self.push_device(range),
                }
            }
            Op::MemunmapPages { start, end, .. } => {
                if let Some(d) = self
                    .devices
                    .iter_mut()
                    .rev()
                    .find(|d| d.start == start && d.end == end && d.removed_ns.is_none())
                {
                    d.removed_ns = Some(ev.ts_ns);
                }
            }
            Op::NodeFreePages {
                node,
                free_pages,
                moment,
                window_pfn,
            } => {
                // Both readings come before their __add_pages event (emitted at its exit).
                if self.open_free.len() < 1024 || self.open_free.contains_key(&window_pfn) {
                    let (before, after) = self.open_free.entry(window_pfn).or_default();
                    match moment {
                        AddMoment::Before => before.insert(node, free_pages),
                        AddMoment::After => after.insert(node, free_pages),
                    };
                }
            }
            Op::BlockOnline {
                pfn,
                requested,
                node,
                zone,
                policy,
                ret,
            } => self.attempts.block_done(BlockCall {
                kind: AttemptKind::Online,
                tid: ev.tid,
                start_ns: ev.start_ns(),
                ts_ns: ev.ts_ns,
                block: self.layout.block_of_pfn(pfn),
                node,
                zone,
                requested: Some(requested),
                policy,
                ret,
            }),
            Op::BlockOffline { pfn, node, zone, ret } => self.attempts.block_done(BlockCall {
                kind: AttemptKind::Offline,
                tid: ev.tid,
                start_ns: ev.start_ns(),
                ts_ns: ev.ts_ns,
                block: self.layout.block_of_pfn(pfn),
                node,
                zone,
                requested: None,
                policy: None,
                ret,
            }),
            Op::IsolateRange { ret, .. } => self.attempts.step(ev.tid, ev.ts_ns, Step::Isolate { ret }),
            Op::MemoryNotify { action, ret } => {
                self.attempts.step(ev.tid, ev.ts_ns, Step::Notify { action, ret })
            }
            Op::NodeNotify { ret, .. } => self.attempts.step(ev.tid, ev.ts_ns, Step::NodeNotify { ret }),
            Op::WalkSystemRam {
                nr_pages, ram_pages, ..
            } => self
                .attempts
                .step(ev.tid, ev.ts_ns, Step::WalkRam { nr_pages, ram_pages }),
            Op::DissolveHugePages { ret, .. } => self.attempts.step(ev.tid, ev.ts_ns, Step::Dissolve { ret }),
            Op::TestPagesIsolated { end_pfn, fin_pfn, .. } => {
                self.attempts
                    .step(ev.tid, ev.ts_ns, Step::TestIsolated { end_pfn, fin_pfn })
            }
            Op::MigratePages {
                succeeded, failed, ..
            } => self
                .attempts
                .step(ev.tid, ev.ts_ns, Step::Migrate { succeeded, failed }),
            Op::DumpPage {
                pfn,
                flags,
                refcount,
                mapcount,
                page_type,
                ref reason,
            } => self.attempts.step(
                ev.tid,
                ev.ts_ns,
                Step::Dump(DumpedPage {
                    pfn,
                    flags,
                    refcount,
                    mapcount,
                    page_type,
                    reason: reason.clone(),
                }),
            ),
            Op::LostEventsSample { total } => self.lost_events = self.lost_events.max(total),
            Op::ProbeCostSample {
                ref probe,
                runs,
                run_time_ns,
            } => {
                self.probe_costs
                    .insert(probe.clone(), ProbeCost { runs, run_time_ns });
            }
            Op::ReportingRegister { .. }
            | Op::ReportingCycle { .. }
            | Op::PageReport { .. }
            | Op::ReportedPagesSample { .. }
            | Op::ReportingRequestsSample { .. }
            | Op::ReportingOrderSample { .. } => self.reporting.ingest(ev, self.layout.page_size),
            Op::SlowPathSample { zone, calls } => {
                self.slowpath_counted = true;
                self.zones.or_default(zone).slowpath_sample(ev.ts_ns, calls);
            }
            Op::MhpInitMemmapOnMemory {
                pfn,
                nr_pages,
                zone,
                ret,
            } => {
                self.attempts.step(ev.tid, ev.ts_ns, Step::MemmapOnMemory { ret });
                if ret == 0 {
                    let id = self.layout.block_of_pfn(pfn);
                    let b = self.blocks.entry(id);
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
                if !self.exact_ram_init {
                    self.record_init(InitKind::Ram, ev, zone.node, nr_pages);
                }
                let mut found = Vec::new();
                self.checker.moved_to_zone(
                    ev.ts_ns,
                    ev.op.function(),
                    zone,
                    pfn,
                    nr_pages,
                    before,
                    after,
                    &mut found,
                );
                self.add_findings(found);
                self.span_change(ev, zone, pfn, nr_pages, before, after);
            }
            Op::RemovePfnRangeFromZone {
                pfn,
                nr_pages,
                zone,
                before,
                after,
            } => {
                let mut found = Vec::new();
                self.checker.removed_from_zone(
                    ev.ts_ns,
                    ev.op.function(),
                    zone,
                    pfn,
                    nr_pages,
                    before,
                    after,
                    &mut found,
                );
                self.add_findings(found);
                self.span_change(ev, zone, pfn, nr_pages, before, after);
            }
            Op::SetZoneContiguous {
                zone,
                contiguous,
                span,
                ..
            } => {
                let keep = self.keep;
                let z = self.zones.or_default(zone);
                z.contiguity_checks.record(ev.duration_ns, 0);
                if z.contiguous != Some(contiguous) {
                    z.contiguity_changes.set_cap(keep);
                    z.contiguity_changes.push(ContiguityChange {
                        ts_ns: ev.ts_ns,
                        before: z.contiguous,
                        after: contiguous,
                        duration_ns: ev.duration_ns,
                    });
                    z.contiguous = Some(contiguous);
                }
                z.span = span;
                self.checker.observe_span(zone, span);
            }
            Op::TryRemoveMemory { start, size, ret } => {
                let node = self.node_of_range(start, size);
                if ret == 0 {
                    self.set_state_in_range(start, size, BlockState::Removed);
                    if let Some(n) = node {
                        self.nodes.or_default(n).removes += 1;
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
        let attempt_kind = match kind {
            OpKind::Online => AttemptKind::Online,
            _ => AttemptKind::Offline,
        };
        self.attempts.pages_done(
            attempt_kind,
            ev.tid,
            ev.start_ns(),
            ev.ts_ns,
            pfn,
            nr_pages,
            zone,
            ret,
        );
        let stats = self.nodes.or_default(zone.node);
        if ret == 0 {
            let durations = if kind == OpKind::Online {
                &mut stats.online
            } else {
                &mut stats.offline
            };
            durations.record(ev.duration_ns, nr_pages);
            for id in self.layout.blocks_of_pfns(pfn, nr_pages) {
                let b = self.blocks.entry(id);
                b.node = b.node.or(Some(zone.node));
                if kind == OpKind::Online {
                    b.state = BlockState::Online;
                    b.zone = Some(zone.zone);
                    b.onlined += 1;
                    if let Some(h) = b.hot_add.and_then(|i| self.hot_adds.get_mut(i as usize)) {
                        let first = self.layout.block_of_pfn(h.pfn);
                        if let Some(slot @ None) = id
                            .checked_sub(first)
                            .and_then(|i| h.first_online_ns.get_mut(i as usize))
                        {
                            *slot = Some(ev.ts_ns);
                        }
                    }
                } else {
                    b.state = BlockState::Offline;
                    b.offlined += 1;
                }
            }
        } else {
            stats.failed += 1;
        }
        let (start, size) = self.pfn_range_bytes(pfn, nr_pages);
        let name = self.layout.zone_label(zone.zone);
        self.push_op(ev, kind, start, size, Some(zone.node), Some(name), ret, None);
    }

    fn span_change(&mut self, ev: &Event, zone: ZoneId, pfn: u64, nr_pages: u64, before: Span, after: Span) {
        let keep = self.keep;
        let z = self.zones.or_default(zone);
        if before != after {
            z.span_changes.set_cap(keep);
            z.span_changes.push(SpanChange {
                ts_ns: ev.ts_ns,
                cause: Cow::Borrowed(ev.op.function()),
                pfn,
                nr_pages,
                before,
                after,
            });
        }
        z.span = after;
    }

    /// A hot-add creates its blocks afresh, whatever was known of those ids before.
    fn insert_hot_added(
        &mut self,
        ids: std::ops::RangeInclusive<u64>,
        node: i32,
        placement: Placement,
        vmemmap_pages: u64,
        hot_add: Option<u32>,
    ) {
        for id in ids {
            self.blocks.insert(Block {
                node: Some(node),
                state: BlockState::Offline,
                hot_added: true,
                placement,
                vmemmap_pages,
                hot_add,
                ..Block::new(id)
            });
        }
    }

    /// A block's share of its hot-add's memmap allocations, when they were traced.
    pub fn block_allocs(&self, b: &Block) -> Option<MemmapAllocs> {
        let h = self.hot_adds.get(b.hot_add? as usize)?;
        let a = h.allocs.as_ref()?;
        let n = self.layout.blocks_of_pfns(h.pfn, h.nr_pages).count().max(1) as u64;
        Some(MemmapAllocs {
            by_node: a
                .by_node
                .iter()
                .map(|(&node, &bytes)| (node, bytes / n))
                .collect(),
            huge_bytes: a.huge_bytes / n,
            small_bytes: a.small_bytes / n,
        })
    }

    /// One memmap initialisation: the node's duration stats and the interval for the bursts.
    fn record_init(&mut self, kind: InitKind, ev: &Event, node: i32, pages: u64) {
        let stats = self.nodes.or_default(node);
        let (durations, inits) = match kind {
            InitKind::Ram => (&mut stats.memmap_init, &mut self.ram_inits),
            InitKind::Device => (&mut stats.device_init, &mut self.device_inits),
        };
        durations.record(ev.duration_ns, pages);
        inits.push(Init {
            node,
            start_ns: ev.start_ns(),
            end_ns: ev.ts_ns,
            pages,
        });
    }

    fn push_device(&mut self, d: DeviceRange) {
        self.devices.set_cap(self.keep);
        self.devices.push(d);
    }

    fn add_findings(&mut self, found: Vec<Finding>) {
        for f in found {
            *self.finding_counts.entry((f.zone, f.check)).or_default() += 1;
            self.findings.push(f);
        }
    }

    /// A device range whose memremap_pages has not returned yet, overlapping [start, end).
    fn pending_device(&mut self, start: u64, end: u64) -> Option<&mut DeviceRange> {
        self.devices
            .iter_mut()
            .rev()
            .find(|d| d.duration_ns == 0 && d.start < end && start < d.end)
    }

    /// Node of the memory block holding `pfn`, as far as known.
    /// Free page reporting as the report, JSON and metrics give it, each zone beside its
    /// figures (free, present, span) and its hot-added blocks.
    pub fn reporting_doc(&self) -> reporting::ReportingDoc {
        self.reporting.doc(
            self.layout.page_size,
            |z| self.layout.zone_name(z),
            |id| {
                let z = self.zones.get(&id);
                reporting::ZoneFigures {
                    free: z.and_then(|z| z.free),
                    present: z.and_then(|z| z.present),
                    spanned: z.map_or(0, |z| z.span.spanned_pages),
                    hot_added_blocks: self
                        .blocks
                        .iter()
                        .filter(|b| b.hot_added && b.node == Some(id.node) && b.zone == Some(id.zone))
                        .count() as u64,
                }
            },
        )
    }

    pub fn node_of_pfn(&self, pfn: u64) -> Option<i32> {
        self.blocks
            .get(self.layout.block_of_pfn(pfn))
            .and_then(|b| b.node)
    }

    /// Parallelism of memmap initialisation, per burst (inits closer than `gap_ns`).
    pub fn init_bursts(&self, gap_ns: u64) -> (Vec<Burst>, Vec<Burst>) {
        (
            bursts::bursts(&self.ram_inits.iter().copied().collect::<Vec<_>>(), gap_ns),
            bursts::bursts(&self.device_inits.iter().copied().collect::<Vec<_>>(), gap_ns),
        )
    }

    fn pfn_range_bytes(&self, pfn: u64, nr_pages: u64) -> (u64, u64) {
        (pfn * self.layout.page_size, nr_pages * self.layout.page_size)
    }

    /// Node of the first known block in a physical range.
    fn node_of_range(&self, start: u64, size: u64) -> Option<i32> {
        self.layout
            .blocks_of_range(start, size)
            .find_map(|id| self.blocks.get(id).and_then(|b| b.node))
    }

    fn set_state_in_range(&mut self, start: u64, size: u64, state: BlockState) {
        for id in self.layout.blocks_of_range(start, size) {
            if let Some(b) = self.blocks.get_mut(id) {
                b.state = state;
            }
        }
    }

    fn count_failure(&mut self, node: Option<i32>) {
        if let Some(n) = node {
            self.nodes.or_default(n).failed += 1;
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
        zone: Option<Cow<'static, str>>,
        ret: i32,
        mhp_flags: Option<u32>,
    ) {
        *self.op_counts.entry((kind, ret == 0, node)).or_default() += 1;
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
