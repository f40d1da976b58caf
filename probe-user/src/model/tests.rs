//! Model tests on synthetic event sequences shaped like what the 6.1 lab guest produces.
use super::*;
use crate::{
    kernel::frame::{BlockFrame, NodeFrame, ZoneFrame},
    model::event::Altmap,
};

const MIB: u64 = 1 << 20;
const HP_BASE: u64 = 0x1_0000_0000;
const MOVABLE: ZoneId = ZoneId { node: 1, zone: 3 };

fn layout() -> Layout {
    Layout {
        zone_names: crate::kernel::kernel_btf::default_zone_names(),
        page_size: 4096,
        struct_page_size: 64,
        block_size_bytes: 128 * MIB,
        page_flags: None,
        features: Default::default(),
    }
}

fn frame() -> Frame {
    Frame {
        block_size_bytes: 128 * MIB,
        page_size: 4096,
        blocks: vec![BlockFrame {
            id: 4,
            state: "online".into(),
            node: Some(1),
            valid_zones: Some("Normal".into()),
        }]
        .into_iter()
        .collect(),
        nodes: vec![
            NodeFrame {
                node: 0,
                has_cpu: true,
                has_memory: true,
            },
            NodeFrame {
                node: 1,
                has_cpu: true,
                has_memory: true,
            },
        ],
        zones: vec![ZoneFrame {
            node: 1,
            zone: "Movable".into(),
            start_pfn: None,
            spanned: 0,
            present: 0,
            managed: 0,
            free: None,
        }],
        config: Default::default(),
    }
}

struct Seq {
    ts: u64,
    events: Vec<Event>,
}

impl Seq {
    fn new() -> Seq {
        Seq {
            ts: 1_000,
            events: Vec::new(),
        }
    }

    fn push(&mut self, duration_ns: u64, op: Op) {
        self.ts += duration_ns + 10;
        self.events.push(Event {
            ts_ns: self.ts,
            duration_ns,
            tid: 1,
            op,
        });
    }

    fn hot_add(&mut self, start: u64, size: u64, altmap: Option<Altmap>) {
        self.push(
            50,
            Op::ArchAddMemory {
                node: 1,
                start,
                size,
                altmap,
                ret: 0,
            },
        );
        let flags = if altmap.is_some() { 6 } else { 4 };
        self.push(
            100,
            Op::AddMemoryResource {
                start,
                size,
                mhp_flags: flags,
                nid_arg: 0,
                ret: 0,
            },
        );
    }

    fn span(&mut self, grow: bool, pfn: u64, nr: u64, before: (u64, u64), after: (u64, u64)) {
        let (before, after) = (
            Span {
                start_pfn: before.0,
                spanned_pages: before.1,
            },
            Span {
                start_pfn: after.0,
                spanned_pages: after.1,
            },
        );
        let op = if grow {
            Op::MovePfnRangeToZone {
                pfn,
                nr_pages: nr,
                zone: MOVABLE,
                before,
                after,
            }
        } else {
            Op::RemovePfnRangeFromZone {
                pfn,
                nr_pages: nr,
                zone: MOVABLE,
                before,
                after,
            }
        };
        self.push(if grow { 3_000 } else { 100 }, op);
    }

    fn contiguous(&mut self, value: bool, span: (u64, u64)) {
        let span = Span {
            start_pfn: span.0,
            spanned_pages: span.1,
        };
        self.push(
            20,
            Op::SetZoneContiguous {
                zone: MOVABLE,
                entry: false,
                contiguous: value,
                span,
            },
        );
    }
}

