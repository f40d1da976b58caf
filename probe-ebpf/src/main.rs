//! mhpscope's kernel side: fentry/fexit programs on the memory-hotplug path.
//!
//! Each traced function gets an fentry program (timestamp, and any "before" state) and an fexit
//! program that emits one `RawEvent` with the arguments, the return value, the duration and any
//! "after" state. Struct fields are read at offsets that userspace resolved from the running
//! kernel's BTF (`OFFSETS`); scalar arguments need none.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{fentry, fexit, map},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::{FEntryContext, FExitContext},
    EbpfContext,
};
use aya_log_ebpf::warn;
use probe_common::{arg, kind, KernelOffsets, RawEvent, BPF_RB_NO_WAKEUP, NO_OFFSET};

/// Written by userspace before load (`EbpfLoader::set_global`).
#[no_mangle]
static OFFSETS: KernelOffsets = KernelOffsets::UNRESOLVED;

/// Events to userspace. Submitted without wakeups; userspace drains on a short timer.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Per-task entry state, keyed by `tid << 32 | kind`, so nested probes of different functions
/// (online_pages -> move_pfn_range_to_zone -> set_zone_contiguous) do not clash.
#[map]
static STARTS: HashMap<u64, Start> = HashMap::with_max_entries(4096, 0);

