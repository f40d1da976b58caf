//! The ABI between mhpscope's eBPF programs and its userspace.
//!
//! Every probe emits the same fixed-size [`RawEvent`]; what each `args` slot means depends on
//! `kind` and is spelled out by the index constants in [`arg`]. Keeping one record shape keeps
//! the kernel side trivial; the userspace decoder turns it into typed events.
#![no_std]

/// Number of argument slots in a [`RawEvent`].
pub const NR_ARGS: usize = 8;

/// `flags` for `bpf_ringbuf_output`: do not wake the reader. Userspace drains on a timer; a
/// wakeup per event made online/offline ~11% slower in a 6.1 guest.
pub const BPF_RB_NO_WAKEUP: u64 = 1;

/// Event kinds: one per probed kernel function (or tracepoint).
pub mod kind {
    pub const ADD_MEMORY_RESOURCE: u32 = 1;
    pub const ARCH_ADD_MEMORY: u32 = 2;
    pub const MHP_INIT_MEMMAP_ON_MEMORY: u32 = 3;
    pub const ONLINE_PAGES: u32 = 4;
    pub const MOVE_PFN_RANGE_TO_ZONE: u32 = 5;
    pub const OFFLINE_PAGES: u32 = 6;
    pub const REMOVE_PFN_RANGE_FROM_ZONE: u32 = 7;
    pub const SET_ZONE_CONTIGUOUS: u32 = 8;
    pub const TRY_REMOVE_MEMORY: u32 = 9;
    /// `__add_pages`: the sparse-section work of a hot-add, where its memmap is allocated.
    pub const ADD_PAGES: u32 = 10;
    /// `kmem:mm_page_alloc` made by a task inside `__add_pages` (the memmap and its page tables).
    pub const PAGE_ALLOC: u32 = 11;
    /// `memmap_init_range`: memmap initialisation proper (traceable from 6.12 on).
    pub const MEMMAP_INIT_RANGE: u32 = 12;
    /// `memmap_init_zone_device`: memmap initialisation of ZONE_DEVICE memory.
    pub const MEMMAP_INIT_ZONE_DEVICE: u32 = 13;
    /// `memremap_pages`: a ZONE_DEVICE range is created.
    pub const MEMREMAP_PAGES: u32 = 14;
    /// `memunmap_pages`: a ZONE_DEVICE range is torn down.
    pub const MEMUNMAP_PAGES: u32 = 15;
    /// `memory_subsys_online(struct device *dev)`: one memory block's online attempt (sysfs
    /// `state`/`online`, or auto-online at hot-add). Emitted for every call.
    pub const MEMORY_SUBSYS_ONLINE: u32 = 16;
    /// `memory_subsys_offline(struct device *dev)`: one memory block's offline attempt.
    pub const MEMORY_SUBSYS_OFFLINE: u32 = 17;

    // The sub-steps of online_pages/offline_pages. Their programs emit only for a task that is
    // inside online_pages or offline_pages (`STEP_CTL` and the task's `STARTS` entry of
    // ONLINE_PAGES/OFFLINE_PAGES); anywhere else they cost one array read.
    /// `start_isolate_page_range` (offline_pages step "failure to isolate range").
    pub const START_ISOLATE_PAGE_RANGE: u32 = 18;
    /// `memory_notify(action, arg)`: the memory notifier chain for one action.
    pub const MEMORY_NOTIFY: u32 = 19;
    /// `node_notify(action, arg)`: the node notifier chain (7.x only).
    pub const NODE_NOTIFY: u32 = 20;
    /// `walk_system_ram_range` called by offline_pages (inside offline_pages only: other
    /// callers pass other callbacks and other `arg` types).
    pub const WALK_SYSTEM_RAM_RANGE: u32 = 21;
    /// `dissolve_free_huge_pages` (6.1) / `dissolve_free_hugetlb_folios` (6.12, 7.x).
    pub const DISSOLVE_FREE_HUGE_PAGES: u32 = 22;
    /// `dump_page(page, reason)`: a page the kernel dumped (e.g. "unmovable page").
    pub const DUMP_PAGE: u32 = 23;
    /// Tracepoint `page_isolation:test_pages_isolated` (no duration: a tracepoint).
    pub const TEST_PAGES_ISOLATED: u32 = 24;
    /// Tracepoint `migrate:mm_migrate_pages` (no duration). Fires on every migration in the
    /// system; emitted only inside online_pages/offline_pages.
    pub const MM_MIGRATE_PAGES: u32 = 25;
    /// Free pages of one node (NR_FREE_PAGES summed over its zones), read at the entry and at
    /// the exit of `__add_pages` (or of `arch_add_memory` when that opens the window): one
    /// event per node whose `node_data[n]` is set, nodes 0..NODE_FREE_MAX_NODES.
    pub const NODE_FREE_PAGES: u32 = 26;

