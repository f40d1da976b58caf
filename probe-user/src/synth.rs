//! Synthetic ring-buffer records of realistic hotplug sessions, for benchmarks and scale tests
//! (the lab gives real ones, but only a few dozen per run).
//!
//! Each block goes through what a 6.12 kernel with memmap_on_memory reports: hot-add (resource,
//! arch_add_memory, `__add_pages` with its memmap allocations), online (online_pages, zone
//! move, memmap init, contiguity check), offline (offline_pages, zone shrink, contiguity
//! check) and removal; the per-call argument layout is probe-common's.
use probe_common::{arg, kind, RawEvent, NR_ARGS};

/// Pages per 128 MiB block of 4 KiB pages.
pub const BLOCK_PAGES: u64 = 32_768;
const MOVABLE: u64 = 3;

/// A generator of records, `ts_ns` strictly increasing.
pub struct Session {
    ts_ns: u64,
    /// First pfn of the hot-added area (4 GiB, where qemu puts DIMMs).
    base_pfn: u64,
    nodes: u64,
}

impl Session {
    pub fn new(nodes: u64) -> Session {
        Session {
            ts_ns: 1_000_000_000,
            base_pfn: 0x100000,
            nodes: nodes.max(1),
        }
    }

    fn raw(&mut self, kind: u32, duration_ns: u64, ret: i32, args: &[(usize, u64)]) -> RawEvent {
        self.ts_ns += duration_ns + 1_000;
        let mut r = RawEvent {
            kind,
            ret,
            ts_ns: self.ts_ns,
            duration_ns,
            pid_tgid: (100u64 << 32) | 101,
            args: [0; NR_ARGS],
        };
        for &(i, v) in args {
            r.args[i] = v;
        }
        r
    }