/// 128 MiB DIMM (self-hosted memmap) then 256 MiB DIMM (memmap from existing memory) on node 1,
/// onlined movable, offlined, removed: the 6.1 lab scenario.
fn lab_like_sequence() -> Vec<Event> {
    let mut s = Seq::new();
    s.hot_add(
        HP_BASE,
        128 * MIB,
        Some(Altmap {
            base_pfn: 0x100000,
            alloc: 512,
            align: 0,
        }),
    );
    s.hot_add(HP_BASE + 128 * MIB, 256 * MIB, None);
    // online block 32: vmemmap pages first, then the rest
    s.push(
        4_000,
        Op::MhpInitMemmapOnMemory {
            pfn: 0x100000,
            nr_pages: 512,
            zone: MOVABLE,
            ret: 0,
        },
    );
    s.span(true, 0x100000, 512, (0, 0), (0x100000, 512));
    s.span(true, 0x100200, 32256, (0x100000, 512), (0x100000, 0x8000));
    s.contiguous(false, (0x100000, 0x8000));
    s.push(
        90_000,
        Op::OnlinePages {
            pfn: 0x100200,
            nr_pages: 32256,
            zone: MOVABLE,
            ret: 0,
        },
    );
    for (i, pfn) in [0x108000u64, 0x110000].into_iter().enumerate() {
        s.span(
            true,
            pfn,
            0x8000,
            (0x100000, 0x8000 * (i as u64 + 1)),
            (0x100000, 0x8000 * (i as u64 + 2)),
        );
        s.contiguous(false, (0x100000, 0x8000 * (i as u64 + 2)));
        s.push(
            80_000,
            Op::OnlinePages {
                pfn,
                nr_pages: 0x8000,
                zone: MOVABLE,
                ret: 0,
            },
        );
    }
    // offline in reverse, shrinking the span back to nothing
    s.push(
        70_000,
        Op::OfflinePages {
            pfn: 0x110000,
            nr_pages: 0x8000,
            zone: MOVABLE,
            ret: 0,
        },
    );
    s.span(false, 0x110000, 0x8000, (0x100000, 0x18000), (0x100000, 0x10000));
    s.push(
        70_000,
        Op::OfflinePages {
            pfn: 0x108000,
            nr_pages: 0x8000,
            zone: MOVABLE,
            ret: 0,
        },
    );
    s.span(false, 0x108000, 0x8000, (0x100000, 0x10000), (0x100000, 0x8000));
    s.push(
        70_000,
        Op::OfflinePages {
            pfn: 0x100200,
            nr_pages: 32256,
            zone: MOVABLE,
            ret: 0,
        },
    );
    s.span(false, 0x100200, 32256, (0x100000, 0x8000), (0x100000, 512));
    s.span(false, 0x100000, 512, (0x100000, 512), (0, 0));
    s.contiguous(true, (0, 0));
    s.push(
        500,
        Op::TryRemoveMemory {
            start: HP_BASE,
            size: 128 * MIB,
            ret: 0,
        },
    );
    s.push(
        500,
        Op::TryRemoveMemory {
            start: HP_BASE + 128 * MIB,
            size: 256 * MIB,
            ret: 0,
        },
    );
    s.events
}

fn model_of(events: &[Event]) -> Model {
    let mut m = Model::new(layout());
    m.apply_frame(&frame());
    for e in events {
        m.ingest(e);
    }
    m
}

#[test]
fn hot_adds_count_on_the_real_node_not_the_group_id() {
    let m = model_of(&lab_like_sequence());
    assert_eq!(m.nodes[&1].hot_adds, 2);
    assert_eq!(
        m.nodes[&0].hot_adds, 0,
        "nid_arg 0 is a memory-group id under MHP_NID_IS_MGID"
    );
    let adds: Vec<_> = m.operations.iter().filter(|o| o.kind == OpKind::Add).collect();
    assert_eq!(adds.len(), 2);
    assert_eq!(
        (adds[1].start, adds[1].size, adds[1].node),
        (HP_BASE + 128 * MIB, 256 * MIB, Some(1))
    );
}

#[test]
fn vmemmap_placement_per_block() {
    let m = model_of(&lab_like_sequence());
    let b = |id: u64| &m.blocks[id];
    assert_eq!(
        (b(32).placement, b(32).vmemmap_pages),
        (Placement::SelfHosted, 512)
    );
    for id in [33, 34] {
        assert_eq!(b(id).placement, Placement::ExistingMemory);
        assert_eq!(
            b(id).vmemmap_pages,
            512,
            "2 MiB of struct pages per 128 MiB block"
        );
    }
    assert_eq!(
        b(4).placement,
        Placement::Unknown,
        "boot block: not seen being added"
    );
}

#[test]
fn block_lifecycle_and_zone() {
    let m = model_of(&lab_like_sequence());
    for id in [32, 33, 34] {
        let b = &m.blocks[id];
        assert!(b.hot_added);
        assert_eq!((b.node, b.zone), (Some(1), Some(3)));
        assert_eq!((b.onlined, b.offlined), (1, 1));
        assert_eq!(b.state, BlockState::Removed);
    }
    assert_eq!(m.blocks[4].state, BlockState::Online);
    assert_eq!(m.blocks[4].zone, Some(2));
    assert!(!m.blocks[4].hot_added);
}