    // Free page reporting (mm/page_reporting.c).
    /// `page_reporting_process(struct work_struct *)`: one report cycle (every zone's free
    /// lists walked once, at most every 2 s). Also opens the per-CPU report-cycle gate
    /// (`REPORT_CYCLE`) that the isolate/put-back counters check.
    pub const PAGE_REPORTING_PROCESS: u32 = 27;
    /// The device's report callback (virtio-balloon: `virtballoon_free_page_report(prdev,
    /// sgl, nents)`): one batch of free pages handed to the host; returns once the host acked.
    pub const PAGE_REPORT: u32 = 28;
    /// `page_reporting_register(prdev)`: a reporting device registers; the order is chosen.
    pub const PAGE_REPORTING_REGISTER: u32 = 29;
}

/// Free page reporting's per-zone counters: nodes 0..this (slot `node * ZONES_PER_NODE +
/// zone`); slot `REPORT_NODES * ZONES_PER_NODE` collects pages whose zone was not readable.
pub const REPORT_NODES: u32 = 64;
pub const REPORT_SLOTS: u32 = REPORT_NODES * ZONES_PER_NODE + 1;
/// Orders counted per zone (0..this; higher orders count in the last).
pub const REPORT_ORDERS: usize = 16;
/// Scatterlist entries the report callback's program reads at most (the kernel's
/// PAGE_REPORTING_CAPACITY is 32 and `prdev->capacity` never exceeds it).
pub const REPORT_MAX_NENTS: u64 = 32;

/// One zone's pages taken off the free lists for reporting (`__isolate_free_page`) and put
/// back after the report (`__putback_isolated_page`), by order: calls, each 2^order pages.
/// Counted only by the task inside `page_reporting_process` on that CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportCounts {
    pub isolated: [u64; REPORT_ORDERS],
    pub putback: [u64; REPORT_ORDERS],
}

impl Default for ReportCounts {
    fn default() -> ReportCounts {
        ReportCounts {
            isolated: [0; REPORT_ORDERS],
            putback: [0; REPORT_ORDERS],
        }
    }
}

/// Nodes whose free pages `kind::NODE_FREE_PAGES` reports (0..this).
pub const NODE_FREE_MAX_NODES: u64 = 8;
/// Zones per node the kernel side sums at most (a loop bound; the kernel's own count is
/// `KernelOffsets::max_nr_zones`).
pub const NODE_FREE_MAX_ZONES: u64 = 8;

/// Slots of the per-CPU slow-path counters: `node * ZONES_PER_NODE + zone index`.
pub const ZONES_PER_NODE: u32 = 8;
pub const SLOWPATH_SLOTS: u32 = 1024;

/// Meaning of `RawEvent::args[i]`, per kind.
pub mod arg {
    // add_memory_resource(int nid, struct resource *res, mhp_t mhp_flags)
    /// nid argument: a memory-group id when `MHP_NID_IS_MGID` is set.
    pub const AMR_NID_ARG: usize = 0;
    pub const AMR_RES_START: usize = 1;
    /// Inclusive, as in `struct resource`.
    pub const AMR_RES_END: usize = 2;
    pub const AMR_MHP_FLAGS: usize = 3;

    // arch_add_memory(int nid, u64 start, u64 size, struct mhp_params *params)
    pub const AAM_NID: usize = 0;
    pub const AAM_START: usize = 1;
    pub const AAM_SIZE: usize = 2;
    /// 1 when `params->altmap` was non-NULL (the memmap is self-hosted).
    pub const AAM_HAS_ALTMAP: usize = 3;
    pub const AAM_ALTMAP_BASE_PFN: usize = 4;
    /// `altmap->alloc` after the call: pages of the range used for its own memmap.
    pub const AAM_ALTMAP_ALLOC: usize = 5;
    /// `altmap->align` after the call: pages skipped for alignment inside the altmap.
    pub const AAM_ALTMAP_ALIGN: usize = 6;

