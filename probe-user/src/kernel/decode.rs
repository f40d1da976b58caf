//! Raw ring-buffer records -> typed events. Pure: no kernel access.
use probe_common::{arg, kind, RawEvent};

use crate::model::event::{
    AddMoment, Altmap, Event, NotifyAction, OnlinePolicy, OnlinePolicyKind, OnlineType, Op, Span, ZoneId,
    PGMAP_ALTMAP_VALID,
};

/// PFN_SECTION_SHIFT on x86-64 (SECTION_SIZE_BITS 27 - PAGE_SHIFT 12): a memory block's
/// `start_section_nr` << this is its first pfn.
pub const PFN_SECTION_SHIFT: u32 = 15;

/// What decoding needs to know about the running kernel beyond the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeCtx {
    /// The kernel's memory notifier action values (`MEM_*`): bits on 6.1 and 6.12
    /// (`#define`s, not in BTF), `enum memory_block_state` (0-based, in BTF) on 7.x.
    notify_actions: Vec<(u64, NotifyAction)>,
}

impl Default for DecodeCtx {
    /// The `#define` encoding of 6.1 and 6.12.
    fn default() -> DecodeCtx {
        DecodeCtx {
            notify_actions: Vec::new(),
        }
    }
}

impl DecodeCtx {
    /// From the enumerators of `enum memory_block_state` when the kernel's BTF has it (7.x);
    /// the bit encoding otherwise.
    pub fn from_memory_block_state(values: Option<&[(String, u64)]>) -> DecodeCtx {
        let notify_actions = values
            .unwrap_or_default()
            .iter()
            .map(|(name, v)| (*v, NotifyAction::from_kernel_name(name)))
            .filter(|(_, a)| *a != NotifyAction::Unknown)
            .collect();
        DecodeCtx { notify_actions }
    }

    pub fn notify_action(&self, v: u64) -> NotifyAction {
        if self.notify_actions.is_empty() {
            return NotifyAction::from_bits(v);
        }
        self.notify_actions
            .iter()
            .find(|(k, _)| *k == v)
            .map_or(NotifyAction::Unknown, |(_, a)| *a)
    }
}

/// The kernel's `notifier_to_errno`: a notifier chain's result as an errno (0: all agreed).
pub fn notifier_to_errno(ret: i32) -> i32 {
    const NOTIFY_OK: i32 = 0x1;
    const NOTIFY_STOP_MASK: i32 = 0x8000;
    let ret = ret & !NOTIFY_STOP_MASK;
    if ret > NOTIFY_OK {
        NOTIFY_OK - ret
    } else {
        0
    }
}

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

/// `decode_with` the default context (memory notifier actions as 6.1 and 6.12 number them).
pub fn decode(raw: &RawEvent) -> Result<Event, DecodeError> {
    decode_with(&DecodeCtx::default(), raw)
}

