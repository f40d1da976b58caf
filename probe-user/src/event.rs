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
            Op::SlowPathSample { .. } => "__pageblock_pfn_to_page",
            Op::LostEventsSample { .. } => "ring buffer",
            Op::ProbeCostSample { .. } => "bpf run-time stats",
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