    // Functions taking (pfn, nr_pages, struct zone *zone, ...): the zone is decoded into
    // node and zone index at the same slots for all of them.
    pub const PFN: usize = 0;
    pub const NR_PAGES: usize = 1;
    pub const ZONE_NODE: usize = 2;
    pub const ZONE_IDX: usize = 3;
    /// Zone span (`zone_start_pfn`, `spanned_pages`) at entry and at exit.
    pub const SPAN_START_BEFORE: usize = 4;
    pub const SPAN_PAGES_BEFORE: usize = 5;
    pub const SPAN_START_AFTER: usize = 6;
    pub const SPAN_PAGES_AFTER: usize = 7;

    // set_zone_contiguous(struct zone *zone): node/idx at ZONE_NODE/ZONE_IDX, then:
    pub const CONTIG_BEFORE: usize = 4;
    pub const CONTIG_AFTER: usize = 5;
    pub const CONTIG_SPAN_START: usize = 6;
    pub const CONTIG_SPAN_PAGES: usize = 7;

    // try_remove_memory(u64 start, u64 size)
    pub const TRM_START: usize = 0;
    pub const TRM_SIZE: usize = 1;

    // __add_pages(int nid, unsigned long pfn, unsigned long nr_pages, struct mhp_params *params)
    pub const AP_NID: usize = 0;
    pub const AP_PFN: usize = 1;
    pub const AP_NR_PAGES: usize = 2;
    pub const AP_HAS_ALTMAP: usize = 3;

    // kmem:mm_page_alloc inside __add_pages
    pub const PA_PFN: usize = 0;
    pub const PA_ORDER: usize = 1;
    /// The enclosing __add_pages call: its nid and first pfn.
    pub const PA_WINDOW_NID: usize = 2;
    pub const PA_WINDOW_PFN: usize = 3;

    // memmap_init_range(unsigned long size, int nid, unsigned long zone, unsigned long start_pfn,
    //                   unsigned long zone_end_pfn, enum meminit_context context, ...)
    pub const MIR_SIZE: usize = 0;
    pub const MIR_NID: usize = 1;
    pub const MIR_ZONE_IDX: usize = 2;
    pub const MIR_START_PFN: usize = 3;
    pub const MIR_CONTEXT: usize = 4;

    // memmap_init_zone_device(struct zone *zone, unsigned long start_pfn, unsigned long nr_pages,
    //                         struct dev_pagemap *pgmap): PFN, NR_PAGES, ZONE_NODE, ZONE_IDX, then:
    pub const PGMAP_TYPE: usize = 4;
    pub const PGMAP_FLAGS: usize = 5;

    // memremap_pages(struct dev_pagemap *pgmap, int nid) / memunmap_pages(pgmap):
    // PGMAP_TYPE, PGMAP_FLAGS at 4, 5 as above, and:
    pub const MR_NID: usize = 0;
    pub const MR_RANGE_START: usize = 1;
    /// Inclusive, as in `struct range`.
    pub const MR_RANGE_END: usize = 2;
    pub const MR_NR_RANGE: usize = 3;

    // memory_subsys_online/offline(struct device *dev): the memory_block around `dev`.
    // ZONE_NODE/ZONE_IDX (2, 3) carry `mem->zone` (online: at exit; offline: at entry), with
    // ZONE_IDX u64::MAX when it was NULL.
    /// `mem->start_section_nr` at exit (the block's first pfn is this << PFN_SECTION_SHIFT).
    pub const BLK_SECTION_NR: usize = 0;
    /// `mem->nid` at exit.
    pub const BLK_NID: usize = 1;
    /// `mem->online_type` at entry (MMOP_*: what was asked; the kernel resets it at exit).
    pub const BLK_ONLINE_TYPE: usize = 4;
    /// Online only: `online_policy` and `auto_movable_ratio` at exit (u64::MAX when unknown).
    pub const BLK_POLICY: usize = 5;
    pub const BLK_RATIO: usize = 6;

    // start_isolate_page_range(unsigned long start_pfn, unsigned long end_pfn, ...)
    pub const ISO_START_PFN: usize = 0;
    /// Exclusive.
    pub const ISO_END_PFN: usize = 1;

