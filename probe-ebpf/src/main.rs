//! mhpscope's kernel side: programs on the memory-hotplug path.
//!
//! Each traced function has two ways in: an fentry/fexit pair (preferred) and a kprobe/kretprobe
//! pair (the fallback when the kernel cannot attach a trampoline). Both share one body: the
//! entry side saves the timestamp, the scalar arguments and any "before" state per task; the
//! exit side emits one `RawEvent` with the arguments, the return value, the duration and any
//! "after" state. Struct fields are read at offsets that userspace resolved from the running
//! kernel's BTF (`OFFSETS`); scalar arguments need none.
//!
//! The sub-steps of online_pages/offline_pages (isolation, notifiers, the RAM walk, hugetlb
//! dissolving, dumped pages, and the `test_pages_isolated` and `mm_migrate_pages` tracepoints)
//! emit only for a task inside one of those two calls: anywhere else their programs return
//! after one array read (`STEP_CTL`), so a migration or a page dump elsewhere in the system costs
//! nothing more.
//!
//! Besides: `kmem:mm_page_alloc` programs (raw tracepoint, or classic as the fallback) that
//! report allocations made inside `__add_pages` (where a hot-add allocates its memmap), and
//! per-CPU counters of slow-path `__pageblock_pfn_to_page` calls, which sit on compaction's hot
//! path and so emit no events.
#![no_std]
#![no_main]

use aya_ebpf::{
    cty::c_void,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{fentry, fexit, kprobe, kretprobe, map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{
        FEntryContext, FExitContext, ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext,
    },
    EbpfContext,
};
use aya_log_ebpf::warn;
use probe_common::ReportCounts;
use probe_common::{
    arg, kind, KernelOffsets, RawEvent, BPF_RB_NO_WAKEUP, NODE_FREE_MAX_NODES, NODE_FREE_MAX_ZONES,
    NO_OFFSET, REPORT_MAX_NENTS, REPORT_NODES, REPORT_ORDERS, REPORT_SLOTS, SLOWPATH_SLOTS, ZONES_PER_NODE,
};

/// Written by userspace before load (`EbpfLoader::set_global`).
#[no_mangle]
static OFFSETS: KernelOffsets = KernelOffsets::UNRESOLVED;

/// Events to userspace. Submitted without wakeups; userspace drains on a short timer.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Per-task entry state, keyed by `tid << 32 | kind`, so nested probes of different functions
/// (online_pages -> move_pfn_range_to_zone -> set_zone_contiguous) do not clash. The exit side
/// marks its entry used (`ts == 0`) instead of deleting it, and the task's next call of the same
/// function writes over it in place: one lookup on each side instead of an insert and a delete,
/// which take the bucket lock and the free list. LRU, so that entries of tasks long gone make
/// room for new ones.
#[map]
static STARTS: LruHashMap<u64, Start> = LruHashMap::with_max_entries(4096, 0);

/// [0]: 1 once userspace has attached every probe and is about to read the recording's start
/// clock (`Tracer::arm`). Until then the entry side remembers nothing (no call, window,
/// online/offline or report cycle is opened) and the counters stay 0. Probes attach one by
/// one, over seconds on a slow machine: a call running meanwhile would be seen by some of
/// them and not by others (a report cycle's reports without the pages it isolated first),
/// and before the recording's start.
#[map]
static ARMED: Array<u32> = Array::with_max_entries(1, 0);

#[inline(always)]
fn armed() -> bool {
    ARMED.get(0).is_some_and(|v| *v != 0)
}

/// Events that did not fit in the ring buffer: counted here, reported by userspace.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Open `__add_pages` windows by task: page allocations of that task are the memmap's.
#[map]
static WINDOWS: HashMap<u64, Window> = HashMap::with_max_entries(256, 0);

/// [0]: number of open windows, so that the page-allocation tracepoint (which fires on every
/// allocation in the system) returns after one array read when no hot-add is running.
/// [1]: set by userspace when `__add_pages` could not be attached and `arch_add_memory` (its
/// caller) opens the window instead.
/// [2]: set by userspace when the `node_free_pages` probe is on: the window's opening and
/// closing also report each node's free pages.
#[map]
static WINDOW_CTL: Array<u64> = Array::with_max_entries(3, 0);

/// [0]: online_pages and offline_pages calls in progress (all tasks). The sub-step programs
/// return after reading it when it is 0, and otherwise look for the current task's own
/// online_pages/offline_pages entry in `STARTS`. Plain read-modify-write, like the window
/// count: the callers of both hold device_hotplug_lock, so they never run concurrently. A
/// count left too high (an exit missed) only costs lookups; it never goes below 0.
#[map]
static STEP_CTL: Array<u64> = Array::with_max_entries(1, 0);

/// Slow-path `__pageblock_pfn_to_page` calls per zone (`node * ZONES_PER_NODE + zone`).
#[map]
static SLOWPATH: PerCpuArray<u64> = PerCpuArray::with_max_entries(SLOWPATH_SLOTS, 0);

/// The per-CPU free-page-reporting gate: the thread inside `page_reporting_process` on this
/// CPU (0: none), and that cycle's running totals. `__isolate_free_page` and
/// `__putback_isolated_page` are also called by compaction, page isolation and CMA: outside
/// a report cycle their programs return after this one per-CPU read. The thread id check
/// keeps out tasks that run on the CPU while the report worker sleeps waiting for the host.
#[map]
static REPORT_CYCLE: PerCpuArray<Cycle> = PerCpuArray::with_max_entries(1, 0);

/// Pages isolated for reporting and put back, per zone (`node * ZONES_PER_NODE + zone`) and
/// order; sampled by userspace.
#[map]
static REPORTED: PerCpuArray<ReportCounts> = PerCpuArray::with_max_entries(REPORT_SLOTS, 0);

/// `__page_reporting_notify` calls (free page reporting requested: a free of an order >=
/// page_reporting_order); sampled by userspace.
#[map]
static REPORT_REQUESTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Cycle {
    tid: u64,
    reports: u64,
    bytes: u64,
    isolated_pages: u64,
    failed: u64,
}

const NR_SAVED: usize = 6;

#[repr(C)]
#[derive(Clone, Copy)]
struct Start {
    /// Entry time; 0 once the exit side has used it.
    ts: u64,
    /// "Before" state: the zone span, or `zone->contiguous`.
    a: u64,
    b: u64,
    args: [u64; NR_SAVED],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Window {
    nid: u64,
    pfn: u64,
}

/// Reads one resolved offset. Volatile: the global is patched after compilation, so the
/// compiler must not fold its initial value.
macro_rules! off {
    ($field:ident) => {
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(OFFSETS.$field)) }
    };
}

#[inline(always)]
fn kread<T: Copy + Default>(base: u64, off: u64) -> T {
    if base == 0 || off == NO_OFFSET {
        return T::default();
    }
    unsafe { bpf_probe_read_kernel((base + off) as *const T) }.unwrap_or_default()
}

