//! Typed hotplug events: what the decoder produces and what recordings store.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One traced kernel call, at its exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// CLOCK_MONOTONIC at function exit (the recording header maps it to wall-clock time).
    pub ts_ns: u64,
    /// Time spent in the function (0 when the call began before the probe attached).
    pub duration_ns: u64,
    /// Thread id of the caller.
    pub tid: u32,
    pub op: Op,
}

impl Event {
    pub fn start_ns(&self) -> u64 {
        self.ts_ns.saturating_sub(self.duration_ns)
    }
}

/// A zone as the kernel names it: node and index into `pgdat->node_zones`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ZoneId {
    pub node: i32,
    /// Index into the recording header's `layout.zone_names`.
    pub zone: u8,
}

/// A zone span: `zone_start_pfn` and `spanned_pages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Span {
    pub start_pfn: u64,
    pub spanned_pages: u64,
}

impl Span {
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.spanned_pages
    }
}

/// The vmem_altmap passed to `arch_add_memory`: the range hosts its own memmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Altmap {
    /// First pfn of the range.
    pub base_pfn: u64,
    /// Pages of the range taken for the memmap (`alloc`), after the call.
    pub alloc: u64,
    /// Pages skipped for alignment (`align`), after the call.
    pub align: u64,
}

/// What was traced, tagged by `kind`: the kernel function (each kind says which), or a sample.
/// Throughout: `start`, `end` and `size` are physical addresses and lengths in bytes, `pfn` a page
/// frame number, `nr_pages` a number of pages, `ret` the return value (0 or a negative errno).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// `add_memory_resource`: the hot-add as a whole.
    AddMemoryResource {
        start: u64,
        size: u64,
        /// `MHP_*` flags: 1 MERGE_RESOURCE, 2 MEMMAP_ON_MEMORY, 4 NID_IS_MGID, 8 OFFLINE_INACCESSIBLE.
        mhp_flags: u32,
        /// The nid argument; a memory-group id when `MHP_NID_IS_MGID` is set, not a node.
        nid_arg: i32,
        ret: i32,
    },
    /// `arch_add_memory`: the real node, and the altmap when the memmap is self-hosted.
    ArchAddMemory {
        node: i32,
        start: u64,
        size: u64,
        altmap: Option<Altmap>,
        ret: i32,
    },
    /// `mhp_init_memmap_on_memory`: the pages holding a self-hosted range's memmap are
    /// initialised and accounted to the zone, before onlining.
    MhpInitMemmapOnMemory {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    },
    /// `online_pages`: a range is onlined.
    OnlinePages {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    },
    /// `move_pfn_range_to_zone`: memmap initialisation of an onlined range, and the zone span growing.
    MovePfnRangeToZone {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        before: Span,
        after: Span,
    },
    /// `offline_pages`: a range is offlined.
    OfflinePages {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    },
    /// `remove_pfn_range_from_zone`: an offlined range leaves its zone; the zone span shrinks.
    RemovePfnRangeFromZone {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        before: Span,
        after: Span,
    },
    /// `set_zone_contiguous`: whether the zone has no holes is recomputed.
    SetZoneContiguous {
        zone: ZoneId,
        /// `zone->contiguous` at entry (callers clear it first on some kernels) and at exit.
        entry: bool,
        contiguous: bool,
        span: Span,
    },
    /// `try_remove_memory`: the hot-remove as a whole.
    TryRemoveMemory { start: u64, size: u64, ret: i32 },
    /// `__add_pages`: the sparse sections of a hot-add; its memmap is allocated inside.
    AddPages {
        node: i32,
        pfn: u64,
        nr_pages: u64,
        /// Whether the memmap goes into the range itself (vmem_altmap).
        altmap: bool,
        ret: i32,
    },
    /// A page allocation made inside `__add_pages` (kmem:mm_page_alloc): the memmap, its page
    /// tables and section metadata, taken from memory that existed before.
    PageAlloc {
        pfn: u64,
        /// The allocation is 2^order pages.
        order: u32,
        /// Node and first pfn of the enclosing `__add_pages` call.
        window_node: i32,
        window_pfn: u64,
    },
    /// `memmap_init_range`: initialisation of the struct pages of a range.
    MemmapInitRange {
        zone: ZoneId,
        pfn: u64,
        nr_pages: u64,
        /// enum meminit_context: 0 early (boot), 1 hotplug.
        context: u32,
    },
    /// `memmap_init_zone_device`: initialisation of ZONE_DEVICE struct pages.
    MemmapInitZoneDevice {
        zone: ZoneId,
        pfn: u64,
        nr_pages: u64,
        /// `enum memory_type`: 1 private, 2 coherent, 3 fs_dax, 4 generic, 5 pci_p2pdma.
        pgmap_type: u32,
        /// PGMAP_ALTMAP_VALID: the memmap lives on the device itself.
        altmap: bool,
    },
    /// `memremap_pages`: a ZONE_DEVICE range is created.
    MemremapPages {
        node: i32,
        /// First range, half-open, in bytes.
        start: u64,
        end: u64,
        /// Ranges of the dev_pagemap (only the first is reported).
        nr_range: u32,
        /// `enum memory_type`, as for `memmap_init_zone_device`.
        pgmap_type: u32,
        /// The memmap lives on the device itself (PGMAP_ALTMAP_VALID).
        altmap: bool,
        ret: i32,
    },
    /// `memunmap_pages`: a ZONE_DEVICE range is torn down.
    MemunmapPages {
        /// First range, half-open, in bytes.
        start: u64,
        end: u64,
        nr_range: u32,
        pgmap_type: u32,
        altmap: bool,
    },
    /// `memory_subsys_online` (drivers/base/memory.c): one memory block's online attempt, as
    /// sysfs (or auto-online at hot-add) asked for it. It refuses some before `online_pages` runs.
    BlockOnline {
        /// First pfn of the block.
        pfn: u64,
        /// `memory_block.online_type` at entry: what was asked.
        requested: OnlineType,
        /// `memory_block.nid`.
        node: i32,
        /// `memory_block.zone` at exit: the zone it went to (None when it failed).
        zone: Option<ZoneId>,
        /// The online policy in force as it ran (None where the kernel's variable could not be
        /// read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<OnlinePolicy>,
        ret: i32,
    },
    /// `memory_subsys_offline`: one memory block's offline attempt. Blocks with holes or
    /// spanning zones have no zone and are refused here (EINVAL) before `offline_pages`.
    BlockOffline {
        pfn: u64,
        node: i32,
        /// `memory_block.zone` at entry (None: the block belongs to no single zone).
        zone: Option<ZoneId>,
        ret: i32,
    },
    /// `start_isolate_page_range` inside `offline_pages`: isolating the range's pageblocks.
    /// It fails (EBUSY) at the first pageblock holding an unmovable page.
    IsolateRange { pfn: u64, nr_pages: u64, ret: i32 },
    /// `memory_notify` inside `online_pages`/`offline_pages`: the memory notifier chain for
    /// one action. `ret` is the errno a refusing notifier gave (0 when all agreed).
    MemoryNotify { action: NotifyAction, ret: i32 },
    /// `node_notify` inside `online_pages`/`offline_pages` (7.x): the node notifier chain.
    NodeNotify {
        /// The kernel's `NODE_*` action value.
        action: u32,
        ret: i32,
    },
    /// `walk_system_ram_range` inside `offline_pages`: how many pages of the range are
    /// System RAM; fewer than `nr_pages` means holes.
    WalkSystemRam { pfn: u64, nr_pages: u64, ram_pages: u64 },
    /// The hugetlb dissolve step inside `offline_pages` (`dissolve_free_huge_pages` or
    /// `dissolve_free_hugetlb_folios`).
    DissolveHugePages { pfn: u64, end_pfn: u64, ret: i32 },
    /// `page_isolation:test_pages_isolated` inside `offline_pages`: whether every page of the
    /// range is now free and isolated; `fin_pfn` < `end_pfn` names the first that is not.
    TestPagesIsolated { pfn: u64, end_pfn: u64, fin_pfn: u64 },
    /// `migrate:mm_migrate_pages` inside `offline_pages`: one migration pass.
    MigratePages {
        succeeded: u64,
        failed: u64,
        /// `enum migrate_reason` value.
        reason: u32,
    },
    /// `dump_page` inside `online_pages`/`offline_pages`: the kernel dumped a page that
    /// stood in the way ("unmovable page"). The raw words of its `struct page`.
    DumpPage {
        pfn: u64,
        /// `page->flags`: PG_* bits, and the node and zone in the top bits.
        flags: u64,
        /// `page->_refcount`.
        refcount: i32,
        /// `page->_mapcount` (stored minus one: -1 means unmapped).
        mapcount: i32,
        /// `page->page_type` (shares a word with `_mapcount` on 6.x).
        page_type: u32,
        /// The reason the kernel gave, as it gave it (first 16 bytes).
        reason: String,
    },
    /// Free pages of a node (`NR_FREE_PAGES` summed over its zones), read in the kernel at the
    /// start and at the end of a hot-add's `__add_pages`.
    NodeFreePages {
        node: i32,
        free_pages: u64,
        moment: AddMoment,
        /// First pfn of the `__add_pages` call it belongs to.
        window_pfn: u64,
    },
    /// Slow-path `__pageblock_pfn_to_page` calls in a zone so far (a periodic counter sample,
    /// not a call).
    SlowPathSample {
        zone: ZoneId,
        /// Calls in this zone since tracing began.
        calls: u64,
    },
    /// Events the kernel side could not put in the full ring buffer so far (a periodic counter
    /// sample, written when it grows, so that live views show drops as they happen).
    LostEventsSample {
        /// Events lost since tracing began.
        total: u64,
    },
    /// Run-time statistics of one probe's eBPF programs so far (BPF_ENABLE_STATS; a periodic
    /// counter sample, written when it grows): mhpscope's own cost in the kernel.
    ProbeCostSample {
        probe: String,
        /// Program runs, summed over the probe's programs (entry and exit count separately).
        runs: u64,
        /// Time spent in them, ns.
        run_time_ns: u64,
    },
    /// `page_reporting_register`: a free page reporting device (virtio-balloon with
    /// `free-page-reporting=on`) registered, and the reporting order was chosen.
    ReportingRegister {
        /// `page_reporting_order` after the call: blocks of at least 2^order pages are
        /// reported (None when its address was not in /proc/kallsyms).
        order: Option<u32>,
        /// `prdev->order`, the device's wish (-1, or 0 on 6.1: none).
        device_order: i32,
        /// `prdev->capacity`: scatterlist entries per report at most (7.x; None before,
        /// where it is PAGE_REPORTING_CAPACITY, 32).
        capacity: Option<u32>,
        ret: i32,
    },
    /// `page_reporting_process`: one free page reporting cycle (every zone's free lists
    /// walked); the event's duration is the cycle's, host waits included.
    ReportingCycle {
        /// False when the cycle ended on another CPU than it began on: the totals below
        /// are then unknown (0).
        totals_known: bool,
        /// Report callback calls during the cycle, and how many failed.
        reports: u32,
        failed: u32,
        /// Bytes handed to the host (the reports' scatterlist lengths).
        bytes: u64,
        /// Pages (PAGE_SIZE) isolated from the free lists for reporting.
        isolated_pages: u64,
    },
    /// The device's report callback (`virtballoon_free_page_report`): one batch of free
    /// pages handed to the host. The event's duration is the time the guest waited for the
    /// host's acknowledgement.
    PageReport {
        /// The zone of the batch's pages (one zone per batch); None when unreadable.
        zone: Option<ZoneId>,
        /// Scatterlist entries (free blocks) in the batch.
        nents: u32,
        /// Bytes: the sum of the entries' lengths.
        bytes: u64,
        /// Bit n set when the batch has a block of order n.
        orders: u32,
        /// First block's pfn (None when unknown).
        first_pfn: Option<u64>,
        /// Whether the batch came inside a report cycle whose beginning was seen, so that
        /// its pages were counted as they were isolated (false: a cycle already running when
        /// tracing began; None: recorded by an earlier mhpscope, which did not tell).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_seen_cycle: Option<bool>,
        ret: i32,
    },
    /// Blocks of 2^order pages taken off a zone's free lists for reporting
    /// (`__isolate_free_page`) and put back after the report (`__putback_isolated_page`) so
    /// far (a periodic counter sample of per-CPU counters, not a call).
    ReportedPagesSample {
        zone: ZoneId,
        order: u8,
        /// Blocks isolated since tracing began.
        isolated: u64,
        /// Blocks put back since tracing began.
        putback: u64,
    },
    /// `__page_reporting_notify` calls so far: how often reporting was requested (a
    /// periodic counter sample).
    ReportingRequestsSample { calls: u64 },
    /// `page_reporting_order` as /sys/module/page_reporting/parameters/page_reporting_order
    /// shows it (read at start and whenever it changes): -1, 4294967295 (6.12) or 11 (6.1,
    /// MAX_ORDER) before a device registered.
    ReportingOrderSample { order: i64 },
}