    // memory_notify(unsigned long val | enum memory_block_state, void *v) and
    // node_notify(unsigned long val, void *v). `RawEvent::ret` is the raw notifier value
    // (NOTIFY_*; the decoder applies notifier_to_errno); NOTIFY_RAW_RET repeats it unsigned.
    pub const NOTIFY_ACTION: usize = 0;
    pub const NOTIFY_RAW_RET: usize = 1;
    /// 1 when the call was made inside offline_pages, 0 inside online_pages (also for the
    /// other sub-step kinds: slot 7 of every sub-step event).
    pub const STEP_IN_OFFLINE: usize = 7;

    // walk_system_ram_range(unsigned long start_pfn, unsigned long nr_pages, void *arg, func)
    pub const WSR_START_PFN: usize = 0;
    pub const WSR_NR_PAGES: usize = 1;
    /// `*(unsigned long *)arg` at exit: offline_pages' callback summed the System RAM pages.
    pub const WSR_RAM_PAGES: usize = 2;

    // dissolve_free_huge_pages/dissolve_free_hugetlb_folios(unsigned long start_pfn,
    //                                                       unsigned long end_pfn)
    pub const DHP_START_PFN: usize = 0;
    /// Exclusive.
    pub const DHP_END_PFN: usize = 1;

    // dump_page(struct page *page, const char *reason), read at exit.
    /// `(page - *vmemmap_base) / sizeof(struct page)`; u64::MAX when unknown.
    pub const DP_PFN: usize = 0;
    pub const DP_FLAGS: usize = 1;
    /// `page->_refcount` (atomic_t), as u32.
    pub const DP_REFCOUNT: usize = 2;
    /// `page->_mapcount` (atomic_t), as u32.
    pub const DP_MAPCOUNT: usize = 3;
    /// `page->page_type` (unsigned int).
    pub const DP_PAGE_TYPE: usize = 4;
    /// The reason string, NUL-padded, in two slots (5, 6), bytes in order (little-endian
    /// words): its first 15 bytes (bpf_probe_read_kernel_str keeps one for the NUL).
    pub const DP_REASON: usize = 5;
    pub const DP_REASON_LEN: usize = 16;

    // page_isolation:test_pages_isolated (trace record fields)
    pub const TPI_START_PFN: usize = 0;
    pub const TPI_END_PFN: usize = 1;
    pub const TPI_FIN_PFN: usize = 2;

    // migrate:mm_migrate_pages (trace record fields)
    pub const MMP_SUCCEEDED: usize = 0;
    pub const MMP_FAILED: usize = 1;
    /// `enum migrate_reason` (MR_MEMORY_HOTPLUG = 2 on 6.1-7.2).
    pub const MMP_REASON: usize = 2;

    // page_reporting_process (a report cycle), totals of the cycle from the per-CPU gate.
    /// Report callback calls made during the cycle.
    pub const PRC_REPORTS: usize = 0;
    /// Bytes handed to the host (sum of the scatterlist lengths of those calls).
    pub const PRC_BYTES: usize = 1;
    /// Pages (PAGE_SIZE) isolated for reporting during the cycle.
    pub const PRC_ISOLATED_PAGES: usize = 2;
    /// Report calls that failed (non-zero return: pages put back unreported).
    pub const PRC_FAILED: usize = 3;
    /// 1 when the totals are known (the cycle ended on the CPU it began on), else 0.
    pub const PRC_TOTALS_KNOWN: usize = 4;

    // The report callback (prdev, struct scatterlist *sgl, unsigned int nents).
    pub const PR_NENTS: usize = 0;
    /// Sum of `sgl[i].length`, i < min(nents, REPORT_MAX_NENTS).
    pub const PR_BYTES: usize = 1;
    /// Node and zone index of the first entry's page (`page->flags`); u64::MAX unknown.
    /// All entries of one call come from one zone (page_reporting_process_zone).
    pub const PR_NODE: usize = 2;
    pub const PR_ZONE: usize = 3;
    /// Bit n set when an entry of order n (length PAGE_SIZE << n) is in the list.
    pub const PR_ORDER_MASK: usize = 4;
    /// First entry's pfn (u64::MAX unknown).
    pub const PR_FIRST_PFN: usize = 5;
    /// 1 when the call came inside a report cycle whose beginning was seen (the thread's
    /// open cycle on this CPU), so that the pages it reports were counted as they were
    /// isolated; 0 for a cycle already running when tracing began.
    pub const PR_IN_SEEN_CYCLE: usize = 6;