/// A 32-bit kernel variable at `addr` (from kallsyms), u64::MAX when its address is unknown.
#[inline(always)]
fn kernel_u32(addr: u64) -> u64 {
    if addr == 0 {
        return u64::MAX;
    }
    unsafe { bpf_probe_read_kernel(addr as *const u32) }.map_or(u64::MAX, |v| v as u64)
}

/// Arguments, whichever way the program was attached.
trait Args: EbpfContext {
    /// A scalar argument (an integer, or a pointer used only as a number).
    fn arg(&self, n: usize) -> u64;
    /// A struct pointer argument, as a plain number.
    fn ptr_arg(&self, n: usize) -> u64;
}

/// Scalars load straight from the context. The verifier types a struct pointer loaded that way
/// by BTF and refuses arithmetic on it (such as `zone - node_zones`), so pointers are copied out
/// of their slot with a probe read, which yields a plain number.
impl Args for FEntryContext {
    #[inline(always)]
    fn arg(&self, n: usize) -> u64 {
        unsafe { *(self.as_ptr() as *const u64).add(n) }
    }

    #[inline(always)]
    fn ptr_arg(&self, n: usize) -> u64 {
        unsafe { bpf_probe_read_kernel((self.as_ptr() as *const u64).add(n)) }.unwrap_or(0)
    }
}

impl Args for ProbeContext {
    #[inline(always)]
    fn arg(&self, n: usize) -> u64 {
        ProbeContext::arg::<u64>(self, n).unwrap_or(0)
    }

    #[inline(always)]
    fn ptr_arg(&self, n: usize) -> u64 {
        Args::arg(self, n)
    }
}

/// The arguments each traced function's programs use: how many (the verifier refuses a load past
/// the function's last argument) and which of them are struct pointers (bit n for argument n).
/// The prototypes agree on these arguments on 6.1, 6.12 and 7.2; a kernel where one differs
/// refuses the fentry program, and the probe falls back to its kprobe.
#[inline(always)]
const fn args_used(kind: u32) -> (usize, u32) {
    match kind {
        // (int nid, struct resource *res, mhp_t mhp_flags)
        kind::ADD_MEMORY_RESOURCE => (3, 0b010),
        // (int nid, u64|unsigned long, u64|unsigned long, struct mhp_params *params)
        kind::ARCH_ADD_MEMORY | kind::ADD_PAGES => (4, 0b1000),
        // (unsigned long pfn, unsigned long nr_pages, struct zone *zone, ...)
        kind::MHP_INIT_MEMMAP_ON_MEMORY | kind::ONLINE_PAGES | kind::OFFLINE_PAGES => (3, 0b100),
        // (struct zone *zone, unsigned long start_pfn, unsigned long nr_pages, ...)
        kind::MOVE_PFN_RANGE_TO_ZONE | kind::REMOVE_PFN_RANGE_FROM_ZONE => (3, 0b001),
        // (struct zone *zone)
        kind::SET_ZONE_CONTIGUOUS => (1, 0b1),
        // (u64 start, u64 size)
        kind::TRY_REMOVE_MEMORY => (2, 0),
        // (unsigned long size, int nid, unsigned long zone, unsigned long start_pfn,
        //  unsigned long zone_end_pfn, enum meminit_context context, ...)
        kind::MEMMAP_INIT_RANGE => (6, 0),
        // (struct zone *zone, unsigned long start_pfn, unsigned long nr_pages, struct dev_pagemap *)
        kind::MEMMAP_INIT_ZONE_DEVICE => (4, 0b1001),
        // memremap_pages(struct dev_pagemap *pgmap, int nid), memunmap_pages(struct dev_pagemap *)
        kind::MEMREMAP_PAGES => (2, 0b01),
        kind::MEMUNMAP_PAGES => (1, 0b1),
        // memory_subsys_online/offline(struct device *dev)
        kind::MEMORY_SUBSYS_ONLINE | kind::MEMORY_SUBSYS_OFFLINE => (1, 0b1),
        // start_isolate_page_range(unsigned long start_pfn, unsigned long end_pfn, ...),
        // dissolve_free_huge_pages/_hugetlb_folios(unsigned long start_pfn, unsigned long end_pfn)
        kind::START_ISOLATE_PAGE_RANGE | kind::DISSOLVE_FREE_HUGE_PAGES => (2, 0),
        // memory_notify(unsigned long val | enum memory_block_state, void *v),
        // node_notify(unsigned long val, void *v)
        kind::MEMORY_NOTIFY | kind::NODE_NOTIFY => (1, 0),
        // walk_system_ram_range(unsigned long start_pfn, unsigned long nr_pages, void *arg, ...)
        kind::WALK_SYSTEM_RAM_RANGE => (3, 0b100),
        // dump_page(struct page *page, const char *reason)
        kind::DUMP_PAGE => (2, 0b11),
        // page_reporting_process(struct work_struct *work): nothing read.
        kind::PAGE_REPORTING_PROCESS => (0, 0),
        // report(struct page_reporting_dev_info *prdev, struct scatterlist *sgl, unsigned int nents)
        kind::PAGE_REPORT => (3, 0b011),
        // page_reporting_register(struct page_reporting_dev_info *prdev)
        kind::PAGE_REPORTING_REGISTER => (1, 0b1),
        _ => (0, 0),
    }
}

/// The calling task's thread id and this function's kind.
#[inline(always)]
fn task_key(pid_tgid: u64, kind: u32) -> u64 {
    (pid_tgid << 32) | kind as u64
}

struct ZoneInfo {
    node: u64,
    idx: u64,
    start_pfn: u64,
    spanned: u64,
}

#[inline(always)]
fn zone_node_idx(zone: u64) -> (u64, u64) {
    let pgdat: u64 = kread(zone, off!(zone_pgdat));
    let node: i32 = kread(pgdat, off!(pgdat_node_id));
    let zones = pgdat + off!(pgdat_node_zones);
    let size = off!(zone_size);
    let idx = if size != 0 && pgdat != 0 && zone >= zones {
        (zone - zones) / size
    } else {
        u64::MAX
    };
    (node as i64 as u64, idx)
}

#[inline(always)]
fn zone_info(zone: u64) -> ZoneInfo {
    let (node, idx) = zone_node_idx(zone);
    ZoneInfo {
        node,
        idx,
        start_pfn: kread(zone, off!(zone_start_pfn)),
        spanned: kread(zone, off!(zone_spanned_pages)),
    }
}

fn fill_zone(ev: &mut RawEvent, z: &ZoneInfo) {
    ev.args[arg::ZONE_NODE] = z.node;
    ev.args[arg::ZONE_IDX] = z.idx;
}

/// The open-window count. Plain read-modify-write is enough: every `__add_pages` caller holds
/// mem_hotplug_lock (`mem_hotplug_begin`), so windows never open or close concurrently. (The
/// bpf target has no atomic fetch-add in Rust.)
#[inline(always)]
fn adjust_window_count(delta: i64) {
    if let Some(p) = WINDOW_CTL.get_ptr_mut(0) {
        unsafe { *p = (*p as i64 + delta).max(0) as u64 };
    }
}