/// `enum memory_type` (dev_pagemap.type), stable across 6.1-7.2.
pub fn pgmap_type_name(t: u32) -> &'static str {
    match t {
        1 => "private",
        2 => "coherent",
        3 => "fs_dax",
        4 => "generic",
        5 => "pci_p2pdma",
        _ => "unknown",
    }
}

/// `PGMAP_ALTMAP_VALID` in `dev_pagemap.flags` (include/linux/memremap.h).
pub const PGMAP_ALTMAP_VALID: u32 = 1 << 0;

impl Op {
    /// The kernel function that produced this event.
    pub fn function(&self) -> &'static str {
        match self {
            Op::AddMemoryResource { .. } => "add_memory_resource",
            Op::ArchAddMemory { .. } => "arch_add_memory",
            Op::MhpInitMemmapOnMemory { .. } => "mhp_init_memmap_on_memory",
            Op::OnlinePages { .. } => "online_pages",
            Op::MovePfnRangeToZone { .. } => "move_pfn_range_to_zone",
            Op::OfflinePages { .. } => "offline_pages",
            Op::RemovePfnRangeFromZone { .. } => "remove_pfn_range_from_zone",
            Op::SetZoneContiguous { .. } => "set_zone_contiguous",
            Op::TryRemoveMemory { .. } => "try_remove_memory",
            Op::AddPages { .. } => "__add_pages",
            Op::PageAlloc { .. } => "kmem:mm_page_alloc",
            Op::MemmapInitRange { .. } => "memmap_init_range",
            Op::MemmapInitZoneDevice { .. } => "memmap_init_zone_device",
            Op::MemremapPages { .. } => "memremap_pages",
            Op::MemunmapPages { .. } => "memunmap_pages",
            Op::BlockOnline { .. } => "memory_subsys_online",
            Op::BlockOffline { .. } => "memory_subsys_offline",
            Op::IsolateRange { .. } => "start_isolate_page_range",
            Op::MemoryNotify { .. } => "memory_notify",
            Op::NodeNotify { .. } => "node_notify",
            Op::WalkSystemRam { .. } => "walk_system_ram_range",
            Op::DissolveHugePages { .. } => "dissolve_free_huge_pages",
            Op::TestPagesIsolated { .. } => "page_isolation:test_pages_isolated",
            Op::MigratePages { .. } => "migrate:mm_migrate_pages",
            Op::DumpPage { .. } => "dump_page",
            Op::NodeFreePages { .. } => "__add_pages (node free pages)",
            Op::SlowPathSample { .. } => "__pageblock_pfn_to_page",
            Op::LostEventsSample { .. } => "ring buffer",
            Op::ProbeCostSample { .. } => "bpf run-time stats",
            Op::ReportingRegister { .. } => "page_reporting_register",
            Op::ReportingCycle { .. } => "page_reporting_process",
            Op::PageReport { .. } => "virtballoon_free_page_report",
            Op::ReportedPagesSample { .. } => "__isolate_free_page",
            Op::ReportingRequestsSample { .. } => "__page_reporting_notify",
            Op::ReportingOrderSample { .. } => "page_reporting_order (sysfs)",
        }
    }
}