#[test]
fn per_node_durations() {
    let m = model_of(&lab_like_sequence());
    let n = &m.nodes[&1];
    assert_eq!(n.online.count(), 3);
    assert_eq!(n.offline.count(), 3);
    let init = n.memmap_init.summary();
    assert_eq!(init.count, 4);
    assert_eq!(init.pages, 512 + 32256 + 2 * 0x8000);
    assert_eq!(init.max_ns, 3_000);
    assert_eq!(n.removes, 1 + 1);
}

#[test]
fn zone_span_returns_to_where_it_started() {
    let m = model_of(&lab_like_sequence());
    let z = &m.zones[&MOVABLE];
    assert_eq!(z.span, Span::default());
    assert_eq!(z.span_changes.len(), 4 + 4);
    assert!(z
        .span_changes
        .iter()
        .any(|c| c.after.spanned_pages > c.before.spanned_pages));
    assert_eq!(z.span_changes.last().unwrap().cause, "remove_pfn_range_from_zone");
}

#[test]
fn contiguity_transitions_only_on_change() {
    let m = model_of(&lab_like_sequence());
    let z = &m.zones[&MOVABLE];
    assert_eq!(z.contiguity_checks.count(), 4);
    let changes: Vec<_> = z.contiguity_changes.iter().map(|c| (c.before, c.after)).collect();
    assert_eq!(changes, vec![(None, false), (Some(false), true)]);
    assert_eq!(z.contiguous, Some(true));
}

#[test]
fn failures_are_counted_and_keep_state() {
    let mut s = Seq::new();
    s.hot_add(HP_BASE, 128 * MIB, None);
    s.push(
        10,
        Op::OfflinePages {
            pfn: 0x100000,
            nr_pages: 0x8000,
            zone: MOVABLE,
            ret: -16,
        },
    );
    s.push(
        10,
        Op::TryRemoveMemory {
            start: HP_BASE,
            size: 128 * MIB,
            ret: -16,
        },
    );
    let m = model_of(&s.events);
    assert_eq!(m.nodes[&1].failed, 2);
    assert_eq!(m.blocks[32].state, BlockState::Offline);
    assert_eq!(m.blocks[32].offlined, 0);
    assert_eq!(m.operations.last().unwrap().ret, -16);
}

#[test]
fn online_of_a_block_added_before_tracing_creates_it() {
    let mut s = Seq::new();
    s.push(
        10,
        Op::OnlinePages {
            pfn: 0x200000,
            nr_pages: 0x8000,
            zone: MOVABLE,
            ret: 0,
        },
    );
    let m = model_of(&s.events);
    let b = &m.blocks[64];
    assert_eq!(
        (b.state, b.node, b.hot_added, b.placement),
        (BlockState::Online, Some(1), false, Placement::Unknown)
    );
}

#[test]
fn layout_block_arithmetic() {
    let l = layout();
    assert_eq!(l.block_of_pfn(0x100000), 32);
    assert_eq!(l.blocks_of_range(HP_BASE, 256 * MIB), 32..=33);
    assert_eq!(l.blocks_of_pfns(0x100200, 32256), 32..=32);
    assert_eq!(l.memmap_pages_for(32768), 512);
    assert_eq!(l.zone_index("Movable"), Some(3));
    assert_eq!(l.zone_name(9), "zone9");
}

#[test]
fn slow_path_calls_count_only_when_the_counter_runs() {
    use crate::kernel::probes::{ProbeStatus, PAGEBLOCK_PFN_TO_PAGE, PROBES};
    let spec = PROBES.iter().find(|p| p.name == PAGEBLOCK_PFN_TO_PAGE).unwrap();
    let mut m = Model::new(layout());
    m.set_probes(&[ProbeStatus::failed(spec, "off by default", Vec::new())]);
    assert!(
        !m.slowpath_counted,
        "left out: its zones' 0 calls mean 'not counted'"
    );
    m.set_probes(&[ProbeStatus::attached(spec, &spec.alternatives[0], Vec::new())]);
    assert!(m.slowpath_counted);

    // A recording made without a probe list still counts once samples arrive.
    let mut s = Seq::new();
    s.push(
        0,
        Op::SlowPathSample {
            zone: MOVABLE,
            calls: 7,
        },
    );
    let m = model_of(&s.events);
    assert!(m.slowpath_counted);
    assert_eq!(m.zones.get(&MOVABLE).map(|z| z.slowpath_calls()), Some(7));
}