    // page_reporting_register(prdev), read at exit.
    /// The kernel variable `page_reporting_order` (u64::MAX when its address is unknown).
    pub const PRR_ORDER: usize = 0;
    /// `prdev->order` (the device's wish; PAGE_REPORTING_ORDER_UNSPECIFIED = -1 or 0: none).
    pub const PRR_DEVICE_ORDER: usize = 1;
    /// `prdev->capacity` (7.x; u64::MAX where the member does not exist).
    pub const PRR_CAPACITY: usize = 2;

    // node free pages around __add_pages
    pub const NFP_NODE: usize = 0;
    pub const NFP_FREE_PAGES: usize = 1;
    /// 0: at entry (before the memmap is allocated), 1: at exit.
    pub const NFP_MOMENT: usize = 2;
    /// The window's first pfn (`__add_pages`' pfn argument).
    pub const NFP_WINDOW_PFN: usize = 3;
}

/// One traced call, emitted at function exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawEvent {
    pub kind: u32,
    /// Return value (0 for void functions).
    pub ret: i32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at function exit.
    pub ts_ns: u64,
    pub duration_ns: u64,
    /// `bpf_get_current_pid_tgid()`: tgid << 32 | pid.
    pub pid_tgid: u64,
    pub args: [u64; NR_ARGS],
}

impl RawEvent {
    pub const SIZE: usize = core::mem::size_of::<RawEvent>();
}

/// Offset value meaning "this member does not exist on the running kernel".
pub const NO_OFFSET: u64 = u64::MAX;

/// Struct member offsets (bytes) and sizes, resolved in userspace from the running kernel's BTF
/// (plus one kernel address, from kallsyms), and written into the eBPF object's `OFFSETS`
/// global before load. Rust eBPF has no CO-RE, so a layout baked in at build time would read
/// wrong fields on another kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOffsets {
    pub resource_start: u64,
    pub resource_end: u64,
    pub mhp_params_altmap: u64,
    pub altmap_base_pfn: u64,
    pub altmap_align: u64,
    pub altmap_alloc: u64,
    pub zone_pgdat: u64,
    pub zone_start_pfn: u64,
    pub zone_spanned_pages: u64,
    pub zone_contiguous: u64,
    /// `sizeof(struct zone)`: turns a zone pointer into its index in `node_zones`.
    pub zone_size: u64,
    pub pgdat_node_zones: u64,
    pub pgdat_node_id: u64,
    pub pgmap_type: u64,
    pub pgmap_flags: u64,
    pub pgmap_nr_range: u64,
    /// `dev_pagemap.range` (first of `ranges[]`): `struct range { u64 start, end; }`.
    pub pgmap_range: u64,
    /// `struct trace_event_raw_mm_page_alloc` members (the tracepoint's record).
    pub tp_page_alloc_pfn: u64,
    pub tp_page_alloc_order: u64,
    /// Address of the kernel variable `vmemmap_base` (x86-64, from /proc/kallsyms; 0 when
    /// unknown). Its value is the address of the memmap's first `struct page`, which turns a
    /// page pointer into its pfn.
    pub vmemmap_base_addr: u64,
    /// `sizeof(struct page)`.
    pub page_size: u64,
    /// `struct memory_block` members.
    pub mem_dev: u64,
    pub mem_start_section_nr: u64,
    pub mem_online_type: u64,
    pub mem_nid: u64,
    pub mem_zone: u64,
    /// `struct page` members (`_mapcount` and `page_type` share a union on 6.x).
    pub page_flags: u64,
    pub page_refcount: u64,
    pub page_mapcount: u64,
    pub page_type: u64,
    /// `zone.vm_stat` (atomic_long_t[]) and the index of NR_FREE_PAGES in it
    /// (`enum zone_stat_item`).
    pub zone_vm_stat: u64,
    pub nr_free_pages_idx: u64,
    /// MAX_NR_ZONES (`__MAX_NR_ZONES` of `enum zone_type`; 0 when unknown).
    pub max_nr_zones: u64,
    /// Address of the kernel array `node_data` (`struct pglist_data *node_data[]`, x86-64,
    /// from /proc/kallsyms; 0 when unknown).
    pub node_data_addr: u64,
    /// Addresses of mm/memory_hotplug.c's `online_policy` (int: 0 contig-zones, 1 auto-movable)
    /// and `auto_movable_ratio` (unsigned int, percent), from /proc/kallsyms (0 when unknown):
    /// the policy in force at each online, read as it happens.
    pub online_policy_addr: u64,
    pub auto_movable_ratio_addr: u64,
    /// `struct trace_event_raw_test_pages_isolated` members.
    pub tp_tpi_start_pfn: u64,
    pub tp_tpi_end_pfn: u64,
    pub tp_tpi_fin_pfn: u64,
    /// `struct trace_event_raw_mm_migrate_pages` members.
    pub tp_mmp_succeeded: u64,
    pub tp_mmp_failed: u64,
    pub tp_mmp_reason: u64,
    /// `zone.pages_with_online_memmap` (kernels that derive contiguity from it; NO_OFFSET on
    /// 6.1, 6.12 and 7.2).
    pub zone_pages_with_online_memmap: u64,
    /// Where the node and zone sit in `page->flags` (bit and width; width 0: unknown).
    pub page_flags_node_shift: u64,
    pub page_flags_node_bits: u64,
    pub page_flags_zone_shift: u64,
    pub page_flags_zone_bits: u64,
    /// `struct scatterlist`: size, `page_link`, `length`.
    pub sg_size: u64,
    pub sg_page_link: u64,
    pub sg_length: u64,
    /// `struct page_reporting_dev_info` members (`capacity`: 7.x only).
    pub prdev_order: u64,
    pub prdev_capacity: u64,
    /// Address of the kernel variable `page_reporting_order` (from /proc/kallsyms; 0 when
    /// unknown).
    pub page_reporting_order_addr: u64,
}