/// `MHP_*` flags of `add_memory_resource` (#defines, not in BTF; values from
/// include/linux/memory_hotplug.h, stable across 6.1-7.2).
pub mod mhp {
    pub const MERGE_RESOURCE: u32 = 1 << 0;
    pub const MEMMAP_ON_MEMORY: u32 = 1 << 1;
    pub const NID_IS_MGID: u32 = 1 << 2;
    pub const OFFLINE_INACCESSIBLE: u32 = 1 << 3;

    pub fn describe(flags: u32) -> String {
        let names = [
            (MERGE_RESOURCE, "MERGE_RESOURCE"),
            (MEMMAP_ON_MEMORY, "MEMMAP_ON_MEMORY"),
            (NID_IS_MGID, "NID_IS_MGID"),
            (OFFLINE_INACCESSIBLE, "OFFLINE_INACCESSIBLE"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| flags & b != 0)
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            "NONE".into()
        } else {
            set.join("|")
        }
    }
}

/// `memory_block.online_type` (`MMOP_*`, stable across 6.1-7.2): what an online asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnlineType {
    /// MMOP_OFFLINE: nothing set (the `online` attribute or `device_online`); the kernel
    /// treats it as `online`.
    Unset,
    /// MMOP_ONLINE: "online": the online policy picks the zone.
    Online,
    /// MMOP_ONLINE_KERNEL: "online_kernel".
    OnlineKernel,
    /// MMOP_ONLINE_MOVABLE: "online_movable".
    OnlineMovable,
    /// A value this mhpscope does not know.
    Unknown,
}