#[inline(always)]
fn window_by_caller() -> bool {
    WINDOW_CTL.get(1).copied().unwrap_or(0) != 0
}

#[inline(always)]
fn open_window<C: EbpfContext>(ctx: &C, nid: u64, pfn: u64) {
    if WINDOWS
        .insert(&bpf_get_current_pid_tgid(), &Window { nid, pfn }, 0)
        .is_ok()
    {
        adjust_window_count(1);
    }
    emit_node_free_pages(ctx, 0, pfn);
}

#[inline(always)]
fn close_window<C: EbpfContext>(ctx: &C, pfn: u64) {
    if WINDOWS.remove(&bpf_get_current_pid_tgid()).is_ok() {
        adjust_window_count(-1);
    }
    emit_node_free_pages(ctx, 1, pfn);
}

/// One `NODE_FREE_PAGES` event per node 0..NODE_FREE_MAX_NODES whose `node_data[n]` is set:
/// NR_FREE_PAGES summed over its zones (each clamped at 0, as `zone_page_state` does). Both
/// loops have constant bounds; a hot-add runs this twice.
#[inline(always)]
fn emit_node_free_pages<C: EbpfContext>(ctx: &C, moment: u64, window_pfn: u64) {
    if WINDOW_CTL.get(2).copied().unwrap_or(0) == 0 {
        return;
    }
    let node_data = off!(node_data_addr);
    let zones = off!(pgdat_node_zones);
    let vm_stat = off!(zone_vm_stat);
    let idx = off!(nr_free_pages_idx);
    let zone_size = off!(zone_size);
    let nr_zones = off!(max_nr_zones);
    if node_data == 0 || zones == NO_OFFSET || vm_stat == NO_OFFSET || idx == NO_OFFSET || zone_size == 0 {
        return;
    }
    let stat = zones + vm_stat + idx * 8;
    let pid_tgid = bpf_get_current_pid_tgid();
    let mut n = 0;
    while n < NODE_FREE_MAX_NODES {
        let pgdat: u64 = kread(node_data, n * 8);
        if pgdat != 0 {
            let mut free: u64 = 0;
            let mut z = 0;
            while z < NODE_FREE_MAX_ZONES && z < nr_zones {
                let v: i64 = kread(pgdat, stat + z * zone_size);
                if v > 0 {
                    free += v as u64;
                }
                z += 1;
            }
            let mut ev = RawEvent {
                kind: kind::NODE_FREE_PAGES,
                ret: 0,
                ts_ns: unsafe { bpf_ktime_get_ns() },
                duration_ns: 0,
                pid_tgid,
                args: [0; probe_common::NR_ARGS],
            };
            ev.args[arg::NFP_NODE] = n;
            ev.args[arg::NFP_FREE_PAGES] = free;
            ev.args[arg::NFP_MOMENT] = moment;
            ev.args[arg::NFP_WINDOW_PFN] = window_pfn;
            emit(ctx, &ev);
        }
        n += 1;
    }
}

/// The online/offline count (`STEP_CTL[0]`).
#[inline(always)]
fn adjust_step_count(delta: i64) {
    if let Some(p) = STEP_CTL.get_ptr_mut(0) {
        unsafe { *p = (*p as i64 + delta).max(0) as u64 };
    }
}

#[inline(always)]
fn in_call(pid_tgid: u64, kind: u32) -> bool {
    unsafe { STARTS.get(&task_key(pid_tgid, kind)) }.is_some_and(|s| s.ts != 0)
}

/// Whether the current task is inside offline_pages (Some(true)) or online_pages
/// (Some(false)). Outside any online/offline in the system: one array read.
#[inline(always)]
fn in_online_offline(pid_tgid: u64) -> Option<bool> {
    if STEP_CTL.get(0).copied().unwrap_or(0) == 0 {
        return None;
    }
    if in_call(pid_tgid, kind::OFFLINE_PAGES) {
        Some(true)
    } else if in_call(pid_tgid, kind::ONLINE_PAGES) {
        Some(false)
    } else {
        None
    }
}

/// The kinds that report only from inside online_pages/offline_pages.
#[inline(always)]
const fn is_sub_step(kind: u32) -> bool {
    matches!(
        kind,
        kind::START_ISOLATE_PAGE_RANGE
            | kind::MEMORY_NOTIFY
            | kind::NODE_NOTIFY
            | kind::WALK_SYSTEM_RAM_RANGE
            | kind::DISSOLVE_FREE_HUGE_PAGES
            | kind::DUMP_PAGE
    )
}

/// Entry side, shared by fentry and kprobe programs. `kind` is a constant at every call site,
/// so each program keeps only its own branch.
#[inline(always)]
fn on_entry<C: Args>(ctx: &C, kind: u32) -> u32 {
    if !armed() {
        return 0;
    }
    // Sub-steps: only inside online_pages/offline_pages; `b` remembers which.
    let mut in_offline = 0;
    if is_sub_step(kind) {
        match in_online_offline(bpf_get_current_pid_tgid()) {
            // offline_pages' RAM walk only: other callers' `arg` is something else.
            Some(false) if kind == kind::WALK_SYSTEM_RAM_RANGE => return 0,
            Some(offline) => in_offline = offline as u64,
            None => return 0,
        }
    }
    let (used, pointers) = args_used(kind);
    let mut args = [0u64; NR_SAVED];
    let mut i = 0;
    while i < used && i < NR_SAVED {
        args[i] = if pointers & (1 << i) != 0 {
            ctx.ptr_arg(i)
        } else {
            ctx.arg(i)
        };
        i += 1;
    }
    let (a, b) = match kind {
        // The span before; the exit side finds the node and zone index.
        kind::MOVE_PFN_RANGE_TO_ZONE | kind::REMOVE_PFN_RANGE_FROM_ZONE => (
            kread(args[0], off!(zone_start_pfn)),
            kread(args[0], off!(zone_spanned_pages)),
        ),
        kind::SET_ZONE_CONTIGUOUS => (kread::<u8>(args[0], off!(zone_contiguous)) as u64, 0),
        kind::ADD_PAGES => {
            open_window(ctx, args[0], args[1]);
            (0, 0)
        }
        kind::ARCH_ADD_MEMORY => {
            if window_by_caller() {
                // Page frame of the range start: arch_add_memory takes bytes.
                open_window(ctx, args[0], args[1] >> 12);
            }
            (0, 0)
        }
        kind::ONLINE_PAGES | kind::OFFLINE_PAGES => {
            adjust_step_count(1);
            (0, 0)
        }
        kind::PAGE_REPORTING_PROCESS => {
            open_report_cycle(bpf_get_current_pid_tgid());
            (0, 0)
        }
        // The memory_block around its `dev`; what was asked (reset at exit), and for an
        // offline the zone it leaves (set to NULL on success).
        kind::MEMORY_SUBSYS_ONLINE | kind::MEMORY_SUBSYS_OFFLINE => {
            let dev_off = off!(mem_dev);
            if dev_off == NO_OFFSET || args[0] < dev_off {
                args[0] = 0;
            } else {
                args[0] -= dev_off;
            }
            let online_type = kread::<u32>(args[0], off!(mem_online_type)) as u64;
            let zone = if kind == kind::MEMORY_SUBSYS_OFFLINE {
                kread::<u64>(args[0], off!(mem_zone))
            } else {
                0
            };
            (online_type, zone)
        }
        _ => (0, in_offline),
    };
    let start = Start {
        ts: unsafe { bpf_ktime_get_ns() },
        a,
        b,
        args,
    };
    let key = task_key(bpf_get_current_pid_tgid(), kind);
    match STARTS.get_ptr_mut(&key) {
        Some(p) => unsafe { *p = start },
        None => {
            let _ = STARTS.insert(&key, &start, 0);
        }
    }
    0
}

