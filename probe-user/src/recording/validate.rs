//! Every field of a recording, checked when read: a value no kernel can produce is refused
//! with the field's name, before the model does arithmetic or allocates with it.
//!
//! The bounds are the machine's, not a guess at what is usual: x86-64 addresses at most 52 bits
//! of physical memory (5-level paging's MAX_PHYSMEM_BITS), so a pfn is below 2^40 and a range
//! ends at or below it; MAX_NUMNODES is at most 1024; zone indexes are those the header names;
//! a buddy allocation is at most order 20 (MAX_PAGE_ORDER is 10 by default, 15 at most when
//! configured; 20 leaves room); return values are 0 or a negative errno (MAX_ERRNO 4095).
//! `online_pages`, `offline_pages`, `mhp_init_memmap_on_memory` and the block online/offline
//! attempts work on one memory block, so their ranges lie within one block of the header's
//! block size.
//!
//! Live events go through [`event`] too: the decoder's output is checked as a file's is.
use std::fmt;

use crate::{
    kernel::frame::Frame,
    model::event::{Altmap, Event, Op, Span, ZoneId},
    model::Layout,
};

use super::{Header, Summary};

/// Physical address bits on x86-64 with 5-level paging.
pub const PHYS_BITS: u32 = 52;
/// Page frame numbers are below this (4 KiB pages).
pub const MAX_PFN: u64 = 1 << (PHYS_BITS - 12);
/// Physical addresses are below this.
pub const MAX_PHYS: u64 = 1 << PHYS_BITS;
/// Node ids are below this (MAX_NUMNODES with CONFIG_NODES_SHIFT = 10, the largest).
pub const MAX_NODES: i32 = 1024;
/// The largest allocation order accepted.
pub const MAX_ORDER: u32 = 20;
/// Return values are 0 or a negative errno at least this (-MAX_ERRNO).
pub const MIN_ERRNO: i32 = -4095;
/// Zone indexes fit the model's tables (MAX_NR_ZONES is 6 at most).
pub const MAX_ZONES: usize = 8;
/// Memory blocks one hot-add or hot-remove covers at most. No kernel limit says so, but the
/// model does work per block of such an event; 2^16 blocks is 8 TiB of 128 MiB blocks (x86-64
/// uses 2 GiB blocks, 128 TiB, on hosts that large), more than any one device adds.
pub const MAX_BLOCKS_PER_EVENT: u64 = 1 << 16;
/// Longest text field (probe names, dump_page's reason: the kernel gives 16 bytes).
pub const MAX_TEXT: usize = 256;

/// A field that no kernel can have produced: its name (as in the file, `kind.field`), its
/// value and why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub value: String,
    pub why: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {} {}", self.field, self.value, self.why)
    }
}

impl std::error::Error for Invalid {}

type Check = Result<(), Invalid>;

/// A field's name, `kind.field` or `kind.part.field`, written only when a check fails:
/// checking an event allocates nothing.
#[derive(Clone, Copy)]
struct F<'a>(&'a str, &'a str, &'a str);

impl fmt::Display for F<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)?;
        for part in [self.1, self.2] {
            if !part.is_empty() {
                write!(f, ".{part}")?;
            }
        }
        Ok(())
    }
}

fn f<'a>(k: &'a str, field: &'a str) -> F<'a> {
    F(k, field, "")
}

fn bad(field: impl fmt::Display, value: impl fmt::Display, why: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// What the checks need from the recording's header.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Zone names in the header (zone indexes are below this).
    zones: usize,
    zone_list: String,
    /// Pages per memory block.
    block_pages: u64,
    page_size: u64,
}

impl Limits {
    /// From a layout already checked by [`layout`] (or the decoder's, live).
    pub fn new(layout: &Layout) -> Limits {
        Limits {
            zones: layout.zone_names.len(),
            zone_list: layout.zone_names.join(", "),
            block_pages: (layout.block_size_bytes / layout.page_size.max(1)).max(1),
            page_size: layout.page_size.max(1),
        }
    }
}

// --- the header and the summary ---

/// The header: its layout and its frame.
pub fn header(h: &Header) -> Check {
    layout(&h.layout)?;
    frame(&h.frame, "header.frame", &h.layout)
}