impl OnlineType {
    pub fn from_mmop(v: u64) -> OnlineType {
        match v {
            0 => OnlineType::Unset,
            1 => OnlineType::Online,
            2 => OnlineType::OnlineKernel,
            3 => OnlineType::OnlineMovable,
            _ => OnlineType::Unknown,
        }
    }

    /// As sysfs `state` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnlineType::Unset => "online (unset)",
            OnlineType::Online => "online",
            OnlineType::OnlineKernel => "online_kernel",
            OnlineType::OnlineMovable => "online_movable",
            OnlineType::Unknown => "unknown",
        }
    }
}

/// The memory notifier actions (`MEM_*`). 6.1 and 6.12 define them as bits, 7.x as an enum in
/// another order: the decoder maps the kernel's value to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyAction {
    Online,
    GoingOffline,
    Offline,
    GoingOnline,
    CancelOnline,
    CancelOffline,
    PrepareOnline,
    FinishOffline,
    Unknown,
}

impl NotifyAction {
    /// The `#define`s of 6.1 and 6.12 (include/linux/memory.h).
    pub fn from_bits(v: u64) -> NotifyAction {
        match v {
            0x1 => NotifyAction::Online,
            0x2 => NotifyAction::GoingOffline,
            0x4 => NotifyAction::Offline,
            0x8 => NotifyAction::GoingOnline,
            0x10 => NotifyAction::CancelOnline,
            0x20 => NotifyAction::CancelOffline,
            0x40 => NotifyAction::PrepareOnline,
            0x80 => NotifyAction::FinishOffline,
            _ => NotifyAction::Unknown,
        }
    }