#[inline(always)]
fn new_event(kind: u32, start: &Start, pid_tgid: u64) -> RawEvent {
    let now = unsafe { bpf_ktime_get_ns() };
    RawEvent {
        kind,
        ret: 0,
        ts_ns: now,
        duration_ns: now - start.ts,
        pid_tgid,
        args: [0; probe_common::NR_ARGS],
    }
}

#[inline(always)]
fn emit<C: EbpfContext>(ctx: &C, ev: &RawEvent) {
    if EVENTS.output(ev, BPF_RB_NO_WAKEUP).is_err() {
        if let Some(p) = LOST.get_ptr_mut(0) {
            unsafe { *p += 1 };
        }
        warn!(ctx, "ring buffer full: lost an event of kind {}", ev.kind);
    }
}

/// A kernel return value as an errno-style int: pointers map to 0, error pointers to -errno.
#[inline(always)]
fn errno_of(ret: u64, returns_pointer: bool) -> i32 {
    if returns_pointer {
        if ret >= (-4095i64) as u64 {
            ret as i64 as i32
        } else {
            0
        }
    } else {
        ret as i32
    }
}

/// Exit side, shared by fexit and kretprobe programs. Calls whose entry was not seen (they began
/// before we attached) are dropped: their arguments are unknown.
#[inline(always)]
fn on_exit<C: EbpfContext>(ctx: &C, kind: u32, raw_ret: u64) -> u32 {
    if is_sub_step(kind) && STEP_CTL.get(0).copied().unwrap_or(0) == 0 {
        return 0;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(p) = STARTS.get_ptr_mut(&task_key(pid_tgid, kind)) else {
        return 0;
    };
    let start = unsafe { *p };
    if start.ts == 0 {
        return 0;
    }
    unsafe { (*p).ts = 0 };
    let a = &start.args;
    let mut ev = new_event(kind, &start, pid_tgid);
    if is_sub_step(kind) {
        ev.args[arg::STEP_IN_OFFLINE] = start.b;
    }
    match kind {
        kind::ADD_MEMORY_RESOURCE => {
            // add_memory_resource(int nid, struct resource *res, mhp_t mhp_flags)
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::AMR_NID_ARG] = a[0] as i32 as i64 as u64;
            ev.args[arg::AMR_RES_START] = kread(a[1], off!(resource_start));
            ev.args[arg::AMR_RES_END] = kread(a[1], off!(resource_end));
            ev.args[arg::AMR_MHP_FLAGS] = a[2] as u32 as u64;
        }
        kind::ARCH_ADD_MEMORY => {
            // arch_add_memory(int nid, u64 start, u64 size, struct mhp_params *params): the real
            // node, and the altmap whose `alloc` says how many pages now hold the memmap.
            if window_by_caller() {
                close_window(ctx, a[1] >> 12);
            }
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::AAM_NID] = a[0] as i32 as i64 as u64;
            ev.args[arg::AAM_START] = a[1];
            ev.args[arg::AAM_SIZE] = a[2];
            let altmap: u64 = kread(a[3], off!(mhp_params_altmap));
            if altmap != 0 {
                ev.args[arg::AAM_HAS_ALTMAP] = 1;
                ev.args[arg::AAM_ALTMAP_BASE_PFN] = kread(altmap, off!(altmap_base_pfn));
                ev.args[arg::AAM_ALTMAP_ALLOC] = kread(altmap, off!(altmap_alloc));
                ev.args[arg::AAM_ALTMAP_ALIGN] = kread(altmap, off!(altmap_align));
            }
        }
        kind::ADD_PAGES => {
            // __add_pages(int nid, unsigned long pfn, unsigned long nr_pages, struct mhp_params *)
            close_window(ctx, a[1]);
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::AP_NID] = a[0] as i32 as i64 as u64;
            ev.args[arg::AP_PFN] = a[1];
            ev.args[arg::AP_NR_PAGES] = a[2];
            ev.args[arg::AP_HAS_ALTMAP] = (kread::<u64>(a[3], off!(mhp_params_altmap)) != 0) as u64;
        }
        kind::MHP_INIT_MEMMAP_ON_MEMORY | kind::ONLINE_PAGES | kind::OFFLINE_PAGES => {
            // (unsigned long pfn, unsigned long nr_pages, struct zone *zone, ...)
            if kind != kind::MHP_INIT_MEMMAP_ON_MEMORY {
                adjust_step_count(-1);
            }
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::PFN] = a[0];
            ev.args[arg::NR_PAGES] = a[1];
            fill_zone(&mut ev, &zone_info(a[2]));
        }
        kind::MOVE_PFN_RANGE_TO_ZONE | kind::REMOVE_PFN_RANGE_FROM_ZONE => {
            // (struct zone *zone, unsigned long start_pfn, unsigned long nr_pages, ...): the span
            // before and after (shrink_zone_span and resize_zone_range are inlined).
            let z = zone_info(a[0]);
            fill_zone(&mut ev, &z);
            ev.args[arg::PFN] = a[1];
            ev.args[arg::NR_PAGES] = a[2];
            ev.args[arg::SPAN_START_BEFORE] = start.a;
            ev.args[arg::SPAN_PAGES_BEFORE] = start.b;
            ev.args[arg::SPAN_START_AFTER] = z.start_pfn;
            ev.args[arg::SPAN_PAGES_AFTER] = z.spanned;
        }
        kind::SET_ZONE_CONTIGUOUS => {
            let z = zone_info(a[0]);
            fill_zone(&mut ev, &z);
            ev.args[arg::CONTIG_BEFORE] = start.a;
            ev.args[arg::CONTIG_AFTER] = kread::<u8>(a[0], off!(zone_contiguous)) as u64;
            ev.args[arg::CONTIG_SPAN_START] = z.start_pfn;
            ev.args[arg::CONTIG_SPAN_PAGES] = z.spanned;
        }
        kind::TRY_REMOVE_MEMORY => {
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::TRM_START] = a[0];
            ev.args[arg::TRM_SIZE] = a[1];
        }
        kind::MEMMAP_INIT_RANGE => {
            ev.args[arg::MIR_SIZE] = a[0];
            ev.args[arg::MIR_NID] = a[1] as i32 as i64 as u64;
            ev.args[arg::MIR_ZONE_IDX] = a[2];
            ev.args[arg::MIR_START_PFN] = a[3];
            ev.args[arg::MIR_CONTEXT] = a[5] as u32 as u64;
        }
        kind::MEMMAP_INIT_ZONE_DEVICE => {
            ev.args[arg::PFN] = a[1];
            ev.args[arg::NR_PAGES] = a[2];
            fill_zone(&mut ev, &zone_info(a[0]));
            ev.args[arg::PGMAP_TYPE] = kread::<u32>(a[3], off!(pgmap_type)) as u64;
            ev.args[arg::PGMAP_FLAGS] = kread::<u32>(a[3], off!(pgmap_flags)) as u64;
        }
        kind::MEMREMAP_PAGES | kind::MEMUNMAP_PAGES => {
            // memremap_pages(struct dev_pagemap *pgmap, int nid) returns a pointer;
            // memunmap_pages(struct dev_pagemap *pgmap) returns nothing.
            let pgmap = a[0];
            if kind == kind::MEMREMAP_PAGES {
                ev.ret = errno_of(raw_ret, true);
                ev.args[arg::MR_NID] = a[1] as i32 as i64 as u64;
            } else {
                ev.args[arg::MR_NID] = u64::MAX;
            }
            let range = off!(pgmap_range);
            ev.args[arg::MR_RANGE_START] = kread(pgmap, range);
            ev.args[arg::MR_RANGE_END] = if range == NO_OFFSET {
                0
            } else {
                kread(pgmap, range + 8)
            };
            ev.args[arg::MR_NR_RANGE] = kread::<i32>(pgmap, off!(pgmap_nr_range)) as u64;
            ev.args[arg::PGMAP_TYPE] = kread::<u32>(pgmap, off!(pgmap_type)) as u64;
            ev.args[arg::PGMAP_FLAGS] = kread::<u32>(pgmap, off!(pgmap_flags)) as u64;
        }
        kind::MEMORY_SUBSYS_ONLINE | kind::MEMORY_SUBSYS_OFFLINE => {
            // a[0] is the memory_block (see on_entry).
            let mem = a[0];
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::BLK_SECTION_NR] = kread::<u64>(mem, off!(mem_start_section_nr));
            ev.args[arg::BLK_NID] = kread::<i32>(mem, off!(mem_nid)) as i64 as u64;
            ev.args[arg::BLK_ONLINE_TYPE] = start.a;
            let zone = if kind == kind::MEMORY_SUBSYS_ONLINE {
                kread::<u64>(mem, off!(mem_zone))
            } else {
                start.b
            };
            let (node, idx) = if zone != 0 {
                zone_node_idx(zone)
            } else {
                (u64::MAX, u64::MAX)
            };
            ev.args[arg::ZONE_NODE] = node;
            ev.args[arg::ZONE_IDX] = idx;
            if kind == kind::MEMORY_SUBSYS_ONLINE {
                // The policy that chose the zone, as it was then (it is writable at run time).
                ev.args[arg::BLK_POLICY] = kernel_u32(off!(online_policy_addr));
                ev.args[arg::BLK_RATIO] = kernel_u32(off!(auto_movable_ratio_addr));
            }
        }
        kind::START_ISOLATE_PAGE_RANGE | kind::DISSOLVE_FREE_HUGE_PAGES => {
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::ISO_START_PFN] = a[0];
            ev.args[arg::ISO_END_PFN] = a[1];
        }
        kind::MEMORY_NOTIFY | kind::NODE_NOTIFY => {
            // The raw notifier value (NOTIFY_*); userspace applies notifier_to_errno.
            ev.ret = raw_ret as i32;
            ev.args[arg::NOTIFY_ACTION] = a[0] as u32 as u64;
            ev.args[arg::NOTIFY_RAW_RET] = raw_ret as u32 as u64;
        }
        kind::WALK_SYSTEM_RAM_RANGE => {
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::WSR_START_PFN] = a[0];
            ev.args[arg::WSR_NR_PAGES] = a[1];
            // offline_pages passes &system_ram_pages (0 before the walk), which its callback sums.
            ev.args[arg::WSR_RAM_PAGES] = kread::<u64>(a[2], 0);
        }
        kind::DUMP_PAGE => {
            let page = a[0];
            ev.args[arg::DP_PFN] = page_pfn(page);
            ev.args[arg::DP_FLAGS] = kread::<u64>(page, off!(page_flags));
            ev.args[arg::DP_REFCOUNT] = kread::<u32>(page, off!(page_refcount)) as u64;
            ev.args[arg::DP_MAPCOUNT] = kread::<u32>(page, off!(page_mapcount)) as u64;
            ev.args[arg::DP_PAGE_TYPE] = kread::<u32>(page, off!(page_type)) as u64;
            let mut reason = [0u8; arg::DP_REASON_LEN];
            if a[1] != 0 {
                unsafe {
                    aya_ebpf::helpers::gen::bpf_probe_read_kernel_str(
                        reason.as_mut_ptr() as *mut c_void,
                        arg::DP_REASON_LEN as u32,
                        a[1] as *const c_void,
                    )
                };
            }
            let mut lo = [0u8; 8];
            let mut hi = [0u8; 8];
            lo.copy_from_slice(&reason[..8]);
            hi.copy_from_slice(&reason[8..]);
            ev.args[arg::DP_REASON] = u64::from_le_bytes(lo);
            ev.args[arg::DP_REASON + 1] = u64::from_le_bytes(hi);
        }
        kind::PAGE_REPORTING_PROCESS => {
            let cycle = close_report_cycle(pid_tgid);
            ev.args[arg::PRC_TOTALS_KNOWN] = cycle.is_some() as u64;
            if let Some(c) = cycle {
                ev.args[arg::PRC_REPORTS] = c.reports;
                ev.args[arg::PRC_BYTES] = c.bytes;
                ev.args[arg::PRC_ISOLATED_PAGES] = c.isolated_pages;
                ev.args[arg::PRC_FAILED] = c.failed;
            }
        }
        kind::PAGE_REPORT => {
            ev.ret = errno_of(raw_ret, false);
            fill_report(&mut ev, a[1], a[2] as u32 as u64);
            let cycle = current_cycle(pid_tgid);
            ev.args[arg::PR_IN_SEEN_CYCLE] = cycle.is_some() as u64;
            if let Some(c) = cycle {
                unsafe {
                    (*c).reports += 1;
                    (*c).bytes += ev.args[arg::PR_BYTES];
                    if ev.ret != 0 {
                        (*c).failed += 1;
                    }
                }
            }
        }
        kind::PAGE_REPORTING_REGISTER => {
            ev.ret = errno_of(raw_ret, false);
            let addr = off!(page_reporting_order_addr);
            ev.args[arg::PRR_ORDER] = if addr != 0 {
                kread::<u32>(addr, 0) as u64
            } else {
                u64::MAX
            };
            ev.args[arg::PRR_DEVICE_ORDER] = kread::<u32>(a[0], off!(prdev_order)) as u64;
            ev.args[arg::PRR_CAPACITY] = if off!(prdev_capacity) == NO_OFFSET {
                u64::MAX
            } else {
                kread::<u32>(a[0], off!(prdev_capacity)) as u64
            };
        }
        _ => return 0,
    }
    emit(ctx, &ev);
    0
}

