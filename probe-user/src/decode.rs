//! Raw ring-buffer records -> typed events. Pure: no kernel access.
use probe_common::{arg, kind, RawEvent};

use crate::event::{Altmap, Event, Op, Span, ZoneId, PGMAP_ALTMAP_VALID};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {got} bytes, expected {expected}")]
    Size { got: usize, expected: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("zone pointer could not be resolved (kind {0})")]
    BadZone(u32),
}

/// Copies a ring-buffer record into a `RawEvent` (records are not aligned for us).
pub fn parse_raw(bytes: &[u8]) -> Result<RawEvent, DecodeError> {
    if bytes.len() != RawEvent::SIZE {
        return Err(DecodeError::Size {
            got: bytes.len(),
            expected: RawEvent::SIZE,
        });
    }
    // SAFETY: length checked; RawEvent is plain integers, valid for any bit pattern.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RawEvent>()) })
}

pub fn decode(raw: &RawEvent) -> Result<Event, DecodeError> {
    let a = &raw.args;
    // The zone as node and index at the given slots; u64::MAX marks an unresolved pointer.
    let zone_at = |node: usize, idx: usize| -> Result<ZoneId, DecodeError> {
        let idx = a[idx];
        if idx > u8::MAX as u64 {
            return Err(DecodeError::BadZone(raw.kind));
        }
        Ok(ZoneId {
            node: a[node] as i64 as i32,
            zone: idx as u8,
        })
    };
    let zone = || zone_at(arg::ZONE_NODE, arg::ZONE_IDX);
    let span = |start: usize, pages: usize| Span {
        start_pfn: a[start],
        spanned_pages: a[pages],
    };
    let op = match raw.kind {
        kind::ADD_MEMORY_RESOURCE => Op::AddMemoryResource {
            start: a[arg::AMR_RES_START],
            size: (a[arg::AMR_RES_END] + 1).saturating_sub(a[arg::AMR_RES_START]),
            mhp_flags: a[arg::AMR_MHP_FLAGS] as u32,
            nid_arg: a[arg::AMR_NID_ARG] as i64 as i32,
            ret: raw.ret,
        },
        kind::ARCH_ADD_MEMORY => Op::ArchAddMemory {
            node: a[arg::AAM_NID] as i64 as i32,
            start: a[arg::AAM_START],
            size: a[arg::AAM_SIZE],
            altmap: (a[arg::AAM_HAS_ALTMAP] != 0).then(|| Altmap {
                base_pfn: a[arg::AAM_ALTMAP_BASE_PFN],
                alloc: a[arg::AAM_ALTMAP_ALLOC],
                align: a[arg::AAM_ALTMAP_ALIGN],
            }),
            ret: raw.ret,
        },
        kind::MHP_INIT_MEMMAP_ON_MEMORY => Op::MhpInitMemmapOnMemory {
            pfn: a[arg::PFN],
            nr_pages: a[arg::NR_PAGES],
            zone: zone()?,
            ret: raw.ret,
        },
        kind::ONLINE_PAGES => Op::OnlinePages {
            pfn: a[arg::PFN],
            nr_pages: a[arg::NR_PAGES],
            zone: zone()?,
            ret: raw.ret,
        },
        kind::OFFLINE_PAGES => Op::OfflinePages {
            pfn: a[arg::PFN],
            nr_pages: a[arg::NR_PAGES],
            zone: zone()?,
            ret: raw.ret,
        },
        kind::MOVE_PFN_RANGE_TO_ZONE => Op::MovePfnRangeToZone {
            pfn: a[arg::PFN],
            nr_pages: a[arg::NR_PAGES],
            zone: zone()?,
            before: span(arg::SPAN_START_BEFORE, arg::SPAN_PAGES_BEFORE),
            after: span(arg::SPAN_START_AFTER, arg::SPAN_PAGES_AFTER),
        },
        kind::REMOVE_PFN_RANGE_FROM_ZONE => Op::RemovePfnRangeFromZone {
            pfn: a[arg::PFN],
            nr_pages: a[arg::NR_PAGES],
            zone: zone()?,
            before: span(arg::SPAN_START_BEFORE, arg::SPAN_PAGES_BEFORE),
            after: span(arg::SPAN_START_AFTER, arg::SPAN_PAGES_AFTER),
        },
        kind::SET_ZONE_CONTIGUOUS => Op::SetZoneContiguous {
            zone: zone()?,
            entry: a[arg::CONTIG_BEFORE] != 0,
            contiguous: a[arg::CONTIG_AFTER] != 0,
            span: span(arg::CONTIG_SPAN_START, arg::CONTIG_SPAN_PAGES),
        },
        kind::TRY_REMOVE_MEMORY => Op::TryRemoveMemory {
            start: a[arg::TRM_START],
            size: a[arg::TRM_SIZE],
            ret: raw.ret,
        },
        kind::ADD_PAGES => Op::AddPages {
            node: a[arg::AP_NID] as i64 as i32,
            pfn: a[arg::AP_PFN],
            nr_pages: a[arg::AP_NR_PAGES],
            altmap: a[arg::AP_HAS_ALTMAP] != 0,
            ret: raw.ret,
        },
        kind::PAGE_ALLOC => Op::PageAlloc {
            pfn: a[arg::PA_PFN],
            order: a[arg::PA_ORDER] as u32,
            window_node: a[arg::PA_WINDOW_NID] as i64 as i32,
            window_pfn: a[arg::PA_WINDOW_PFN],
        },
        kind::MEMMAP_INIT_RANGE => Op::MemmapInitRange {
            zone: zone_at(arg::MIR_NID, arg::MIR_ZONE_IDX)?,
            pfn: a[arg::MIR_START_PFN],
            nr_pages: a[arg::MIR_SIZE],
            context: a[arg::MIR_CONTEXT] as u32,
        },
        kind::MEMMAP_INIT_ZONE_DEVICE => Op::MemmapInitZoneDevice {
            zone: zone()?,
            pfn: a[arg::PFN],
            nr_pages: a[arg::NR_PAGES],
            pgmap_type: a[arg::PGMAP_TYPE] as u32,
            altmap: a[arg::PGMAP_FLAGS] as u32 & PGMAP_ALTMAP_VALID != 0,
        },
        kind::MEMREMAP_PAGES => Op::MemremapPages {
            node: a[arg::MR_NID] as i64 as i32,
            start: a[arg::MR_RANGE_START],
            end: a[arg::MR_RANGE_END].wrapping_add(1),
            nr_range: a[arg::MR_NR_RANGE] as u32,
            pgmap_type: a[arg::PGMAP_TYPE] as u32,
            altmap: a[arg::PGMAP_FLAGS] as u32 & PGMAP_ALTMAP_VALID != 0,
            ret: raw.ret,
        },
        kind::MEMUNMAP_PAGES => Op::MemunmapPages {
            start: a[arg::MR_RANGE_START],
            end: a[arg::MR_RANGE_END].wrapping_add(1),
            nr_range: a[arg::MR_NR_RANGE] as u32,
            pgmap_type: a[arg::PGMAP_TYPE] as u32,
            altmap: a[arg::PGMAP_FLAGS] as u32 & PGMAP_ALTMAP_VALID != 0,
        },
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok(Event {
        ts_ns: raw.ts_ns,
        duration_ns: raw.duration_ns,
        tid: raw.pid_tgid as u32,
        op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: u32, ret: i32, args: &[(usize, u64)]) -> RawEvent {
        let mut r = RawEvent {
            kind,
            ret,
            ts_ns: 5_000,
            duration_ns: 1_000,
            pid_tgid: (7u64 << 32) | 42,
            args: [0; probe_common::NR_ARGS],
        };
        for &(i, v) in args {
            r.args[i] = v;
        }
        r
    }

    fn bytes_of(r: &RawEvent) -> Vec<u8> {
        // SAFETY: RawEvent is repr(C) plain integers.
        unsafe { std::slice::from_raw_parts((r as *const RawEvent).cast::<u8>(), RawEvent::SIZE) }.to_vec()
    }

    #[test]
    fn add_memory_resource_uses_the_inclusive_resource_end() {
        let r = raw(
            kind::ADD_MEMORY_RESOURCE,
            0,
            &[
                (arg::AMR_RES_START, 0x1_0000_0000),
                (arg::AMR_RES_END, 0x1_07ff_ffff),
                (arg::AMR_MHP_FLAGS, 6),
            ],
        );
        let ev = decode(&parse_raw(&bytes_of(&r)).unwrap()).unwrap();
        assert_eq!(ev.tid, 42);
        assert_eq!(ev.start_ns(), 4_000);
        assert_eq!(
            ev.op,
            Op::AddMemoryResource {
                start: 0x1_0000_0000,
                size: 128 << 20,
                mhp_flags: 6,
                nid_arg: 0,
                ret: 0
            }
        );
    }

    #[test]
    fn arch_add_memory_altmap_only_when_passed() {
        let without = raw(
            kind::ARCH_ADD_MEMORY,
            0,
            &[(arg::AAM_NID, 1), (arg::AAM_SIZE, 256 << 20)],
        );
        match decode(&without).unwrap().op {
            Op::ArchAddMemory { node, altmap, .. } => {
                assert_eq!(node, 1);
                assert_eq!(altmap, None);
            }
            other => panic!("{other:?}"),
        }
        let with = raw(
            kind::ARCH_ADD_MEMORY,
            0,
            &[
                (arg::AAM_HAS_ALTMAP, 1),
                (arg::AAM_ALTMAP_BASE_PFN, 0x100000),
                (arg::AAM_ALTMAP_ALLOC, 512),
            ],
        );
        match decode(&with).unwrap().op {
            Op::ArchAddMemory { altmap: Some(a), .. } => {
                assert_eq!((a.base_pfn, a.alloc, a.align), (0x100000, 512, 0))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn negative_node_and_return_values_survive() {
        let r = raw(
            kind::OFFLINE_PAGES,
            -16,
            &[(arg::ZONE_NODE, (-1i64) as u64), (arg::ZONE_IDX, 3)],
        );
        match decode(&r).unwrap().op {
            Op::OfflinePages { zone, ret, .. } => {
                assert_eq!(zone, ZoneId { node: -1, zone: 3 });
                assert_eq!(ret, -16);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn span_changes_decode_both_sides() {
        let r = raw(
            kind::REMOVE_PFN_RANGE_FROM_ZONE,
            0,
            &[
                (arg::ZONE_IDX, 3),
                (arg::SPAN_START_BEFORE, 0x100000),
                (arg::SPAN_PAGES_BEFORE, 0x10000),
                (arg::SPAN_START_AFTER, 0x100000),
                (arg::SPAN_PAGES_AFTER, 0x8000),
            ],
        );
        match decode(&r).unwrap().op {
            Op::RemovePfnRangeFromZone { before, after, .. } => {
                assert_eq!(before.end_pfn(), 0x110000);
                assert_eq!(after.end_pfn(), 0x108000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(
            parse_raw(&[0u8; 3]),
            Err(DecodeError::Size {
                got: 3,
                expected: RawEvent::SIZE
            })
        );
        assert_eq!(decode(&raw(99, 0, &[])), Err(DecodeError::UnknownKind(99)));
        assert_eq!(
            decode(&raw(kind::ONLINE_PAGES, 0, &[(arg::ZONE_IDX, u64::MAX)])),
            Err(DecodeError::BadZone(kind::ONLINE_PAGES))
        );
    }
}