/// The summary: its end frame (counts and times are any u64).
pub fn summary(s: &Summary, layout: &Layout) -> Check {
    match &s.frame {
        Some(f) => frame(f, "summary.frame", layout),
        None => Ok(()),
    }
}

pub fn layout(l: &Layout) -> Check {
    let p = "header.layout";
    if !(4096..=65536).contains(&l.page_size) || !l.page_size.is_power_of_two() {
        return Err(bad(
            format!("{p}.page_size"),
            l.page_size,
            "is not a page size (a power of two, 4 KiB to 64 KiB)",
        ));
    }
    if !(1..=1024).contains(&l.struct_page_size) {
        return Err(bad(
            format!("{p}.struct_page_size"),
            l.struct_page_size,
            "is not the size of a struct page (1..=1024 bytes)",
        ));
    }
    if !l.block_size_bytes.is_power_of_two()
        || l.block_size_bytes < l.page_size
        || l.block_size_bytes > MAX_PHYS
    {
        return Err(bad(
            format!("{p}.block_size_bytes"),
            l.block_size_bytes,
            format!("is not a memory block size (a power of two, from a page to 2^{PHYS_BITS} bytes)"),
        ));
    }
    if l.zone_names.is_empty() || l.zone_names.len() > MAX_ZONES {
        return Err(bad(
            format!("{p}.zone_names"),
            format!("({} names)", l.zone_names.len()),
            format!("must name 1 to {MAX_ZONES} zones"),
        ));
    }
    if let Some(n) = l.zone_names.iter().find(|n| n.is_empty() || n.len() > 64) {
        return Err(bad(
            format!("{p}.zone_names"),
            format!("{n:?}"),
            "is not a zone name",
        ));
    }
    Ok(())
}

/// A frame (the header's or the summary's): sizes as the layout's, blocks within the
/// physical address width, nodes and zones within bounds.
pub fn frame(f: &Frame, p: &str, l: &Layout) -> Check {
    // 0: not read (frames made by tests and tools); the layout's sizes are the ones used.
    if f.page_size != 0 && f.page_size != l.page_size {
        return Err(bad(
            format!("{p}.page_size"),
            f.page_size,
            format!("differs from the layout's page size ({})", l.page_size),
        ));
    }
    if f.block_size_bytes != 0 && f.block_size_bytes != l.block_size_bytes {
        return Err(bad(
            format!("{p}.block_size_bytes"),
            f.block_size_bytes,
            format!("differs from the layout's block size ({})", l.block_size_bytes),
        ));
    }
    let max_blocks = MAX_PHYS / l.block_size_bytes;
    for run in f.blocks.runs() {
        if run.first >= max_blocks || run.count > max_blocks - run.first {
            let last = run.first.saturating_add(run.count.saturating_sub(1));
            return Err(bad(
                format!("{p}.blocks.id"),
                last,
                format!(
                    "is beyond the physical address width ({max_blocks} blocks of {} bytes)",
                    l.block_size_bytes
                ),
            ));
        }
        if let Some(n) = run.node {
            node(format_args!("{p}.blocks.node"), n, false)?;
        }
        text(format_args!("{p}.blocks.state"), &run.state)?;
        if let Some(v) = &run.valid_zones {
            text(format_args!("{p}.blocks.valid_zones"), v)?;
        }
    }
    for n in &f.nodes {
        node(format_args!("{p}.nodes.node"), n.node, false)?;
    }
    for z in &f.zones {
        let zp = format!("{p}.zones");
        node(format!("{zp}.node"), z.node, false)?;
        text(format!("{zp}.zone"), &z.zone)?;
        let start = z.start_pfn.unwrap_or(0);
        range((zp.as_str(), ""), "start_pfn", start, "spanned", z.spanned)?;
        if z.present > z.spanned {
            return Err(bad(
                format!("{zp}.present"),
                z.present,
                format!("is more than the zone spans ({})", z.spanned),
            ));
        }
        if z.managed > z.present {
            return Err(bad(
                format!("{zp}.managed"),
                z.managed,
                format!("is more than the zone has present ({})", z.present),
            ));
        }
    }
    Ok(())
}

// --- events ---