// ---- free page reporting -------------------------------------------------------------------

#[inline(always)]
fn open_report_cycle(pid_tgid: u64) {
    if let Some(p) = REPORT_CYCLE.get_ptr_mut(0) {
        unsafe {
            *p = Cycle {
                tid: pid_tgid as u32 as u64,
                reports: 0,
                bytes: 0,
                isolated_pages: 0,
                failed: 0,
            }
        };
    }
}

/// The cycle the current thread runs on this CPU, if it is inside page_reporting_process
/// here. Outside a cycle: one per-CPU array read and a compare.
#[inline(always)]
fn current_cycle(pid_tgid: u64) -> Option<*mut Cycle> {
    let p = REPORT_CYCLE.get_ptr_mut(0)?;
    let tid = unsafe { (*p).tid };
    if tid == 0 || tid != pid_tgid as u32 as u64 {
        return None;
    }
    Some(p)
}

/// Ends the cycle: its totals, when it ends on the CPU it began on (a bound kworker does,
/// unless the CPU went offline meanwhile).
#[inline(always)]
fn close_report_cycle(pid_tgid: u64) -> Option<Cycle> {
    let p = current_cycle(pid_tgid)?;
    let c = unsafe { *p };
    unsafe { (*p).tid = 0 };
    Some(c)
}

