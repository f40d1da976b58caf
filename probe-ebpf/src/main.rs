//! mhpscope's kernel side: programs on the memory-hotplug path.
//!
//! Each traced function has two ways in: an fentry/fexit pair (preferred) and a kprobe/kretprobe
//! pair (the fallback when the kernel cannot attach a trampoline). Both share one body: the
//! entry side saves the timestamp, the scalar arguments and any "before" state per task; the
//! exit side emits one `RawEvent` with the arguments, the return value, the duration and any
//! "after" state. Struct fields are read at offsets that userspace resolved from the running
//! kernel's BTF (`OFFSETS`); scalar arguments need none.
//!
//! Besides: `kmem:mm_page_alloc` programs (raw tracepoint, or classic as the fallback) that
//! report allocations made inside `__add_pages` (where a hot-add allocates its memmap), and
//! per-CPU counters of slow-path `__pageblock_pfn_to_page` calls, which sit on compaction's hot
//! path and so emit no events.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{fentry, fexit, kprobe, kretprobe, map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
    programs::{
        FEntryContext, FExitContext, ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext,
    },
    EbpfContext,
};
use aya_log_ebpf::warn;
use probe_common::{
    arg, kind, KernelOffsets, RawEvent, BPF_RB_NO_WAKEUP, NO_OFFSET, SLOWPATH_SLOTS, ZONES_PER_NODE,
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
#[map]
static WINDOW_CTL: Array<u64> = Array::with_max_entries(2, 0);

/// Slow-path `__pageblock_pfn_to_page` calls per zone (`node * ZONES_PER_NODE + zone`).
#[map]
static SLOWPATH: PerCpuArray<u64> = PerCpuArray::with_max_entries(SLOWPATH_SLOTS, 0);

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
fn open_window(nid: u64, pfn: u64) {
    if WINDOWS
        .insert(&bpf_get_current_pid_tgid(), &Window { nid, pfn }, 0)
        .is_ok()
    {
        adjust_window_count(1);
    }
}

#[inline(always)]
fn close_window() {
    if WINDOWS.remove(&bpf_get_current_pid_tgid()).is_ok() {
        adjust_window_count(-1);
    }
}

/// Entry side, shared by fentry and kprobe programs. `kind` is a constant at every call site,
/// so each program keeps only its own branch.
#[inline(always)]
fn on_entry<C: Args>(ctx: &C, kind: u32) -> u32 {
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
            open_window(args[0], args[1]);
            (0, 0)
        }
        kind::ARCH_ADD_MEMORY => {
            if window_by_caller() {
                // Page frame of the range start: arch_add_memory takes bytes.
                open_window(args[0], args[1] >> 12);
            }
            (0, 0)
        }
        _ => (0, 0),
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
                close_window();
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
            close_window();
            ev.ret = errno_of(raw_ret, false);
            ev.args[arg::AP_NID] = a[0] as i32 as i64 as u64;
            ev.args[arg::AP_PFN] = a[1];
            ev.args[arg::AP_NR_PAGES] = a[2];
            ev.args[arg::AP_HAS_ALTMAP] = (kread::<u64>(a[3], off!(mhp_params_altmap)) != 0) as u64;
        }
        kind::MHP_INIT_MEMMAP_ON_MEMORY | kind::ONLINE_PAGES | kind::OFFLINE_PAGES => {
            // (unsigned long pfn, unsigned long nr_pages, struct zone *zone, ...)
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
        _ => return 0,
    }
    emit(ctx, &ev);
    0
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
    let memmap: u64 = kread(off!(vmemmap_base_addr), 0);
    let size = off!(page_size);
    let pfn = if memmap != 0 && size != 0 && page >= memmap {
        (page - memmap) / size
    } else {
        u64::MAX
    };
    emit_page_alloc(&ctx, &w, pfn, order);
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