/// One event: its times, then its op's fields.
pub fn event(ev: &Event, l: &Limits) -> Check {
    if ev.duration_ns > ev.ts_ns {
        return Err(bad(
            format!("{}.duration_ns", kind(&ev.op)),
            ev.duration_ns,
            format!(
                "is longer than the time since boot (ts_ns {}): the call would have begun before it",
                ev.ts_ns
            ),
        ));
    }
    match &ev.op {
        Op::AddMemoryResource { .. }
        | Op::ArchAddMemory { .. }
        | Op::AddPages { .. }
        | Op::TryRemoveMemory { .. }
        | Op::PageAlloc { .. }
        | Op::NodeFreePages { .. } => hot_add(&ev.op, l),
        Op::MhpInitMemmapOnMemory { .. }
        | Op::OnlinePages { .. }
        | Op::OfflinePages { .. }
        | Op::BlockOnline { .. }
        | Op::BlockOffline { .. } => online_offline(&ev.op, l),
        Op::MovePfnRangeToZone { .. }
        | Op::RemovePfnRangeFromZone { .. }
        | Op::SetZoneContiguous { .. }
        | Op::MemmapInitRange { .. } => spans(&ev.op, l),
        Op::MemmapInitZoneDevice { .. } | Op::MemremapPages { .. } | Op::MemunmapPages { .. } => {
            device(&ev.op, l)
        }
        Op::IsolateRange { .. }
        | Op::MemoryNotify { .. }
        | Op::NodeNotify { .. }
        | Op::WalkSystemRam { .. }
        | Op::DissolveHugePages { .. }
        | Op::TestPagesIsolated { .. }
        | Op::MigratePages { .. }
        | Op::DumpPage { .. } => offline_steps(&ev.op),
        Op::SlowPathSample { .. } | Op::LostEventsSample { .. } | Op::ProbeCostSample { .. } => {
            samples(&ev.op, l)
        }
        Op::ReportingRegister { .. }
        | Op::ReportingCycle { .. }
        | Op::PageReport { .. }
        | Op::ReportedPagesSample { .. }
        | Op::ReportingRequestsSample { .. }
        | Op::ReportingOrderSample { .. } => reporting(&ev.op, l),
    }
}

/// Hot-add and hot-remove: physical ranges, nodes, the altmap, allocations inside.
fn hot_add(op: &Op, l: &Limits) -> Check {
    let k = kind(op);
    match *op {
        Op::AddMemoryResource {
            start,
            size,
            mhp_flags,
            nid_arg,
            ret,
        } => {
            phys(k, start, size)?;
            blocks(k, "size", start / l.page_size, size.div_ceil(l.page_size), l)?;
            if mhp_flags & crate::model::event::mhp::NID_IS_MGID != 0 {
                // A memory group id (xa_limit_31b): any non-negative int.
                if nid_arg < 0 {
                    return Err(bad(
                        f(k, "nid_arg"),
                        nid_arg,
                        "is not a memory group id (MHP_NID_IS_MGID is set)",
                    ));
                }
            } else {
                node(f(k, "nid_arg"), nid_arg, true)?;
            }
            errno(k, ret)
        }
        Op::ArchAddMemory {
            node: n,
            start,
            size,
            altmap,
            ret,
        } => {
            node(f(k, "node"), n, false)?;
            phys(k, start, size)?;
            blocks(k, "size", start / l.page_size, size.div_ceil(l.page_size), l)?;
            if let Some(a) = altmap {
                self::altmap(k, &a, size)?;
            }
            errno(k, ret)
        }
        Op::AddPages {
            node: n,
            pfn,
            nr_pages,
            ret,
            ..
        } => {
            node(f(k, "node"), n, false)?;
            pages(k, pfn, nr_pages)?;
            blocks(k, "nr_pages", pfn, nr_pages, l)?;
            errno(k, ret)
        }
        Op::TryRemoveMemory { start, size, ret } => {
            phys(k, start, size)?;
            blocks(k, "size", start / l.page_size, size.div_ceil(l.page_size), l)?;
            errno(k, ret)
        }
        Op::PageAlloc {
            pfn,
            order,
            window_node,
            window_pfn,
        } => {
            if order > MAX_ORDER {
                return Err(bad(
                    f(k, "order"),
                    order,
                    format!("is larger than any allocation (order <= {MAX_ORDER})"),
                ));
            }
            pages(k, pfn, 1 << order)?;
            node(f(k, "window_node"), window_node, false)?;
            self::pfn(f(k, "window_pfn"), window_pfn)
        }
        Op::NodeFreePages {
            node: n,
            free_pages,
            window_pfn,
            ..
        } => {
            node(f(k, "node"), n, false)?;
            count(f(k, "free_pages"), free_pages)?;
            self::pfn(f(k, "window_pfn"), window_pfn)
        }
        _ => Ok(()),
    }
}