/// A page's node and zone from `page->flags` (the layout userspace derived from BTF).
#[inline(always)]
fn page_node_zone(page: u64) -> (u64, u64) {
    let zone_bits = off!(page_flags_zone_bits);
    let node_bits = off!(page_flags_node_bits);
    if page == 0 || zone_bits == 0 || zone_bits > 8 || node_bits > 16 || off!(page_flags) == NO_OFFSET {
        return (u64::MAX, u64::MAX);
    }
    let flags: u64 = kread(page, off!(page_flags));
    let zone = (flags >> (off!(page_flags_zone_shift) & 63)) & ((1 << zone_bits) - 1);
    let node = if node_bits == 0 {
        0
    } else {
        (flags >> (off!(page_flags_node_shift) & 63)) & ((1 << node_bits) - 1)
    };
    (node, zone)
}

/// The report callback's scatterlist: entries, bytes, the zone of its pages, their orders.
#[inline(always)]
fn fill_report(ev: &mut RawEvent, sgl: u64, nents: u64) {
    ev.args[arg::PR_NENTS] = nents;
    ev.args[arg::PR_NODE] = u64::MAX;
    ev.args[arg::PR_ZONE] = u64::MAX;
    ev.args[arg::PR_FIRST_PFN] = u64::MAX;
    let size = off!(sg_size);
    let len_off = off!(sg_length);
    if sgl == 0 || size == 0 || len_off == NO_OFFSET {
        return;
    }
    let mut bytes = 0u64;
    let mut orders = 0u64;
    let mut i = 0;
    while i < REPORT_MAX_NENTS && i < nents {
        let len = kread::<u32>(sgl + i * size, len_off) as u64;
        bytes += len;
        let pages = len >> 12;
        if pages != 0 {
            // log2 of a power of two: the entry's order.
            let order = 63 - pages.leading_zeros() as u64;
            orders |= 1 << (order & 63);
        }
        i += 1;
    }
    ev.args[arg::PR_BYTES] = bytes;
    ev.args[arg::PR_ORDER_MASK] = orders;
    let link_off = off!(sg_page_link);
    if link_off != NO_OFFSET {
        // sg_page(): page_link without its SG_CHAIN/SG_END bits.
        let page = kread::<u64>(sgl, link_off) & !3;
        let (node, zone) = page_node_zone(page);
        ev.args[arg::PR_NODE] = node;
        ev.args[arg::PR_ZONE] = zone;
        ev.args[arg::PR_FIRST_PFN] = page_pfn(page);
    }
}

/// Counts one isolation (`putback` false) or put-back of a 2^order block for its zone, if the
/// current thread is inside a report cycle on this CPU.
#[inline(always)]
fn count_reported(page: u64, order: u64, putback: bool) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(c) = current_cycle(pid_tgid) else {
        return 0;
    };
    if !putback {
        unsafe { (*c).isolated_pages += 1 << (order & 31) };
    }
    let (node, zone) = page_node_zone(page);
    let slot = if node < REPORT_NODES as u64 && zone < ZONES_PER_NODE as u64 {
        (node * ZONES_PER_NODE as u64 + zone) as u32
    } else {
        REPORT_SLOTS - 1
    };
    let o = if order < REPORT_ORDERS as u64 {
        order as usize
    } else {
        REPORT_ORDERS - 1
    };
    if let Some(p) = REPORTED.get_ptr_mut(slot) {
        unsafe {
            if putback {
                (*p).putback[o] += 1;
            } else {
                (*p).isolated[o] += 1;
            }
        }
    }
    0
}

// __isolate_free_page(struct page *page, unsigned int order),
// __putback_isolated_page(struct page *page, unsigned int order, int mt): entry only.
#[fentry]
pub fn isolate_free_page_fentry(ctx: FEntryContext) -> u32 {
    count_reported(ctx.ptr_arg(0), Args::arg(&ctx, 1) as u32 as u64, false)
}

#[kprobe]
pub fn isolate_free_page_kprobe(ctx: ProbeContext) -> u32 {
    count_reported(ctx.ptr_arg(0), Args::arg(&ctx, 1) as u32 as u64, false)
}

#[fentry]
pub fn putback_isolated_page_fentry(ctx: FEntryContext) -> u32 {
    count_reported(ctx.ptr_arg(0), Args::arg(&ctx, 1) as u32 as u64, true)
}

#[kprobe]
pub fn putback_isolated_page_kprobe(ctx: ProbeContext) -> u32 {
    count_reported(ctx.ptr_arg(0), Args::arg(&ctx, 1) as u32 as u64, true)
}

#[inline(always)]
fn count_request() -> u32 {
    if !armed() {
        return 0;
    }
    if let Some(p) = REPORT_REQUESTS.get_ptr_mut(0) {
        unsafe { *p += 1 };
    }
    0
}

// __page_reporting_notify(void): a free at or above page_reporting_order asked for reporting.
#[fentry]
pub fn report_notify_fentry(_ctx: FEntryContext) -> u32 {
    count_request()
}

#[kprobe]
pub fn report_notify_kprobe(_ctx: ProbeContext) -> u32 {
    count_request()
}

/// Return value of an fexit-traced function (0 for void functions).
#[inline(always)]
fn fexit_ret(ctx: &FExitContext) -> u64 {
    let mut ret: u64 = 0;
    unsafe { aya_ebpf::helpers::gen::bpf_get_func_ret(ctx.as_ptr(), &mut ret) };
    ret
}