/// Events that did not fit in the ring buffer: counted here, reported by userspace.
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct Start {
    ts: u64,
    a: u64,
    b: u64,
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

#[inline(always)]
fn task_key(kind: u32) -> u64 {
    (bpf_get_current_pid_tgid() << 32) | kind as u64
}

#[inline(always)]
fn enter(kind: u32, a: u64, b: u64) -> u32 {
    let start = Start {
        ts: unsafe { bpf_ktime_get_ns() },
        a,
        b,
    };
    let _ = STARTS.insert(&task_key(kind), &start, 0);
    0
}

/// Takes the entry state of this task's call; zeroed if the call began before we attached.
#[inline(always)]
fn leave(kind: u32) -> Start {
    let key = task_key(kind);
    let start = match STARTS.get_ptr(&key) {
        Some(p) => unsafe { *p },
        None => Start { ts: 0, a: 0, b: 0 },
    };
    let _ = STARTS.remove(&key);
    start
}

#[inline(always)]
fn new_event(kind: u32, start: &Start, ret: i32) -> RawEvent {
    let now = unsafe { bpf_ktime_get_ns() };
    RawEvent {
        kind,
        ret,
        ts_ns: now,
        duration_ns: if start.ts == 0 { 0 } else { now - start.ts },
        pid_tgid: bpf_get_current_pid_tgid(),
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

/// Return value of the traced function (0 for void functions).
#[inline(always)]
fn ret_of(ctx: &FExitContext) -> i32 {
    let mut ret: u64 = 0;
    unsafe { aya_ebpf::helpers::gen::bpf_get_func_ret(ctx.as_ptr(), &mut ret) };
    ret as i32
}

/// Argument `n` as a plain number. The verifier types pointer arguments by BTF and refuses
/// arithmetic such as `zone - node_zones` on them; read through the ctx slot, it is a scalar.
#[inline(always)]
fn scalar_arg<C: EbpfContext>(ctx: &C, n: usize) -> u64 {
    unsafe { bpf_probe_read_kernel((ctx.as_ptr() as *const u64).add(n)) }.unwrap_or(0)
}

struct ZoneInfo {
    node: u64,
    idx: u64,
    start_pfn: u64,
    spanned: u64,
}

#[inline(always)]
fn zone_info(zone: u64) -> ZoneInfo {
    let pgdat: u64 = kread(zone, off!(zone_pgdat));
    let node: i32 = kread(pgdat, off!(pgdat_node_id));
    let zones = pgdat + off!(pgdat_node_zones);
    let size = off!(zone_size);
    let idx = if size != 0 && pgdat != 0 && zone >= zones {
        (zone - zones) / size
    } else {
        u64::MAX
    };
    ZoneInfo {
        node: node as i64 as u64,
        idx,
        start_pfn: kread(zone, off!(zone_start_pfn)),
        spanned: kread(zone, off!(zone_spanned_pages)),
    }
}

fn fill_zone(ev: &mut RawEvent, z: &ZoneInfo) {
    ev.args[arg::ZONE_NODE] = z.node;
    ev.args[arg::ZONE_IDX] = z.idx;
}

// ---- hot-add -------------------------------------------------------------------------------

#[fentry(function = "add_memory_resource")]
pub fn add_memory_resource_entry(_ctx: FEntryContext) -> u32 {
    enter(kind::ADD_MEMORY_RESOURCE, 0, 0)
}

/// add_memory_resource(int nid, struct resource *res, mhp_t mhp_flags)
#[fexit(function = "add_memory_resource")]
pub fn add_memory_resource_exit(ctx: FExitContext) -> u32 {
    let start = leave(kind::ADD_MEMORY_RESOURCE);
    let mut ev = new_event(kind::ADD_MEMORY_RESOURCE, &start, ret_of(&ctx));
    let nid: i32 = unsafe { ctx.arg(0) };
    let res: u64 = unsafe { ctx.arg(1) };
    let flags: i32 = unsafe { ctx.arg(2) };
    ev.args[arg::AMR_NID_ARG] = nid as i64 as u64;
    ev.args[arg::AMR_RES_START] = kread(res, off!(resource_start));
    ev.args[arg::AMR_RES_END] = kread(res, off!(resource_end));
    ev.args[arg::AMR_MHP_FLAGS] = flags as u32 as u64;
    emit(&ctx, &ev);
    0
}

#[fentry(function = "arch_add_memory")]
pub fn arch_add_memory_entry(_ctx: FEntryContext) -> u32 {
    enter(kind::ARCH_ADD_MEMORY, 0, 0)
}

/// arch_add_memory(int nid, u64 start, u64 size, struct mhp_params *params): the real node,
/// and the altmap whose `alloc` says how many pages of the range now hold its own memmap.
#[fexit(function = "arch_add_memory")]
pub fn arch_add_memory_exit(ctx: FExitContext) -> u32 {
    let start = leave(kind::ARCH_ADD_MEMORY);
    let mut ev = new_event(kind::ARCH_ADD_MEMORY, &start, ret_of(&ctx));
    let nid: i32 = unsafe { ctx.arg(0) };
    let params: u64 = unsafe { ctx.arg(3) };
    ev.args[arg::AAM_NID] = nid as i64 as u64;
    ev.args[arg::AAM_START] = unsafe { ctx.arg(1) };
    ev.args[arg::AAM_SIZE] = unsafe { ctx.arg(2) };
    let altmap: u64 = kread(params, off!(mhp_params_altmap));
    if altmap != 0 {
        ev.args[arg::AAM_HAS_ALTMAP] = 1;
        ev.args[arg::AAM_ALTMAP_BASE_PFN] = kread(altmap, off!(altmap_base_pfn));
        ev.args[arg::AAM_ALTMAP_ALLOC] = kread(altmap, off!(altmap_alloc));
        ev.args[arg::AAM_ALTMAP_ALIGN] = kread(altmap, off!(altmap_align));
    }
    emit(&ctx, &ev);
    0
}

// ---- self-hosted memmap --------------------------------------------------------------------

#[fentry(function = "mhp_init_memmap_on_memory")]
pub fn mhp_init_memmap_on_memory_entry(_ctx: FEntryContext) -> u32 {
    enter(kind::MHP_INIT_MEMMAP_ON_MEMORY, 0, 0)
}

/// mhp_init_memmap_on_memory(unsigned long pfn, unsigned long nr_pages, struct zone *zone, ...)
#[fexit(function = "mhp_init_memmap_on_memory")]
pub fn mhp_init_memmap_on_memory_exit(ctx: FExitContext) -> u32 {
    pfn_range_zone_exit(&ctx, kind::MHP_INIT_MEMMAP_ON_MEMORY, false)
}

// ---- online / offline ----------------------------------------------------------------------

#[fentry(function = "online_pages")]
pub fn online_pages_entry(_ctx: FEntryContext) -> u32 {
    enter(kind::ONLINE_PAGES, 0, 0)
}

/// online_pages(unsigned long pfn, unsigned long nr_pages, struct zone *zone, struct memory_group *)
#[fexit(function = "online_pages")]
pub fn online_pages_exit(ctx: FExitContext) -> u32 {
    pfn_range_zone_exit(&ctx, kind::ONLINE_PAGES, true)
}

#[fentry(function = "offline_pages")]
pub fn offline_pages_entry(_ctx: FEntryContext) -> u32 {
    enter(kind::OFFLINE_PAGES, 0, 0)
}

/// offline_pages(unsigned long start_pfn, unsigned long nr_pages, struct zone *zone, ...)
#[fexit(function = "offline_pages")]
pub fn offline_pages_exit(ctx: FExitContext) -> u32 {
    pfn_range_zone_exit(&ctx, kind::OFFLINE_PAGES, true)
}

/// Shared exit for functions shaped (pfn, nr_pages, zone, ...).
#[inline(always)]
fn pfn_range_zone_exit(ctx: &FExitContext, kind: u32, has_ret: bool) -> u32 {
    let start = leave(kind);
    let ret = if has_ret { ret_of(ctx) } else { 0 };
    let mut ev = new_event(kind, &start, ret);
    ev.args[arg::PFN] = unsafe { ctx.arg(0) };
    ev.args[arg::NR_PAGES] = unsafe { ctx.arg(1) };
    let zone = scalar_arg(ctx, 2);
    fill_zone(&mut ev, &zone_info(zone));
    emit(ctx, &ev);
    0
}

// ---- memmap init and zone span changes -----------------------------------------------------

/// move_pfn_range_to_zone(struct zone *zone, unsigned long start_pfn, unsigned long nr_pages, ...):
/// initialises the memmap of the range (memmap_init_range, notrace on 6.1) and grows the span.
#[fentry(function = "move_pfn_range_to_zone")]
pub fn move_pfn_range_to_zone_entry(ctx: FEntryContext) -> u32 {
    let z = zone_info(scalar_arg(&ctx, 0));
    enter(kind::MOVE_PFN_RANGE_TO_ZONE, z.start_pfn, z.spanned)
}

#[fexit(function = "move_pfn_range_to_zone")]
pub fn move_pfn_range_to_zone_exit(ctx: FExitContext) -> u32 {
    zone_span_exit(&ctx, kind::MOVE_PFN_RANGE_TO_ZONE)
}

/// remove_pfn_range_from_zone(struct zone *zone, unsigned long start_pfn, unsigned long nr_pages):
/// shrinks the span (shrink_zone_span is inlined).
#[fentry(function = "remove_pfn_range_from_zone")]
pub fn remove_pfn_range_from_zone_entry(ctx: FEntryContext) -> u32 {
    let z = zone_info(scalar_arg(&ctx, 0));
    enter(kind::REMOVE_PFN_RANGE_FROM_ZONE, z.start_pfn, z.spanned)
}

#[fexit(function = "remove_pfn_range_from_zone")]
pub fn remove_pfn_range_from_zone_exit(ctx: FExitContext) -> u32 {
    zone_span_exit(&ctx, kind::REMOVE_PFN_RANGE_FROM_ZONE)
}

/// Shared exit for functions shaped (zone, pfn, nr_pages, ...) that change the zone span.
#[inline(always)]
fn zone_span_exit(ctx: &FExitContext, kind: u32) -> u32 {
    let start = leave(kind);
    let mut ev = new_event(kind, &start, 0);
    let z = zone_info(scalar_arg(ctx, 0));
    fill_zone(&mut ev, &z);
    ev.args[arg::PFN] = unsafe { ctx.arg(1) };
    ev.args[arg::NR_PAGES] = unsafe { ctx.arg(2) };
    ev.args[arg::SPAN_START_BEFORE] = start.a;
    ev.args[arg::SPAN_PAGES_BEFORE] = start.b;
    ev.args[arg::SPAN_START_AFTER] = z.start_pfn;
    ev.args[arg::SPAN_PAGES_AFTER] = z.spanned;
    emit(ctx, &ev);
    0
}

// ---- contiguity ----------------------------------------------------------------------------

#[fentry(function = "set_zone_contiguous")]
pub fn set_zone_contiguous_entry(ctx: FEntryContext) -> u32 {
    let zone = scalar_arg(&ctx, 0);
    let contiguous: u8 = kread(zone, off!(zone_contiguous));
    enter(kind::SET_ZONE_CONTIGUOUS, contiguous as u64, 0)
}

/// set_zone_contiguous(struct zone *zone)
#[fexit(function = "set_zone_contiguous")]
pub fn set_zone_contiguous_exit(ctx: FExitContext) -> u32 {
    let start = leave(kind::SET_ZONE_CONTIGUOUS);
    let mut ev = new_event(kind::SET_ZONE_CONTIGUOUS, &start, 0);
    let zone = scalar_arg(&ctx, 0);
    let z = zone_info(zone);
    fill_zone(&mut ev, &z);
    let after: u8 = kread(zone, off!(zone_contiguous));
    ev.args[arg::CONTIG_BEFORE] = start.a;
    ev.args[arg::CONTIG_AFTER] = after as u64;
    ev.args[arg::CONTIG_SPAN_START] = z.start_pfn;
    ev.args[arg::CONTIG_SPAN_PAGES] = z.spanned;
    emit(&ctx, &ev);
    0
}

// ---- remove --------------------------------------------------------------------------------

#[fentry(function = "try_remove_memory")]
pub fn try_remove_memory_entry(_ctx: FEntryContext) -> u32 {
    enter(kind::TRY_REMOVE_MEMORY, 0, 0)
}

/// try_remove_memory(u64 start, u64 size)
#[fexit(function = "try_remove_memory")]
pub fn try_remove_memory_exit(ctx: FExitContext) -> u32 {
    let start = leave(kind::TRY_REMOVE_MEMORY);
    let mut ev = new_event(kind::TRY_REMOVE_MEMORY, &start, ret_of(&ctx));
    ev.args[arg::TRM_START] = unsafe { ctx.arg(0) };
    ev.args[arg::TRM_SIZE] = unsafe { ctx.arg(1) };
    emit(&ctx, &ev);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