/// Onlining and offlining one memory block: ranges within one block, zones, results.
fn online_offline(op: &Op, l: &Limits) -> Check {
    let k = kind(op);
    match *op {
        Op::MhpInitMemmapOnMemory {
            pfn,
            nr_pages,
            zone,
            ret,
        }
        | Op::OnlinePages {
            pfn,
            nr_pages,
            zone,
            ret,
        }
        | Op::OfflinePages {
            pfn,
            nr_pages,
            zone,
            ret,
        } => {
            pages(k, pfn, nr_pages)?;
            one_block(k, pfn, nr_pages, l)?;
            self::zone(k, zone, l)?;
            errno(k, ret)
        }
        Op::BlockOnline {
            pfn,
            node: n,
            zone,
            ret,
            ..
        }
        | Op::BlockOffline {
            pfn,
            node: n,
            zone,
            ret,
            ..
        } => {
            self::pfn(f(k, "pfn"), pfn)?;
            if pfn % l.block_pages != 0 {
                return Err(bad(
                    f(k, "pfn"),
                    pfn,
                    format!(
                        "is not the first pfn of a memory block ({} pages each)",
                        l.block_pages
                    ),
                ));
            }
            node(f(k, "node"), n, true)?;
            if let Some(z) = zone {
                self::zone(k, z, l)?;
            }
            errno(k, ret)
        }
        _ => Ok(()),
    }
}