/// One traced function: its fentry/fexit pair and its kprobe/kretprobe pair. Userspace loads
/// the pair that attaches on the running kernel, naming the function at load time.
macro_rules! traced {
    ($kind:expr, $fentry:ident, $fexit:ident, $kprobe:ident, $kretprobe:ident) => {
        #[fentry]
        pub fn $fentry(ctx: FEntryContext) -> u32 {
            on_entry(&ctx, $kind)
        }

        #[fexit]
        pub fn $fexit(ctx: FExitContext) -> u32 {
            on_exit(&ctx, $kind, fexit_ret(&ctx))
        }

        #[kprobe]
        pub fn $kprobe(ctx: ProbeContext) -> u32 {
            on_entry(&ctx, $kind)
        }

        #[kretprobe]
        pub fn $kretprobe(ctx: RetProbeContext) -> u32 {
            on_exit(&ctx, $kind, ctx.ret::<u64>().unwrap_or(0))
        }
    };
}

traced!(
    kind::ADD_MEMORY_RESOURCE,
    add_memory_resource_fentry,
    add_memory_resource_fexit,
    add_memory_resource_kprobe,
    add_memory_resource_kretprobe
);
traced!(
    kind::ARCH_ADD_MEMORY,
    arch_add_memory_fentry,
    arch_add_memory_fexit,
    arch_add_memory_kprobe,
    arch_add_memory_kretprobe
);
traced!(
    kind::ADD_PAGES,
    add_pages_fentry,
    add_pages_fexit,
    add_pages_kprobe,
    add_pages_kretprobe
);
traced!(
    kind::MHP_INIT_MEMMAP_ON_MEMORY,
    mhp_init_memmap_on_memory_fentry,
    mhp_init_memmap_on_memory_fexit,
    mhp_init_memmap_on_memory_kprobe,
    mhp_init_memmap_on_memory_kretprobe
);
traced!(
    kind::ONLINE_PAGES,
    online_pages_fentry,
    online_pages_fexit,
    online_pages_kprobe,
    online_pages_kretprobe
);
traced!(
    kind::OFFLINE_PAGES,
    offline_pages_fentry,
    offline_pages_fexit,
    offline_pages_kprobe,
    offline_pages_kretprobe
);
traced!(
    kind::MOVE_PFN_RANGE_TO_ZONE,
    move_pfn_range_to_zone_fentry,
    move_pfn_range_to_zone_fexit,
    move_pfn_range_to_zone_kprobe,
    move_pfn_range_to_zone_kretprobe
);
traced!(
    kind::REMOVE_PFN_RANGE_FROM_ZONE,
    remove_pfn_range_from_zone_fentry,
    remove_pfn_range_from_zone_fexit,
    remove_pfn_range_from_zone_kprobe,
    remove_pfn_range_from_zone_kretprobe
);
traced!(
    kind::SET_ZONE_CONTIGUOUS,
    set_zone_contiguous_fentry,
    set_zone_contiguous_fexit,
    set_zone_contiguous_kprobe,
    set_zone_contiguous_kretprobe
);
traced!(
    kind::TRY_REMOVE_MEMORY,
    try_remove_memory_fentry,
    try_remove_memory_fexit,
    try_remove_memory_kprobe,
    try_remove_memory_kretprobe
);
traced!(
    kind::MEMMAP_INIT_RANGE,
    memmap_init_range_fentry,
    memmap_init_range_fexit,
    memmap_init_range_kprobe,
    memmap_init_range_kretprobe
);
traced!(
    kind::MEMMAP_INIT_ZONE_DEVICE,
    memmap_init_zone_device_fentry,
    memmap_init_zone_device_fexit,
    memmap_init_zone_device_kprobe,
    memmap_init_zone_device_kretprobe
);
traced!(
    kind::MEMREMAP_PAGES,
    memremap_pages_fentry,
    memremap_pages_fexit,
    memremap_pages_kprobe,
    memremap_pages_kretprobe
);
traced!(
    kind::MEMUNMAP_PAGES,
    memunmap_pages_fentry,
    memunmap_pages_fexit,
    memunmap_pages_kprobe,
    memunmap_pages_kretprobe
);

traced!(
    kind::MEMORY_SUBSYS_ONLINE,
    subsys_online_fentry,
    subsys_online_fexit,
    subsys_online_kprobe,
    subsys_online_kretprobe
);
traced!(
    kind::MEMORY_SUBSYS_OFFLINE,
    subsys_offline_fentry,
    subsys_offline_fexit,
    subsys_offline_kprobe,
    subsys_offline_kretprobe
);
traced!(
    kind::START_ISOLATE_PAGE_RANGE,
    start_isolate_page_range_fentry,
    start_isolate_page_range_fexit,
    start_isolate_page_range_kprobe,
    start_isolate_page_range_kretprobe
);
traced!(
    kind::MEMORY_NOTIFY,
    memory_notify_fentry,
    memory_notify_fexit,
    memory_notify_kprobe,
    memory_notify_kretprobe
);
traced!(
    kind::NODE_NOTIFY,
    node_notify_fentry,
    node_notify_fexit,
    node_notify_kprobe,
    node_notify_kretprobe
);
traced!(
    kind::WALK_SYSTEM_RAM_RANGE,
    walk_system_ram_range_fentry,
    walk_system_ram_range_fexit,
    walk_system_ram_range_kprobe,
    walk_system_ram_range_kretprobe
);
// Two pairs, one per name the function has had (dissolve_free_huge_pages on 6.1,
// dissolve_free_hugetlb_folios from 6.10 on): a program loads for one function only.
traced!(
    kind::DISSOLVE_FREE_HUGE_PAGES,
    dissolve_free_huge_pages_fentry,
    dissolve_free_huge_pages_fexit,
    dissolve_free_huge_pages_kprobe,
    dissolve_free_huge_pages_kretprobe
);
traced!(
    kind::DISSOLVE_FREE_HUGE_PAGES,
    dissolve_free_hugetlb_folios_fentry,
    dissolve_free_hugetlb_folios_fexit,
    dissolve_free_hugetlb_folios_kprobe,
    dissolve_free_hugetlb_folios_kretprobe
);
traced!(
    kind::DUMP_PAGE,
    dump_page_fentry,
    dump_page_fexit,
    dump_page_kprobe,
    dump_page_kretprobe
);
traced!(
    kind::PAGE_REPORTING_PROCESS,
    report_cycle_fentry,
    report_cycle_fexit,
    report_cycle_kprobe,
    report_cycle_kretprobe
);
// The virtio-balloon report callback, in the virtio_balloon module: only the kprobe pair
// attaches (see probes.rs); the fentry pair is there for a loader that can pass module BTF.
traced!(
    kind::PAGE_REPORT,
    free_page_report_fentry,
    free_page_report_fexit,
    free_page_report_kprobe,
    free_page_report_kretprobe
);
traced!(
    kind::PAGE_REPORTING_REGISTER,
    report_register_fentry,
    report_register_fexit,
    report_register_kprobe,
    report_register_kretprobe
);

// ---- offline_pages' tracepoints --------------------------------------------------------------

