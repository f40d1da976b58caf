//! Synthetic ring-buffer records of realistic hotplug sessions, for benchmarks and scale tests
//! (the lab gives real ones, but only a few dozen per run).
//!
//! Each block goes through what a 6.12 kernel with memmap_on_memory reports: hot-add (resource,
//! arch_add_memory, `__add_pages` with its memmap allocations), online (online_pages, zone
//! move, memmap init, contiguity check), offline (offline_pages, zone shrink, contiguity
//! check) and removal; the per-call argument layout is probe-common's.
use std::io::{self, Write};

use probe_common::{arg, kind, RawEvent, NR_ARGS};

use crate::{
    kernel::decode::{decode, parse_raw},
    kernel::frame::{BlockFrame, BlockList, Frame, NodeFrame, ZoneFrame},
    kernel::host::Host,
    kernel::kernel_btf::default_zone_names,
    kernel::probes::{ProbeStatus, PROBES},
    model::Layout,
    recording::{Clock, Header, Line, Summary, Writer, FORMAT_VERSION},
};

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
        Session::above(nodes, 0x100000)
    }

    /// Hot-adds from `base_pfn` up.
    pub fn above(nodes: u64, base_pfn: u64) -> Session {
        Session {
            ts_ns: 1_000_000_000,
            base_pfn,
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
            out.extend_from_slice(as_bytes(r));
        }
        out
    }
}

/// A record as the ring buffer holds it.
fn as_bytes(r: &RawEvent) -> &[u8] {
    // SAFETY: RawEvent is repr(C) plain integers without padding.
    unsafe { std::slice::from_raw_parts((r as *const RawEvent).cast::<u8>(), RawEvent::SIZE) }
}

/// What a 6.12 host with every probe attached looks like, for synthetic recordings.
pub fn layout() -> Layout {
    Layout {
        zone_names: default_zone_names(),
        page_size: 4096,
        struct_page_size: 64,
        block_size_bytes: BLOCK_PAGES << 12,
        page_flags: None,
        features: Default::default(),
    }
}

pub fn all_probes_attached() -> Vec<ProbeStatus> {
    PROBES
        .iter()
        .map(|s| ProbeStatus::attached(s, &s.alternatives[0], Vec::new()))
        .collect()
}

/// A host with `blocks` memory blocks online in ZONE_NORMAL, split evenly over `nodes` nodes.
pub fn frame(blocks: u64, nodes: u64) -> Frame {
    let nodes = nodes.clamp(1, blocks.max(1));
    let per_node = blocks.div_ceil(nodes);
    let node_of = |id: u64| (id / per_node.max(1)) as i32;
    let list: BlockList = (0..blocks)
        .map(|id| BlockFrame {
            id,
            state: "online".into(),
            node: Some(node_of(id)),
            valid_zones: Some("Normal".into()),
        })
        .collect();
    let zones = (0..nodes)
        .map(|n| {
            let first = n * per_node;
            let count = per_node.min(blocks - first);
            ZoneFrame {
                node: n as i32,
                zone: "Normal".into(),
                start_pfn: Some(first * BLOCK_PAGES),
                spanned: count * BLOCK_PAGES,
                present: count * BLOCK_PAGES,
                managed: count * BLOCK_PAGES * 98 / 100,
                free: None,
            }
        })
        .collect();
    Frame {
        block_size_bytes: BLOCK_PAGES << 12,
        page_size: 4096,
        blocks: list,
        nodes: (0..nodes as i32)
            .map(|node| NodeFrame {
                node,
                has_cpu: true,
                has_memory: true,
            })
            .collect(),
        zones,
        config: Default::default(),
    }
}