impl KernelOffsets {
    pub const UNRESOLVED: KernelOffsets = KernelOffsets {
        resource_start: NO_OFFSET,
        resource_end: NO_OFFSET,
        mhp_params_altmap: NO_OFFSET,
        altmap_base_pfn: NO_OFFSET,
        altmap_align: NO_OFFSET,
        altmap_alloc: NO_OFFSET,
        zone_pgdat: NO_OFFSET,
        zone_start_pfn: NO_OFFSET,
        zone_spanned_pages: NO_OFFSET,
        zone_contiguous: NO_OFFSET,
        zone_size: 0,
        pgdat_node_zones: NO_OFFSET,
        pgdat_node_id: NO_OFFSET,
        pgmap_type: NO_OFFSET,
        pgmap_flags: NO_OFFSET,
        pgmap_nr_range: NO_OFFSET,
        pgmap_range: NO_OFFSET,
        tp_page_alloc_pfn: NO_OFFSET,
        tp_page_alloc_order: NO_OFFSET,
        vmemmap_base_addr: 0,
        page_size: 0,
        mem_dev: NO_OFFSET,
        mem_start_section_nr: NO_OFFSET,
        mem_online_type: NO_OFFSET,
        mem_nid: NO_OFFSET,
        mem_zone: NO_OFFSET,
        page_flags: NO_OFFSET,
        page_refcount: NO_OFFSET,
        page_mapcount: NO_OFFSET,
        page_type: NO_OFFSET,
        zone_vm_stat: NO_OFFSET,
        nr_free_pages_idx: NO_OFFSET,
        max_nr_zones: 0,
        node_data_addr: 0,
        online_policy_addr: 0,
        auto_movable_ratio_addr: 0,
        tp_tpi_start_pfn: NO_OFFSET,
        tp_tpi_end_pfn: NO_OFFSET,
        tp_tpi_fin_pfn: NO_OFFSET,
        tp_mmp_succeeded: NO_OFFSET,
        tp_mmp_failed: NO_OFFSET,
        tp_mmp_reason: NO_OFFSET,
        zone_pages_with_online_memmap: NO_OFFSET,
        page_flags_node_shift: 0,
        page_flags_node_bits: 0,
        page_flags_zone_shift: 0,
        page_flags_zone_bits: 0,
        sg_size: 0,
        sg_page_link: NO_OFFSET,
        sg_length: NO_OFFSET,
        prdev_order: NO_OFFSET,
        prdev_capacity: NO_OFFSET,
        page_reporting_order_addr: 0,
    };
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain #[repr(C)] integers, no padding, no pointers.
    unsafe impl aya::Pod for super::RawEvent {}
    unsafe impl aya::Pod for super::KernelOffsets {}
    unsafe impl aya::Pod for super::ReportCounts {}
}