pub fn decode_with(ctx: &DecodeCtx, raw: &RawEvent) -> Result<Event, DecodeError> {
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
        kind::MEMORY_SUBSYS_ONLINE => Op::BlockOnline {
            pfn: a[arg::BLK_SECTION_NR] << PFN_SECTION_SHIFT,
            requested: OnlineType::from_mmop(a[arg::BLK_ONLINE_TYPE]),
            node: a[arg::BLK_NID] as i64 as i32,
            zone: zone().ok(),
            policy: (a[arg::BLK_POLICY] != u64::MAX).then(|| OnlinePolicy {
                policy: OnlinePolicyKind::from_kernel(a[arg::BLK_POLICY]),
                auto_movable_ratio: (a[arg::BLK_RATIO] != u64::MAX).then_some(a[arg::BLK_RATIO] as u32),
            }),
            ret: raw.ret,
        },
        kind::MEMORY_SUBSYS_OFFLINE => Op::BlockOffline {
            pfn: a[arg::BLK_SECTION_NR] << PFN_SECTION_SHIFT,
            node: a[arg::BLK_NID] as i64 as i32,
            zone: zone().ok(),
            ret: raw.ret,
        },
        kind::START_ISOLATE_PAGE_RANGE => Op::IsolateRange {
            pfn: a[arg::ISO_START_PFN],
            nr_pages: a[arg::ISO_END_PFN].saturating_sub(a[arg::ISO_START_PFN]),
            ret: raw.ret,
        },
        kind::MEMORY_NOTIFY => Op::MemoryNotify {
            action: ctx.notify_action(a[arg::NOTIFY_ACTION]),
            ret: notifier_to_errno(raw.ret),
        },
        kind::NODE_NOTIFY => Op::NodeNotify {
            action: a[arg::NOTIFY_ACTION] as u32,
            ret: notifier_to_errno(raw.ret),
        },
        kind::WALK_SYSTEM_RAM_RANGE => Op::WalkSystemRam {
            pfn: a[arg::WSR_START_PFN],
            nr_pages: a[arg::WSR_NR_PAGES],
            ram_pages: a[arg::WSR_RAM_PAGES],
        },
        kind::DISSOLVE_FREE_HUGE_PAGES => Op::DissolveHugePages {
            pfn: a[arg::DHP_START_PFN],
            end_pfn: a[arg::DHP_END_PFN],
            ret: raw.ret,
        },
        kind::TEST_PAGES_ISOLATED => Op::TestPagesIsolated {
            pfn: a[arg::TPI_START_PFN],
            end_pfn: a[arg::TPI_END_PFN],
            fin_pfn: a[arg::TPI_FIN_PFN],
        },
        kind::MM_MIGRATE_PAGES => Op::MigratePages {
            succeeded: a[arg::MMP_SUCCEEDED],
            failed: a[arg::MMP_FAILED],
            reason: a[arg::MMP_REASON] as u32,
        },
        kind::DUMP_PAGE => {
            let mut bytes = [0u8; arg::DP_REASON_LEN];
            bytes[..8].copy_from_slice(&a[arg::DP_REASON].to_le_bytes());
            bytes[8..].copy_from_slice(&a[arg::DP_REASON + 1].to_le_bytes());
            let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Op::DumpPage {
                // u64::MAX when vmemmap_base was unknown.
                pfn: a[arg::DP_PFN],
                flags: a[arg::DP_FLAGS],
                refcount: a[arg::DP_REFCOUNT] as u32 as i32,
                mapcount: a[arg::DP_MAPCOUNT] as u32 as i32,
                page_type: a[arg::DP_PAGE_TYPE] as u32,
                reason: String::from_utf8_lossy(&bytes[..len]).into_owned(),
            }
        }
        kind::NODE_FREE_PAGES => Op::NodeFreePages {
            node: a[arg::NFP_NODE] as i64 as i32,
            free_pages: a[arg::NFP_FREE_PAGES],
            moment: if a[arg::NFP_MOMENT] == 0 {
                AddMoment::Before
            } else {
                AddMoment::After
            },
            window_pfn: a[arg::NFP_WINDOW_PFN],
        },
        kind::PAGE_REPORTING_REGISTER => Op::ReportingRegister {
            order: (a[arg::PRR_ORDER] != u64::MAX).then_some(a[arg::PRR_ORDER] as u32),
            device_order: a[arg::PRR_DEVICE_ORDER] as u32 as i32,
            capacity: (a[arg::PRR_CAPACITY] != u64::MAX).then_some(a[arg::PRR_CAPACITY] as u32),
            ret: raw.ret,
        },
        kind::PAGE_REPORTING_PROCESS => Op::ReportingCycle {
            totals_known: a[arg::PRC_TOTALS_KNOWN] != 0,
            reports: a[arg::PRC_REPORTS] as u32,
            failed: a[arg::PRC_FAILED] as u32,
            bytes: a[arg::PRC_BYTES],
            isolated_pages: a[arg::PRC_ISOLATED_PAGES],
        },
        kind::PAGE_REPORT => Op::PageReport {
            zone: (a[arg::PR_ZONE] <= u8::MAX as u64 && a[arg::PR_NODE] != u64::MAX).then(|| ZoneId {
                node: a[arg::PR_NODE] as i64 as i32,
                zone: a[arg::PR_ZONE] as u8,
            }),
            nents: a[arg::PR_NENTS] as u32,
            bytes: a[arg::PR_BYTES],
            orders: a[arg::PR_ORDER_MASK] as u32,
            first_pfn: (a[arg::PR_FIRST_PFN] != u64::MAX).then_some(a[arg::PR_FIRST_PFN]),
            in_seen_cycle: Some(a[arg::PR_IN_SEEN_CYCLE] != 0),
            ret: raw.ret,
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
    fn memory_blocks_start_at_their_first_section() {
        let r = raw(
            kind::MEMORY_SUBSYS_ONLINE,
            0,
            &[
                (arg::BLK_SECTION_NR, 0x20),
                (arg::BLK_NID, 1),
                (arg::ZONE_NODE, 1),
                (arg::ZONE_IDX, 3),
                (arg::BLK_ONLINE_TYPE, 3),
                (arg::BLK_POLICY, 1),
                (arg::BLK_RATIO, 301),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::BlockOnline {
                pfn: 0x100000,
                requested: OnlineType::OnlineMovable,
                node: 1,
                zone: Some(ZoneId { node: 1, zone: 3 }),
                policy: Some(OnlinePolicy {
                    policy: OnlinePolicyKind::AutoMovable,
                    auto_movable_ratio: Some(301)
                }),
                ret: 0
            }
        );
        // Where the kernel's variables could not be read, the policy is not known.
        let r = raw(
            kind::MEMORY_SUBSYS_ONLINE,
            0,
            &[(arg::BLK_POLICY, u64::MAX), (arg::BLK_RATIO, u64::MAX)],
        );
        assert!(matches!(
            decode(&r).unwrap().op,
            Op::BlockOnline { policy: None, .. }
        ));
        // An offline of a block with no single zone: refused before offline_pages.
        let r = raw(
            kind::MEMORY_SUBSYS_OFFLINE,
            -22,
            &[
                (arg::BLK_SECTION_NR, 0x21),
                (arg::BLK_NID, 1),
                (arg::ZONE_NODE, u64::MAX),
                (arg::ZONE_IDX, u64::MAX),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::BlockOffline {
                pfn: 0x108000,
                node: 1,
                zone: None,
                ret: -22
            }
        );
    }

    #[test]
    fn notifier_results_become_errnos() {
        assert_eq!(notifier_to_errno(0), 0); // NOTIFY_DONE
        assert_eq!(notifier_to_errno(1), 0); // NOTIFY_OK
        assert_eq!(notifier_to_errno(0x8002), -1); // NOTIFY_BAD: -EPERM
                                                   // notifier_from_errno(-EBUSY) = NOTIFY_STOP_MASK | (NOTIFY_OK + 16)
        assert_eq!(notifier_to_errno(0x8000 | 17), -16);
        let r = raw(kind::MEMORY_NOTIFY, 0x8000 | 17, &[(arg::NOTIFY_ACTION, 2)]);
        assert_eq!(
            decode(&r).unwrap().op,
            Op::MemoryNotify {
                action: NotifyAction::GoingOffline,
                ret: -16
            }
        );
        let r = raw(kind::NODE_NOTIFY, 1, &[(arg::NOTIFY_ACTION, 1 << 3)]);
        assert_eq!(decode(&r).unwrap().op, Op::NodeNotify { action: 8, ret: 0 });
    }

    #[test]
    fn notify_actions_follow_the_kernels_numbering() {
        // 6.1 / 6.12: bits.
        let bits = DecodeCtx::default();
        assert_eq!(bits.notify_action(1), NotifyAction::Online);
        assert_eq!(bits.notify_action(0x40), NotifyAction::PrepareOnline);
        // 7.x: enum memory_block_state.
        let names = [
            "MEM_ONLINE",
            "MEM_GOING_OFFLINE",
            "MEM_OFFLINE",
            "MEM_GOING_ONLINE",
            "MEM_CANCEL_ONLINE",
            "MEM_CANCEL_OFFLINE",
        ];
        let values: Vec<(String, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i as u64))
            .collect();
        let ctx = DecodeCtx::from_memory_block_state(Some(&values));
        assert_eq!(ctx.notify_action(0), NotifyAction::Online);
        assert_eq!(ctx.notify_action(1), NotifyAction::GoingOffline);
        assert_eq!(ctx.notify_action(3), NotifyAction::GoingOnline);
        assert_eq!(ctx.notify_action(8), NotifyAction::Unknown);
        let r = raw(kind::MEMORY_NOTIFY, 1, &[(arg::NOTIFY_ACTION, 1)]);
        assert_eq!(
            decode_with(&ctx, &r).unwrap().op,
            Op::MemoryNotify {
                action: NotifyAction::GoingOffline,
                ret: 0
            }
        );
        assert_eq!(DecodeCtx::from_memory_block_state(None), DecodeCtx::default());
    }

    #[test]
    fn offline_steps_decode() {
        let r = raw(
            kind::START_ISOLATE_PAGE_RANGE,
            -16,
            &[(arg::ISO_START_PFN, 0x108200), (arg::ISO_END_PFN, 0x110000)],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::IsolateRange {
                pfn: 0x108200,
                nr_pages: 32256,
                ret: -16
            }
        );
        let r = raw(
            kind::WALK_SYSTEM_RAM_RANGE,
            0,
            &[
                (arg::WSR_START_PFN, 0x108200),
                (arg::WSR_NR_PAGES, 32256),
                (arg::WSR_RAM_PAGES, 32000),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::WalkSystemRam {
                pfn: 0x108200,
                nr_pages: 32256,
                ram_pages: 32000
            }
        );
        let r = raw(
            kind::DISSOLVE_FREE_HUGE_PAGES,
            -12,
            &[(arg::DHP_START_PFN, 0x100000), (arg::DHP_END_PFN, 0x108000)],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::DissolveHugePages {
                pfn: 0x100000,
                end_pfn: 0x108000,
                ret: -12
            }
        );
        let r = raw(
            kind::TEST_PAGES_ISOLATED,
            0,
            &[
                (arg::TPI_START_PFN, 0x100000),
                (arg::TPI_END_PFN, 0x108000),
                (arg::TPI_FIN_PFN, 0x100004),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::TestPagesIsolated {
                pfn: 0x100000,
                end_pfn: 0x108000,
                fin_pfn: 0x100004
            }
        );
        let r = raw(
            kind::MM_MIGRATE_PAGES,
            0,
            &[
                (arg::MMP_SUCCEEDED, 8),
                (arg::MMP_FAILED, 1),
                (arg::MMP_REASON, 2),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::MigratePages {
                succeeded: 8,
                failed: 1,
                reason: 2
            }
        );
    }

    #[test]
    fn dumped_pages_keep_their_words_and_reason() {
        let mut reason = [0u8; 16];
        reason[..14].copy_from_slice(b"unmovable page");
        let r = raw(
            kind::DUMP_PAGE,
            0,
            &[
                (arg::DP_PFN, 0x10020f),
                (arg::DP_FLAGS, (1 << 54) | (3 << 51) | (1 << 10)),
                (arg::DP_REFCOUNT, 1),
                (arg::DP_MAPCOUNT, u32::MAX as u64),
                (arg::DP_PAGE_TYPE, 0xf500_0000),
                (
                    arg::DP_REASON,
                    u64::from_le_bytes(reason[..8].try_into().unwrap()),
                ),
                (
                    arg::DP_REASON + 1,
                    u64::from_le_bytes(reason[8..].try_into().unwrap()),
                ),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::DumpPage {
                pfn: 0x10020f,
                flags: (1 << 54) | (3 << 51) | (1 << 10),
                refcount: 1,
                mapcount: -1,
                page_type: 0xf500_0000,
                reason: "unmovable page".into()
            }
        );
        // The kernel side reads at most 15 bytes and a NUL; a full 16 would still decode.
        let r = raw(
            kind::DUMP_PAGE,
            0,
            &[
                (arg::DP_REASON, u64::from_le_bytes(*b"migratio")),
                (arg::DP_REASON + 1, u64::from_le_bytes(*b"n failur")),
            ],
        );
        match decode(&r).unwrap().op {
            Op::DumpPage { reason, .. } => assert_eq!(reason, "migration failur"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn node_free_pages_before_and_after() {
        let r = raw(
            kind::NODE_FREE_PAGES,
            0,
            &[
                (arg::NFP_NODE, 1),
                (arg::NFP_FREE_PAGES, 100_000),
                (arg::NFP_MOMENT, 1),
                (arg::NFP_WINDOW_PFN, 0x100000),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::NodeFreePages {
                node: 1,
                free_pages: 100_000,
                moment: AddMoment::After,
                window_pfn: 0x100000
            }
        );
    }

    #[test]
    fn free_page_reporting_decodes() {
        let r = raw(
            kind::PAGE_REPORT,
            0,
            &[
                (arg::PR_NENTS, 32),
                (arg::PR_BYTES, 64 << 20),
                (arg::PR_NODE, 1),
                (arg::PR_ZONE, 3),
                (arg::PR_ORDER_MASK, 1 << 9),
                (arg::PR_FIRST_PFN, 0x100200),
                (arg::PR_IN_SEEN_CYCLE, 1),
            ],
        );
        let ev = decode(&r).unwrap();
        assert_eq!(ev.duration_ns, 1_000, "the ack wait is the event's duration");
        assert_eq!(
            ev.op,
            Op::PageReport {
                zone: Some(ZoneId { node: 1, zone: 3 }),
                nents: 32,
                bytes: 64 << 20,
                orders: 1 << 9,
                first_pfn: Some(0x100200),
                in_seen_cycle: Some(true),
                ret: 0,
            }
        );
        // An unreadable page: no zone, no pfn; a failed report keeps its errno.
        let r = raw(
            kind::PAGE_REPORT,
            -5,
            &[
                (arg::PR_NENTS, 3),
                (arg::PR_NODE, u64::MAX),
                (arg::PR_ZONE, u64::MAX),
                (arg::PR_FIRST_PFN, u64::MAX),
            ],
        );
        match decode(&r).unwrap().op {
            Op::PageReport {
                zone,
                first_pfn,
                in_seen_cycle,
                ret,
                ..
            } => assert_eq!(
                (zone, first_pfn, in_seen_cycle, ret),
                (None, None, Some(false), -5)
            ),
            other => panic!("{other:?}"),
        }

        let r = raw(
            kind::PAGE_REPORTING_PROCESS,
            0,
            &[
                (arg::PRC_REPORTS, 8),
                (arg::PRC_BYTES, 512 << 20),
                (arg::PRC_ISOLATED_PAGES, 512 << 8),
                (arg::PRC_FAILED, 1),
                (arg::PRC_TOTALS_KNOWN, 1),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::ReportingCycle {
                totals_known: true,
                reports: 8,
                failed: 1,
                bytes: 512 << 20,
                isolated_pages: 512 << 8,
            }
        );

        // 6.12: no capacity member; order from kallsyms.
        let r = raw(
            kind::PAGE_REPORTING_REGISTER,
            0,
            &[
                (arg::PRR_ORDER, 9),
                (arg::PRR_DEVICE_ORDER, u32::MAX as u64),
                (arg::PRR_CAPACITY, u64::MAX),
            ],
        );
        assert_eq!(
            decode(&r).unwrap().op,
            Op::ReportingRegister {
                order: Some(9),
                device_order: -1,
                capacity: None,
                ret: 0,
            }
        );
        let r = raw(
            kind::PAGE_REPORTING_REGISTER,
            0,
            &[
                (arg::PRR_ORDER, u64::MAX),
                (arg::PRR_DEVICE_ORDER, 0),
                (arg::PRR_CAPACITY, 32),
            ],
        );
        match decode(&r).unwrap().op {
            Op::ReportingRegister { order, capacity, .. } => assert_eq!((order, capacity), (None, Some(32))),
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