/// Writes a recording of a host with `blocks` online blocks on `nodes` nodes, on which `cycles`
/// more blocks are hot-added, onlined, offlined and removed one after another: each cycle a new
/// block, or with `slots` > 0 the same `slots` blocks over and over (a VM resizing, as virtio-mem
/// does).
pub fn write_recording(out: impl Write, blocks: u64, nodes: u64, cycles: u64, slots: u64) -> io::Result<u64> {
    let mut w = Writer::new(out);
    let start_ns = 1_000_000_000;
    w.write(&Line::Header(Box::new(Header {
        format_version: FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        host: Host {
            kernel_release: "synthetic".into(),
            lockdown: None,
            lockdown_in_kernel_log: false,
            btf_available: true,
            can_trace: true,
        },
        clock: Clock {
            monotonic_ns: start_ns,
            realtime_ns: 1_700_000_000_000_000_000,
        },
        layout: layout(),
        probes: all_probes_attached(),
        frame: frame(blocks, nodes),
    })))?;
    let mut session = Session::above(nodes, blocks * BLOCK_PAGES);
    let (mut raws, mut events) = (Vec::new(), 0);
    for b in 0..cycles {
        raws.clear();
        session.block_cycle(if slots > 0 { b % slots } else { b }, &mut raws);
        for r in &raws {
            let ev = parse_raw(as_bytes(r))
                .ok()
                .and_then(|raw| decode(&raw).ok())
                .ok_or_else(|| io::Error::other("a synthetic record did not decode"))?;
            w.write(&Line::Event(ev))?;
            events += 1;
        }
    }
    w.write(&Line::Summary(Box::new(Summary {
        events,
        lost_events: 0,
        undecodable_events: 0,
        duration_ns: session.ts_ns - start_ns,
        end_reason: crate::recording::EndReason::EndOfInput,
        frame: None,
    })))?;
    w.flush()?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kernel::decode::{decode, parse_raw},
        model::{BlockState, Model},
    };

    #[test]
    fn cycles_decode_and_leave_the_model_consistent() {
        let bytes = Session::new(2).bytes(4);
        let mut m = Model::new(layout());
        for rec in bytes.chunks(RawEvent::SIZE) {
            m.ingest(&decode(&parse_raw(rec).unwrap()).unwrap());
        }
        assert_eq!(m.events, 4 * 14);
        assert_eq!(m.blocks.len(), 4);
        assert!(m
            .blocks
            .iter()
            .all(|b| b.state == BlockState::Removed && b.onlined == 1));
        let inits: u64 = m.nodes.values().map(|n| n.memmap_init.count()).sum();
        assert_eq!(inits, 4, "one memmap init per block");
    }

    #[test]
    fn what_the_model_keeps_follows_the_host_not_the_run() {
        // A VM resizing the same four blocks over and over, as virtio-mem does.
        let mut session = Session::new(2);
        let mut m = Model::new(layout());
        m.set_keep(50);
        let mut raws = Vec::new();
        for cycle in 0..3000u64 {
            raws.clear();
            session.block_cycle(cycle % 4, &mut raws);
            for r in &raws {
                m.ingest(&decode(r).unwrap());
            }
        }
        assert_eq!(m.events, 3000 * 14);
        assert_eq!(m.blocks.len(), 4);
        assert_eq!(m.hot_adds.len(), 4, "one entry per hot-added range");
        assert_eq!(m.operations.len(), 50);
        assert_eq!(m.op_counts.values().sum::<u64>(), 4 * 3000, "counts stay exact");
        assert_eq!(m.attempts.list.len(), 50);
        assert_eq!(m.attempts.counts.values().sum::<u64>(), 2 * 3000);
        assert_eq!(m.ram_inits.len(), 50);
        assert!(m.zones.iter().all(|(_, z)| z.span_changes.len() <= 50));
        let online: u64 = m.nodes.values().map(|n| n.online.count()).sum();
        assert_eq!(online, 3000);
    }

    #[test]
    fn a_synthetic_recording_reads_back_whole() {
        let mut text = Vec::new();
        let events = write_recording(&mut text, 1000, 4, 3, 0).unwrap();
        assert_eq!(events, 3 * 14);
        let mut r = crate::recording::Reader::new(&text[..], "synth".into());
        let mut stream = crate::recording::stream::Stream::new("synth");
        stream.apply(crate::recording::stream::Update::Header(Box::new(
            r.header().unwrap(),
        )));
        while let Some(item) = r.next_item().unwrap() {
            stream.apply(match item {
                crate::recording::Item::Event(e) => crate::recording::stream::Update::Event(e),
                crate::recording::Item::Summary(s) => crate::recording::stream::Update::Summary(Box::new(s)),
            });
        }
        // The same lines handed over in batches, as the live source does, build the same report.
        let mut r = crate::recording::Reader::new(&text[..], "synth".into());
        let mut batched = crate::recording::stream::Stream::new("synth");
        batched.apply(crate::recording::stream::Update::Header(Box::new(
            r.header().unwrap(),
        )));
        let mut batch = Vec::new();
        while let Some(item) = r.next_item().unwrap() {
            match item {
                crate::recording::Item::Event(e) => batch.push(e),
                crate::recording::Item::Summary(s) => {
                    batched.apply(crate::recording::stream::Update::Events(std::mem::take(
                        &mut batch,
                    )));
                    batched.apply(crate::recording::stream::Update::Summary(Box::new(s)));
                }
            }
            if batch.len() == 5 {
                batched.apply(crate::recording::stream::Update::Events(std::mem::take(
                    &mut batch,
                )));
            }
        }
        assert_eq!(
            crate::views::report::Document::of_stream(&batched, Default::default())
                .unwrap()
                .to_json(),
            crate::views::report::Document::of_stream(&stream, Default::default())
                .unwrap()
                .to_json()
        );
        assert_eq!(batched.recent.len(), stream.recent.len());

        let m = stream.model.as_ref().unwrap();
        assert_eq!(m.blocks.len(), 1003);
        let online = m.blocks.iter().filter(|b| b.state == BlockState::Online).count();
        assert_eq!(online, 1000);
        assert_eq!(m.blocks[999].node, Some(3));
        assert_eq!(m.blocks[1002].state, BlockState::Removed);
        // One range per node, then the cycled blocks (one hot-add each).
        let doc = crate::views::report::Document::of_stream(&stream, Default::default()).unwrap();
        assert_eq!(doc.blocks.iter().map(|b| b.count).sum::<u64>(), 1003);
        assert_eq!(
            doc.blocks.len(),
            4 + 3,
            "{:?}",
            doc.blocks.iter().map(|b| b.name()).collect::<Vec<_>>()
        );
    }
}