#[inline(always)]
fn step_event(kind: u32, pid_tgid: u64, in_offline: bool) -> RawEvent {
    let mut ev = RawEvent {
        kind,
        ret: 0,
        ts_ns: unsafe { bpf_ktime_get_ns() },
        duration_ns: 0,
        pid_tgid,
        args: [0; probe_common::NR_ARGS],
    };
    ev.args[arg::STEP_IN_OFFLINE] = in_offline as u64;
    ev
}

#[inline(always)]
fn tp_field(ctx: &TracePointContext, off: u64) -> u64 {
    if off == NO_OFFSET {
        return 0;
    }
    unsafe { ctx.read_at::<u64>(off as usize) }.unwrap_or(0)
}

/// page_isolation:test_pages_isolated (classic: the record's `start_pfn`, `end_pfn`, `fin_pfn`).
/// `fin_pfn` == `end_pfn` means every page of the range was free and isolated.
#[tracepoint]
pub fn test_pages_isolated_tp(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(in_offline) = in_online_offline(pid_tgid) else {
        return 0;
    };
    let mut ev = step_event(kind::TEST_PAGES_ISOLATED, pid_tgid, in_offline);
    ev.args[arg::TPI_START_PFN] = tp_field(&ctx, off!(tp_tpi_start_pfn));
    ev.args[arg::TPI_END_PFN] = tp_field(&ctx, off!(tp_tpi_end_pfn));
    ev.args[arg::TPI_FIN_PFN] = tp_field(&ctx, off!(tp_tpi_fin_pfn));
    emit(&ctx, &ev);
    0
}

/// migrate:mm_migrate_pages (classic: `succeeded`, `failed`, `reason`). It fires at the end of
/// every migrate_pages() in the system; outside an online/offline, one array read.
#[tracepoint]
pub fn mm_migrate_pages_tp(ctx: TracePointContext) -> u32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(in_offline) = in_online_offline(pid_tgid) else {
        return 0;
    };
    let mut ev = step_event(kind::MM_MIGRATE_PAGES, pid_tgid, in_offline);
    ev.args[arg::MMP_SUCCEEDED] = tp_field(&ctx, off!(tp_mmp_succeeded));
    ev.args[arg::MMP_FAILED] = tp_field(&ctx, off!(tp_mmp_failed));
    let reason = off!(tp_mmp_reason);
    ev.args[arg::MMP_REASON] = if reason == NO_OFFSET {
        u64::MAX
    } else {
        unsafe { ctx.read_at::<u32>(reason as usize) }.unwrap_or(u32::MAX) as u64
    };
    emit(&ctx, &ev);
    0
}

// ---- memmap allocations --------------------------------------------------------------------

/// The `__add_pages` window the current task is in, if any. Page allocations happen all over
/// the system: outside a hot-add this costs one array read.
#[inline(always)]
fn current_window() -> Option<Window> {
    if WINDOW_CTL.get(0).copied().unwrap_or(0) == 0 {
        return None;
    }
    unsafe { WINDOWS.get(&bpf_get_current_pid_tgid()) }.copied()
}

/// Reports one allocation made inside a window: those are the new memmap (unless self-hosted)
/// and its page tables, taken from existing memory.
#[inline(always)]
fn emit_page_alloc<C: EbpfContext>(ctx: &C, w: &Window, pfn: u64, order: u32) {
    let mut ev = RawEvent {
        kind: kind::PAGE_ALLOC,
        ret: 0,
        ts_ns: unsafe { bpf_ktime_get_ns() },
        duration_ns: 0,
        pid_tgid: bpf_get_current_pid_tgid(),
        args: [0; probe_common::NR_ARGS],
    };
    ev.args[arg::PA_PFN] = pfn;
    ev.args[arg::PA_ORDER] = order as u64;
    ev.args[arg::PA_WINDOW_NID] = w.nid;
    ev.args[arg::PA_WINDOW_PFN] = w.pfn;
    emit(ctx, &ev);
}

/// A `struct page *`'s pfn: its index in the virtual memmap, which starts at the value of
/// `vmemmap_base` (x86-64). u64::MAX when unknown.
#[inline(always)]
fn page_pfn(page: u64) -> u64 {
    let memmap: u64 = kread(off!(vmemmap_base_addr), 0);
    let size = off!(page_size);
    if memmap != 0 && size != 0 && page >= memmap {
        (page - memmap) / size
    } else {
        u64::MAX
    }
}

/// kmem:mm_page_alloc as a raw tracepoint (preferred): the kernel hands over the tracepoint's
/// arguments `(struct page *page, unsigned int order, ...)` without first building the trace
/// record, which every page allocation in the system would pay for. The pfn is the page's
/// index in the virtual memmap, which starts at the value of `vmemmap_base`.
#[raw_tracepoint(tracepoint = "mm_page_alloc")]
pub fn mm_page_alloc_raw(ctx: RawTracePointContext) -> u32 {
    let Some(w) = current_window() else {
        return 0;
    };
    let args = ctx.as_ptr() as *const u64;
    let (page, order) = unsafe { (*args, *args.add(1) as u32) };
    emit_page_alloc(&ctx, &w, page_pfn(page), order);
    0
}

/// kmem:mm_page_alloc as a classic tracepoint (the fallback): reads the record's fields.
#[tracepoint]
pub fn mm_page_alloc(ctx: TracePointContext) -> u32 {
    let Some(w) = current_window() else {
        return 0;
    };
    let pfn_off = off!(tp_page_alloc_pfn);
    let order_off = off!(tp_page_alloc_order);
    if pfn_off == NO_OFFSET || order_off == NO_OFFSET {
        return 0;
    }
    let pfn: u64 = unsafe { ctx.read_at(pfn_off as usize) }.unwrap_or(u64::MAX);
    let order: u32 = unsafe { ctx.read_at(order_off as usize) }.unwrap_or(0);
    emit_page_alloc(&ctx, &w, pfn, order);
    0
}

// ---- contiguity cost -----------------------------------------------------------------------

/// Counts one slow-path call for the zone. `pageblock_pfn_to_page()` (inline) only calls
/// `__pageblock_pfn_to_page(start_pfn, end_pfn, zone)` when `zone->contiguous` is false.
#[inline(always)]
fn count_slowpath(zone: u64) -> u32 {
    if !armed() {
        return 0;
    }
    let (node, idx) = zone_node_idx(zone);
    if idx >= ZONES_PER_NODE as u64 || node >= (SLOWPATH_SLOTS / ZONES_PER_NODE) as u64 {
        return 0;
    }
    let slot = (node * ZONES_PER_NODE as u64 + idx) as u32;
    if let Some(p) = SLOWPATH.get_ptr_mut(slot) {
        unsafe { *p += 1 };
    }
    0
}

#[fentry]
pub fn pageblock_pfn_to_page_fentry(ctx: FEntryContext) -> u32 {
    count_slowpath(ctx.ptr_arg(2))
}

#[kprobe]
pub fn pageblock_pfn_to_page_kprobe(ctx: ProbeContext) -> u32 {
    count_slowpath(ctx.ptr_arg(2))
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