/// Zone spans and memmap initialisation of RAM.
fn spans(op: &Op, l: &Limits) -> Check {
    let k = kind(op);
    match *op {
        Op::MovePfnRangeToZone {
            pfn,
            nr_pages,
            zone,
            before,
            after,
        }
        | Op::RemovePfnRangeFromZone {
            pfn,
            nr_pages,
            zone,
            before,
            after,
        } => {
            pages(k, pfn, nr_pages)?;
            self::zone(k, zone, l)?;
            span(k, "before", &before)?;
            span(k, "after", &after)
        }
        Op::SetZoneContiguous { zone, span: s, .. } => {
            self::zone(k, zone, l)?;
            span(k, "span", &s)
        }
        Op::MemmapInitRange {
            zone,
            pfn,
            nr_pages,
            context,
        } => {
            self::zone(k, zone, l)?;
            pages(k, pfn, nr_pages)?;
            if context > 1 {
                return Err(bad(
                    f(k, "context"),
                    context,
                    "is not a meminit_context (0 early, 1 hotplug)",
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// ZONE_DEVICE ranges.
fn device(op: &Op, l: &Limits) -> Check {
    let k = kind(op);
    match *op {
        Op::MemmapInitZoneDevice {
            zone, pfn, nr_pages, ..
        } => {
            self::zone(k, zone, l)?;
            pages(k, pfn, nr_pages)
        }
        Op::MemremapPages {
            node: n,
            start,
            end,
            ret,
            ..
        } => {
            node(f(k, "node"), n, true)?;
            half_open(k, start, end)?;
            errno(k, ret)
        }
        Op::MemunmapPages { start, end, .. } => half_open(k, start, end),
        _ => Ok(()),
    }
}

/// offline_pages' steps and the page the kernel dumped.
fn offline_steps(op: &Op) -> Check {
    let k = kind(op);
    match op {
        Op::IsolateRange { pfn, nr_pages, ret } => {
            pages(k, *pfn, *nr_pages)?;
            errno(k, *ret)
        }
        Op::MemoryNotify { ret, .. } | Op::NodeNotify { ret, .. } => errno(k, *ret),
        Op::WalkSystemRam {
            pfn,
            nr_pages,
            ram_pages,
        } => {
            pages(k, *pfn, *nr_pages)?;
            if ram_pages > nr_pages {
                return Err(bad(
                    f(k, "ram_pages"),
                    ram_pages,
                    format!("is more than the range has (nr_pages {nr_pages})"),
                ));
            }
            Ok(())
        }
        Op::DissolveHugePages { pfn, end_pfn, ret } => {
            pfn_range(k, *pfn, *end_pfn)?;
            errno(k, *ret)
        }
        Op::TestPagesIsolated {
            pfn,
            end_pfn,
            fin_pfn,
        } => {
            pfn_range(k, *pfn, *end_pfn)?;
            if !(pfn..=end_pfn).contains(&fin_pfn) {
                return Err(bad(
                    f(k, "fin_pfn"),
                    fin_pfn,
                    format!("is outside the range tested ({pfn}..={end_pfn})"),
                ));
            }
            Ok(())
        }
        Op::MigratePages {
            succeeded, failed, ..
        } => {
            count(f(k, "succeeded"), *succeeded)?;
            count(f(k, "failed"), *failed)
        }
        Op::DumpPage { pfn, reason, .. } => {
            self::pfn(f(k, "pfn"), *pfn)?;
            text(f(k, "reason"), reason)
        }
        _ => Ok(()),
    }
}

/// Counter samples: zones and probe names (the counts are any u64).
fn samples(op: &Op, l: &Limits) -> Check {
    let k = kind(op);
    match op {
        Op::SlowPathSample { zone, .. } => self::zone(k, *zone, l),
        Op::ProbeCostSample {
            probe,
            runs,
            run_time_ns,
        } => {
            text(f(k, "probe"), probe)?;
            if *runs == 0 && *run_time_ns > 0 {
                return Err(bad(
                    f(k, "run_time_ns"),
                    run_time_ns,
                    "was spent in no run (runs 0)",
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Free page reporting: zones, orders and errnos (the counts are any u64).
fn reporting(op: &Op, l: &Limits) -> Check {
    let k = kind(op);
    match *op {
        Op::ReportingRegister { ret, .. } => errno(k, ret),
        Op::PageReport {
            zone, first_pfn, ret, ..
        } => {
            if let Some(z) = zone {
                self::zone(k, z, l)?;
            }
            if let Some(p) = first_pfn {
                self::pfn(f(k, "first_pfn"), p)?;
            }
            errno(k, ret)
        }
        Op::ReportedPagesSample { zone, order, .. } => {
            if usize::from(order) >= probe_common::REPORT_ORDERS {
                return Err(bad(f(k, "order"), order, "is above any order counted"));
            }
            self::zone(k, zone, l)
        }
        _ => Ok(()),
    }
}

// --- the field checks ---

fn pfn(field: impl fmt::Display, pfn: u64) -> Check {
    if pfn >= MAX_PFN {
        return Err(bad(
            field,
            pfn,
            format!("is beyond the physical address width ({PHYS_BITS} bits: pfn < 2^40)"),
        ));
    }
    Ok(())
}

/// A number of pages (or of anything counted in pages).
fn count(field: impl fmt::Display, n: u64) -> Check {
    if n > MAX_PFN {
        return Err(bad(field, n, "is larger than any machine (2^40 pages)"));
    }
    Ok(())
}

/// `pfn` and `nr_pages`: both within bounds, and the range ends within the address width.
fn pages(k: &str, first: u64, nr_pages: u64) -> Check {
    pfn(f(k, "pfn"), first)?;
    count(f(k, "nr_pages"), nr_pages)?;
    if first + nr_pages > MAX_PFN {
        return Err(bad(
            format!("{k}.pfn + nr_pages"),
            format!("{first} + {nr_pages}"),
            format!("ends beyond the physical address width ({PHYS_BITS} bits: pfn < 2^40)"),
        ));
    }
    Ok(())
}

/// `[start, end)` as pfns.
fn pfn_range(k: &str, first: u64, end: u64) -> Check {
    pfn(f(k, "pfn"), first)?;
    if end > MAX_PFN {
        return Err(bad(
            f(k, "end_pfn"),
            end,
            format!("is beyond the physical address width ({PHYS_BITS} bits: pfn <= 2^40)"),
        ));
    }
    if end < first {
        return Err(bad(
            f(k, "end_pfn"),
            end,
            format!("is before the range's first pfn ({first})"),
        ));
    }
    Ok(())
}

/// A hot-add or hot-remove range: at most `MAX_BLOCKS_PER_EVENT` memory blocks.
fn blocks(k: &str, field: &str, first: u64, nr_pages: u64, l: &Limits) -> Check {
    let last = first + nr_pages.max(1) - 1;
    let n = last / l.block_pages - first / l.block_pages + 1;
    if n > MAX_BLOCKS_PER_EVENT {
        return Err(bad(
            f(k, field),
            format!("of {n} memory blocks"),
            format!(
                "is more than one call adds or removes ({MAX_BLOCKS_PER_EVENT} blocks: 8 TiB of 128 MiB blocks, 128 TiB of 2 GiB ones)"
            ),
        ));
    }
    Ok(())
}

/// A range in one memory block.
fn one_block(k: &str, first: u64, nr_pages: u64, l: &Limits) -> Check {
    let last = first + nr_pages.max(1) - 1;
    if first / l.block_pages != last / l.block_pages {
        return Err(bad(
            format!("{k}.pfn + nr_pages"),
            format!("{first} + {nr_pages}"),
            format!("spans more than one memory block ({} pages each)", l.block_pages),
        ));
    }
    Ok(())
}

/// `start` and `size` in bytes.
fn phys(k: &str, start: u64, size: u64) -> Check {
    if start >= MAX_PHYS {
        return Err(bad(
            f(k, "start"),
            start,
            format!("is beyond the physical address width ({PHYS_BITS} bits)"),
        ));
    }
    if size > MAX_PHYS - start {
        return Err(bad(
            f(k, "size"),
            size,
            format!("ends beyond the physical address width ({PHYS_BITS} bits) from start {start}"),
        ));
    }
    Ok(())
}

/// `[start, end)` in bytes.
fn half_open(k: &str, start: u64, end: u64) -> Check {
    if start >= MAX_PHYS {
        return Err(bad(
            f(k, "start"),
            start,
            format!("is beyond the physical address width ({PHYS_BITS} bits)"),
        ));
    }
    if end > MAX_PHYS {
        return Err(bad(
            f(k, "end"),
            end,
            format!("is beyond the physical address width ({PHYS_BITS} bits)"),
        ));
    }
    if end < start {
        return Err(bad(f(k, "end"), end, format!("is before start ({start})")));
    }
    Ok(())
}

fn span(k: &str, name: &str, s: &Span) -> Check {
    range(
        (k, name),
        "start_pfn",
        s.start_pfn,
        "spanned_pages",
        s.spanned_pages,
    )
}

/// `first` and `len` pages; the fields are named `p.0.p.1.first_name`...
fn range(p: (&str, &str), first_name: &str, first: u64, len_name: &str, len: u64) -> Check {
    pfn(F(p.0, p.1, first_name), first)?;
    count(F(p.0, p.1, len_name), len)?;
    if first + len > MAX_PFN {
        return Err(bad(
            format_args!("{} + {len_name}", F(p.0, p.1, first_name)),
            format!("{first} + {len}"),
            format!("ends beyond the physical address width ({PHYS_BITS} bits: pfn < 2^40)"),
        ));
    }
    Ok(())
}

fn altmap(k: &str, a: &Altmap, size: u64) -> Check {
    pfn(f(k, "altmap.base_pfn"), a.base_pfn)?;
    count(f(k, "altmap.alloc"), a.alloc)?;
    count(f(k, "altmap.align"), a.align)?;
    let taken = a.alloc + a.align;
    // Pages of the range itself: the memmap it hosts cannot be larger than the range.
    let range_pages = size / 4096;
    if taken > range_pages {
        return Err(bad(
            format!("{k}.altmap.alloc + align"),
            taken,
            format!("is more pages than the range has ({range_pages})"),
        ));
    }
    Ok(())
}

/// A node id; -1 (NUMA_NO_NODE) where the kernel may say "no node".
fn node(field: impl fmt::Display, n: i32, unknown_ok: bool) -> Check {
    if (0..MAX_NODES).contains(&n) || (unknown_ok && n == -1) {
        return Ok(());
    }
    let allowed = if unknown_ok {
        format!("0..{MAX_NODES} or -1")
    } else {
        format!("0..{MAX_NODES}")
    };
    Err(bad(field, n, format!("is not a node ({allowed})")))
}

/// A zone: its node (-1 allowed where the decoder could not read it) and its index into
/// the header's zone names.
fn zone(k: &str, z: ZoneId, l: &Limits) -> Check {
    node(F(k, "zone", "node"), z.node, true)?;
    if usize::from(z.zone) >= l.zones {
        return Err(bad(
            F(k, "zone", "zone"),
            z.zone,
            format!(
                "is not a zone of this recording (its header names {}: {})",
                l.zones, l.zone_list
            ),
        ));
    }
    Ok(())
}

fn errno(k: &str, ret: i32) -> Check {
    if (MIN_ERRNO..=0).contains(&ret) {
        return Ok(());
    }
    Err(bad(
        f(k, "ret"),
        ret,
        format!("is not 0 or a negative errno ({MIN_ERRNO}..=0)"),
    ))
}

fn text(field: impl fmt::Display, s: &str) -> Check {
    if s.len() > MAX_TEXT {
        return Err(bad(
            field,
            format!("of {} bytes", s.len()),
            format!("is longer than any such text ({MAX_TEXT} bytes)"),
        ));
    }
    Ok(())
}

/// The op's `kind` as recordings write it.
pub fn kind(op: &Op) -> &'static str {
    match op {
        Op::AddMemoryResource { .. } => "add_memory_resource",
        Op::ArchAddMemory { .. } => "arch_add_memory",
        Op::MhpInitMemmapOnMemory { .. } => "mhp_init_memmap_on_memory",
        Op::OnlinePages { .. } => "online_pages",
        Op::MovePfnRangeToZone { .. } => "move_pfn_range_to_zone",
        Op::OfflinePages { .. } => "offline_pages",
        Op::RemovePfnRangeFromZone { .. } => "remove_pfn_range_from_zone",
        Op::SetZoneContiguous { .. } => "set_zone_contiguous",
        Op::TryRemoveMemory { .. } => "try_remove_memory",
        Op::AddPages { .. } => "add_pages",
        Op::PageAlloc { .. } => "page_alloc",
        Op::MemmapInitRange { .. } => "memmap_init_range",
        Op::MemmapInitZoneDevice { .. } => "memmap_init_zone_device",
        Op::MemremapPages { .. } => "memremap_pages",
        Op::MemunmapPages { .. } => "memunmap_pages",
        Op::BlockOnline { .. } => "block_online",
        Op::BlockOffline { .. } => "block_offline",
        Op::IsolateRange { .. } => "isolate_range",
        Op::MemoryNotify { .. } => "memory_notify",
        Op::NodeNotify { .. } => "node_notify",
        Op::WalkSystemRam { .. } => "walk_system_ram",
        Op::DissolveHugePages { .. } => "dissolve_huge_pages",
        Op::TestPagesIsolated { .. } => "test_pages_isolated",
        Op::MigratePages { .. } => "migrate_pages",
        Op::DumpPage { .. } => "dump_page",
        Op::NodeFreePages { .. } => "node_free_pages",
        Op::SlowPathSample { .. } => "slow_path_sample",
        Op::LostEventsSample { .. } => "lost_events_sample",
        Op::ProbeCostSample { .. } => "probe_cost_sample",
        Op::ReportingRegister { .. } => "reporting_register",
        Op::ReportingCycle { .. } => "reporting_cycle",
        Op::PageReport { .. } => "page_report",
        Op::ReportedPagesSample { .. } => "reported_pages_sample",
        Op::ReportingRequestsSample { .. } => "reporting_requests_sample",
        Op::ReportingOrderSample { .. } => "reporting_order_sample",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::wire::tests::every_kind_of_event;

    fn limits() -> Limits {
        Limits::new(&crate::recording::synth::layout())
    }

    fn check(op: Op) -> Result<(), String> {
        let ev = Event {
            ts_ns: 1000,
            duration_ns: 10,
            tid: 1,
            op,
        };
        event(&ev, &limits()).map_err(|e| e.to_string())
    }

    #[test]
    fn kinds_are_the_serialized_tags() {
        for ev in every_kind_of_event() {
            let v = serde_json::to_value(&ev.op).unwrap();
            assert_eq!(v["kind"], kind(&ev.op), "{v}");
        }
    }

    #[test]
    fn plausible_events_pass() {
        for ev in every_kind_of_event() {
            assert_eq!(event(&ev, &limits()), Ok(()), "{ev:?}");
        }
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let zone = ZoneId { node: 1, zone: 3 };
        let online = |pfn, nr_pages| Op::OnlinePages {
            pfn,
            nr_pages,
            zone,
            ret: 0,
        };
        assert_eq!(
            check(online(0x100000, 1 << 62)).unwrap_err(),
            "online_pages.nr_pages 4611686018427387904 is larger than any machine (2^40 pages)"
        );
        assert!(check(online(1 << 40, 1))
            .unwrap_err()
            .starts_with("online_pages.pfn 1099511627776 is beyond"));
        assert!(check(online((1 << 40) - 8, 16))
            .unwrap_err()
            .starts_with("online_pages.pfn + nr_pages"));
        assert!(check(online(0x100000 + 0x7000, 0x2000))
            .unwrap_err()
            .contains("more than one memory block"));
        assert!(check(Op::OnlinePages {
            pfn: 0x100000,
            nr_pages: 1,
            zone: ZoneId { node: 1, zone: 9 },
            ret: 0
        })
        .unwrap_err()
        .starts_with("online_pages.zone.zone 9 is not a zone of this recording"));
        assert!(check(Op::OnlinePages {
            pfn: 0x100000,
            nr_pages: 1,
            zone: ZoneId { node: 5000, zone: 1 },
            ret: 0
        })
        .unwrap_err()
        .starts_with("online_pages.zone.node 5000 is not a node (0..1024 or -1)"));
        assert!(check(Op::OnlinePages {
            pfn: 0x100000,
            nr_pages: 1,
            zone,
            ret: 7
        })
        .unwrap_err()
        .starts_with("online_pages.ret 7 is not 0 or a negative errno"));
        assert!(check(Op::PageAlloc {
            pfn: 1,
            order: 21,
            window_node: 0,
            window_pfn: 0
        })
        .unwrap_err()
        .starts_with("page_alloc.order 21"));
        assert!(check(Op::AddPages {
            node: -1,
            pfn: 0,
            nr_pages: 1,
            altmap: false,
            ret: 0
        })
        .unwrap_err()
        .starts_with("add_pages.node -1 is not a node (0..1024)"));
        assert!(check(Op::AddMemoryResource {
            start: (1 << 52) - (1 << 40),
            size: 1 << 40,
            mhp_flags: 0,
            nid_arg: 0,
            ret: 0
        })
        .is_ok());
        assert!(check(Op::AddMemoryResource {
            start: 1 << 51,
            size: (1 << 51) + 1,
            mhp_flags: 0,
            nid_arg: 0,
            ret: 0
        })
        .unwrap_err()
        .starts_with("add_memory_resource.size"));
        assert!(check(Op::AddMemoryResource {
            start: 0,
            size: 1,
            mhp_flags: 4,
            nid_arg: 70_000,
            ret: 0
        })
        .is_ok());
        assert!(check(Op::TestPagesIsolated {
            pfn: 10,
            end_pfn: 20,
            fin_pfn: 21
        })
        .unwrap_err()
        .starts_with("test_pages_isolated.fin_pfn 21 is outside"));
        assert!(check(Op::DissolveHugePages {
            pfn: 10,
            end_pfn: 9,
            ret: 0
        })
        .is_err());
        assert!(check(Op::BlockOnline {
            pfn: 0x100001,
            requested: crate::model::event::OnlineType::Online,
            node: 1,
            zone: None,
            policy: None,
            ret: 0
        })
        .unwrap_err()
        .contains("not the first pfn of a memory block"));
        let early = Event {
            ts_ns: 10,
            duration_ns: 20,
            tid: 1,
            op: Op::LostEventsSample { total: 1 },
        };
        assert!(event(&early, &limits())
            .unwrap_err()
            .to_string()
            .starts_with("lost_events_sample.duration_ns 20 is longer"));
    }

    #[test]
    fn headers_of_real_recordings_pass_and_bad_layouts_do_not() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        for f in std::fs::read_dir(dir).unwrap() {
            let path = f.unwrap().path();
            let mut r = crate::recording::Reader::open(&path).unwrap();
            let h = r.header().unwrap();
            assert_eq!(header(&h), Ok(()), "{}", path.display());
        }
        let mut l = crate::recording::synth::layout();
        l.page_size = 0;
        assert!(layout(&l)
            .unwrap_err()
            .to_string()
            .starts_with("header.layout.page_size 0"));
        let mut l = crate::recording::synth::layout();
        l.block_size_bytes = 3 << 27;
        assert!(layout(&l).is_err());
        let mut l = crate::recording::synth::layout();
        l.zone_names.clear();
        assert!(layout(&l).is_err());
    }
}