    /// The records of one block's full cycle: add, online, offline, remove (14 records).
    pub fn block_cycle(&mut self, block: u64, out: &mut Vec<RawEvent>) {
        let pfn = self.base_pfn + block * BLOCK_PAGES;
        let node = block % self.nodes;
        let start = pfn << 12;
        let size = BLOCK_PAGES << 12;
        let memmap_pages = BLOCK_PAGES * 64 / 4096;
        let span = |s: u64, n: u64| [(arg::SPAN_START_BEFORE, s), (arg::SPAN_PAGES_BEFORE, n)];
        let zone = [(arg::ZONE_NODE, node), (arg::ZONE_IDX, MOVABLE)];

        out.push(self.raw(
            kind::ADD_PAGES,
            900_000,
            0,
            &[
                (arg::AP_NID, node),
                (arg::AP_PFN, pfn),
                (arg::AP_NR_PAGES, BLOCK_PAGES),
                (arg::AP_HAS_ALTMAP, 1),
            ],
        ));
        out.push(self.raw(
            kind::PAGE_ALLOC,
            0,
            0,
            &[
                (arg::PA_PFN, 0x8000 + block),
                (arg::PA_ORDER, 0),
                (arg::PA_WINDOW_NID, node),
                (arg::PA_WINDOW_PFN, pfn),
            ],
        ));
        out.push(self.raw(
            kind::ARCH_ADD_MEMORY,
            1_000_000,
            0,
            &[
                (arg::AAM_NID, node),
                (arg::AAM_START, start),
                (arg::AAM_SIZE, size),
                (arg::AAM_HAS_ALTMAP, 1),
                (arg::AAM_ALTMAP_BASE_PFN, pfn),
                (arg::AAM_ALTMAP_ALLOC, memmap_pages),
            ],
        ));
        out.push(self.raw(
            kind::ADD_MEMORY_RESOURCE,
            1_200_000,
            0,
            &[
                (arg::AMR_NID_ARG, node),
                (arg::AMR_RES_START, start),
                (arg::AMR_RES_END, start + size - 1),
                (arg::AMR_MHP_FLAGS, 2),
            ],
        ));
        // Online: the memmap-on-memory pages first, then the rest.
        let mut zone_args = vec![(arg::PFN, pfn), (arg::NR_PAGES, memmap_pages)];
        zone_args.extend(zone);
        out.push(self.raw(kind::MHP_INIT_MEMMAP_ON_MEMORY, 200_000, 0, &zone_args));
        out.push(self.raw(
            kind::MEMMAP_INIT_RANGE,
            3_000_000,
            0,
            &[
                (arg::MIR_SIZE, BLOCK_PAGES - memmap_pages),
                (arg::MIR_NID, node),
                (arg::MIR_ZONE_IDX, MOVABLE),
                (arg::MIR_START_PFN, pfn + memmap_pages),
                (arg::MIR_CONTEXT, 1),
            ],
        ));
        let mut move_args = vec![
            (arg::PFN, pfn + memmap_pages),
            (arg::NR_PAGES, BLOCK_PAGES - memmap_pages),
        ];
        move_args.extend(zone);
        move_args.extend(span(0, 0));
        move_args.extend([
            (arg::SPAN_START_AFTER, pfn + memmap_pages),
            (arg::SPAN_PAGES_AFTER, BLOCK_PAGES - memmap_pages),
        ]);
        out.push(self.raw(kind::MOVE_PFN_RANGE_TO_ZONE, 3_200_000, 0, &move_args));
        let mut online = vec![
            (arg::PFN, pfn + memmap_pages),
            (arg::NR_PAGES, BLOCK_PAGES - memmap_pages),
        ];
        online.extend(zone);
        out.push(self.raw(kind::ONLINE_PAGES, 5_000_000, 0, &online));
        let contig = |before: u64, after: u64, s: u64, n: u64| {
            [
                (arg::ZONE_NODE, node),
                (arg::ZONE_IDX, MOVABLE),
                (arg::CONTIG_BEFORE, before),
                (arg::CONTIG_AFTER, after),
                (arg::CONTIG_SPAN_START, s),
                (arg::CONTIG_SPAN_PAGES, n),
            ]
        };
        out.push(self.raw(
            kind::SET_ZONE_CONTIGUOUS,
            40_000,
            0,
            &contig(0, 1, pfn + memmap_pages, BLOCK_PAGES - memmap_pages),
        ));
        // Offline and remove.
        out.push(self.raw(kind::OFFLINE_PAGES, 8_000_000, 0, &online));
        let mut shrink = vec![
            (arg::PFN, pfn + memmap_pages),
            (arg::NR_PAGES, BLOCK_PAGES - memmap_pages),
        ];
        shrink.extend(zone);
        shrink.extend(span(pfn + memmap_pages, BLOCK_PAGES - memmap_pages));
        shrink.extend([(arg::SPAN_START_AFTER, 0), (arg::SPAN_PAGES_AFTER, 0)]);
        out.push(self.raw(kind::REMOVE_PFN_RANGE_FROM_ZONE, 300_000, 0, &shrink));
        out.push(self.raw(kind::SET_ZONE_CONTIGUOUS, 1_000, 0, &contig(0, 0, 0, 0)));
        let mut rm = vec![(arg::PFN, pfn), (arg::NR_PAGES, memmap_pages)];
        rm.extend(zone);
        rm.extend(span(0, 0));
        rm.extend([(arg::SPAN_START_AFTER, 0), (arg::SPAN_PAGES_AFTER, 0)]);
        out.push(self.raw(kind::REMOVE_PFN_RANGE_FROM_ZONE, 100_000, 0, &rm));
        out.push(self.raw(
            kind::TRY_REMOVE_MEMORY,
            2_000_000,
            0,
            &[(arg::TRM_START, start), (arg::TRM_SIZE, size)],
        ));
    }

    /// `blocks` full cycles, as the ring buffer hands them over (one record after another).
    pub fn bytes(&mut self, blocks: u64) -> Vec<u8> {
        let mut raws = Vec::new();
        for b in 0..blocks {
            self.block_cycle(b, &mut raws);
        }
        let mut out = Vec::with_capacity(raws.len() * RawEvent::SIZE);
        for r in &raws {
            // SAFETY: RawEvent is repr(C) plain integers without padding.
            out.extend_from_slice(unsafe {
                std::slice::from_raw_parts((r as *const RawEvent).cast::<u8>(), RawEvent::SIZE)
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        decode::{decode, parse_raw},
        model::{BlockState, Layout, Model},
    };

    #[test]
    fn cycles_decode_and_leave_the_model_consistent() {
        let bytes = Session::new(2).bytes(4);
        let mut m = Model::new(Layout {
            zone_names: crate::kernel_btf::default_zone_names(),
            page_size: 4096,
            struct_page_size: 64,
            block_size_bytes: BLOCK_PAGES << 12,
        });
        for rec in bytes.chunks(RawEvent::SIZE) {
            m.ingest(&decode(&parse_raw(rec).unwrap()).unwrap());
        }
        assert_eq!(m.events, 4 * 14);
        assert_eq!(m.blocks.len(), 4);
        assert!(m
            .blocks
            .values()
            .all(|b| b.state == BlockState::Removed && b.onlined == 1));
        let inits: u64 = m.nodes.values().map(|n| n.memmap_init.count()).sum();
        assert_eq!(inits, 4, "one memmap init per block");
    }
}