    /// The kernel's name of the action, e.g. "MEM_GOING_OFFLINE".
    pub fn kernel_name(self) -> &'static str {
        match self {
            NotifyAction::Online => "MEM_ONLINE",
            NotifyAction::GoingOffline => "MEM_GOING_OFFLINE",
            NotifyAction::Offline => "MEM_OFFLINE",
            NotifyAction::GoingOnline => "MEM_GOING_ONLINE",
            NotifyAction::CancelOnline => "MEM_CANCEL_ONLINE",
            NotifyAction::CancelOffline => "MEM_CANCEL_OFFLINE",
            NotifyAction::PrepareOnline => "MEM_PREPARE_ONLINE",
            NotifyAction::FinishOffline => "MEM_FINISH_OFFLINE",
            NotifyAction::Unknown => "MEM_?",
        }
    }

    pub fn from_kernel_name(name: &str) -> NotifyAction {
        const ALL: [NotifyAction; 8] = [
            NotifyAction::Online,
            NotifyAction::GoingOffline,
            NotifyAction::Offline,
            NotifyAction::GoingOnline,
            NotifyAction::CancelOnline,
            NotifyAction::CancelOffline,
            NotifyAction::PrepareOnline,
            NotifyAction::FinishOffline,
        ];
        ALL.into_iter()
            .find(|a| a.kernel_name() == name)
            .unwrap_or(NotifyAction::Unknown)
    }
}

/// When a node's free pages were read: as a hot-add began allocating, or after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AddMoment {
    Before,
    After,
}

/// `memory_hotplug.online_policy` and its ratio, as they were at an online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct OnlinePolicy {
    pub policy: OnlinePolicyKind,
    /// `auto_movable_ratio`, percent (None when not read).
    pub auto_movable_ratio: Option<u32>,
}

/// `enum online_policy` of mm/memory_hotplug.c (stable across 6.1-7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnlinePolicyKind {
    ContigZones,
    AutoMovable,
    Unknown,
}

impl OnlinePolicyKind {
    pub fn from_kernel(v: u64) -> OnlinePolicyKind {
        match v {
            0 => OnlinePolicyKind::ContigZones,
            1 => OnlinePolicyKind::AutoMovable,
            _ => OnlinePolicyKind::Unknown,
        }
    }

    /// As sysfs spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OnlinePolicyKind::ContigZones => "contig-zones",
            OnlinePolicyKind::AutoMovable => "auto-movable",
            OnlinePolicyKind::Unknown => "unknown",
        }
    }
}
