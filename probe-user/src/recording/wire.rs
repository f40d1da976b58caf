//! Event lines read fast: typed, field by field, with no intermediate values.
//!
//! `Op` is tagged by `kind` inside its object (`{"kind":"online_pages","pfn":...}`). serde's
//! derive for such an enum buffers the whole object in a generic value before looking at the
//! tag; replaying a recording spent most of its time there. Written lines have `kind` first,
//! so this reader takes the tag and streams the rest of the object straight into the
//! variant's fields. A line edited to put `kind` elsewhere is still read, the slow way.
use std::fmt;

use serde::{
    de::{
        self, value::BorrowedStrDeserializer, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess,
        VariantAccess, Visitor,
    },
    Deserialize, Deserializer,
};

use crate::model::event::{
    AddMoment, Altmap, Event, NotifyAction, OnlinePolicy, OnlineType, Op, Span, ZoneId,
};

/// An event, its `op` read by [`op`].
pub fn event<'de, D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
    EventDef::deserialize(d)
}

#[derive(Deserialize)]
#[serde(remote = "Event")]
struct EventDef {
    ts_ns: u64,
    duration_ns: u64,
    tid: u32,
    #[serde(deserialize_with = "op")]
    op: Op,
}

/// An `Op` object, `kind` first or (slowly) anywhere.
pub fn op<'de, D: Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
    d.deserialize_map(OpVisitor)
}

struct OpVisitor;

impl<'de> Visitor<'de> for OpVisitor {
    type Value = Op;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an op: an object with a \"kind\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
        match map.next_key::<Text<'de>>()? {
            Some(key) if key.as_str() == "kind" => {
                let kind: Text<'de> = map.next_value()?;
                OpDef::deserialize(KindFirst { kind, map })
            }
            Some(key) => {
                let mut obj = serde_json::Map::new();
                obj.insert(key.as_str().to_owned(), map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    obj.insert(k, v);
                }
                Op::deserialize(serde_json::Value::Object(obj)).map_err(de::Error::custom)
            }
            None => Err(de::Error::missing_field("kind")),
        }
    }
}

/// A string borrowed from the line when it has no escapes, owned otherwise.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// The rest of an op's object after its `kind`, presented as an externally tagged enum:
/// the kind names the variant, the remaining entries are its fields.
struct KindFirst<'de, A> {
    kind: Text<'de>,
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for KindFirst<'de, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for KindFirst<'de, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), A::Error> {
        let v = match &self.kind {
            Text::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s))?,
            Text::Owned(s) => seed.deserialize(s.as_str().into_deserializer())?,
        };
        Ok((v, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for KindFirst<'de, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        Err(de::Error::custom("every kind of op has fields"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, A::Error> {
        Err(de::Error::custom("every kind of op has named fields"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("every kind of op has named fields"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_map(self.map)
    }
}

/// `Op` as written, for its kind-first reader. serde checks that each variant here builds the
/// `Op` variant of the same name; [`_every_op_is_here`] that no `Op` variant is missing.
#[derive(Deserialize)]
#[serde(remote = "Op", rename_all = "snake_case")]
enum OpDef {
    AddMemoryResource {
        start: u64,
        size: u64,
        mhp_flags: u32,
        nid_arg: i32,
        ret: i32,
    },
    ArchAddMemory {
        node: i32,
        start: u64,
        size: u64,
        altmap: Option<Altmap>,
        ret: i32,
    },
    MhpInitMemmapOnMemory {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    },
    OnlinePages {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    },
    MovePfnRangeToZone {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        before: Span,
        after: Span,
    },
    OfflinePages {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        ret: i32,
    },
    RemovePfnRangeFromZone {
        pfn: u64,
        nr_pages: u64,
        zone: ZoneId,
        before: Span,
        after: Span,
    },
    SetZoneContiguous {
        zone: ZoneId,
        entry: bool,
        contiguous: bool,
        span: Span,
    },
    TryRemoveMemory {
        start: u64,
        size: u64,
        ret: i32,
    },
    AddPages {
        node: i32,
        pfn: u64,
        nr_pages: u64,
        altmap: bool,
        ret: i32,
    },
    PageAlloc {
        pfn: u64,
        order: u32,
        window_node: i32,
        window_pfn: u64,
    },
    MemmapInitRange {
        zone: ZoneId,
        pfn: u64,
        nr_pages: u64,
        context: u32,
    },
    MemmapInitZoneDevice {
        zone: ZoneId,
        pfn: u64,
        nr_pages: u64,
        pgmap_type: u32,
        altmap: bool,
    },
    MemremapPages {
        node: i32,
        start: u64,
        end: u64,
        nr_range: u32,
        pgmap_type: u32,
        altmap: bool,
        ret: i32,
    },
    MemunmapPages {
        start: u64,
        end: u64,
        nr_range: u32,
        pgmap_type: u32,
        altmap: bool,
    },
    BlockOnline {
        pfn: u64,
        requested: OnlineType,
        node: i32,
        zone: Option<ZoneId>,
        #[serde(default)]
        policy: Option<OnlinePolicy>,
        ret: i32,
    },
    BlockOffline {
        pfn: u64,
        node: i32,
        zone: Option<ZoneId>,
        ret: i32,
    },
    IsolateRange {
        pfn: u64,
        nr_pages: u64,
        ret: i32,
    },
    MemoryNotify {
        action: NotifyAction,
        ret: i32,
    },
    NodeNotify {
        action: u32,
        ret: i32,
    },
    WalkSystemRam {
        pfn: u64,
        nr_pages: u64,
        ram_pages: u64,
    },
    DissolveHugePages {
        pfn: u64,
        end_pfn: u64,
        ret: i32,
    },
    TestPagesIsolated {
        pfn: u64,
        end_pfn: u64,
        fin_pfn: u64,
    },
    MigratePages {
        succeeded: u64,
        failed: u64,
        reason: u32,
    },
    DumpPage {
        pfn: u64,
        flags: u64,
        refcount: i32,
        mapcount: i32,
        page_type: u32,
        reason: String,
    },
    NodeFreePages {
        node: i32,
        free_pages: u64,
        moment: AddMoment,
        window_pfn: u64,
    },
    SlowPathSample {
        zone: ZoneId,
        calls: u64,
    },
    LostEventsSample {
        total: u64,
    },
    ProbeCostSample {
        probe: String,
        runs: u64,
        run_time_ns: u64,
    },
    ReportingRegister {
        order: Option<u32>,
        device_order: i32,
        capacity: Option<u32>,
        ret: i32,
    },
    ReportingCycle {
        totals_known: bool,
        reports: u32,
        failed: u32,
        bytes: u64,
        isolated_pages: u64,
    },
    PageReport {
        zone: Option<ZoneId>,
        nents: u32,
        bytes: u64,
        orders: u32,
        first_pfn: Option<u64>,
        #[serde(default)]
        in_seen_cycle: Option<bool>,
        ret: i32,
    },
    ReportedPagesSample {
        zone: ZoneId,
        order: u8,
        isolated: u64,
        putback: u64,
    },
    ReportingRequestsSample {
        calls: u64,
    },
    ReportingOrderSample {
        order: i64,
    },
}

/// Does not compile when `Op` gains a variant that `OpDef` lacks: add it there.
fn _every_op_is_here(op: &Op) {
    match op {
        Op::AddMemoryResource { .. }
        | Op::ArchAddMemory { .. }
        | Op::MhpInitMemmapOnMemory { .. }
        | Op::OnlinePages { .. }
        | Op::MovePfnRangeToZone { .. }
        | Op::OfflinePages { .. }
        | Op::RemovePfnRangeFromZone { .. }
        | Op::SetZoneContiguous { .. }
        | Op::TryRemoveMemory { .. }
        | Op::AddPages { .. }
        | Op::PageAlloc { .. }
        | Op::MemmapInitRange { .. }
        | Op::MemmapInitZoneDevice { .. }
        | Op::MemremapPages { .. }
        | Op::MemunmapPages { .. }
        | Op::BlockOnline { .. }
        | Op::BlockOffline { .. }
        | Op::IsolateRange { .. }
        | Op::MemoryNotify { .. }
        | Op::NodeNotify { .. }
        | Op::WalkSystemRam { .. }
        | Op::DissolveHugePages { .. }
        | Op::TestPagesIsolated { .. }
        | Op::MigratePages { .. }
        | Op::DumpPage { .. }
        | Op::NodeFreePages { .. }
        | Op::SlowPathSample { .. }
        | Op::LostEventsSample { .. }
        | Op::ProbeCostSample { .. }
        | Op::ReportingRegister { .. }
        | Op::ReportingCycle { .. }
        | Op::PageReport { .. }
        | Op::ReportedPagesSample { .. }
        | Op::ReportingRequestsSample { .. }
        | Op::ReportingOrderSample { .. } => {}
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One event of every kind, with plausible values.
    pub fn every_kind_of_event() -> Vec<Event> {
        let zone = ZoneId { node: 1, zone: 3 };
        let span = Span {
            start_pfn: 0x100000,
            spanned_pages: 0x8000,
        };
        let ops = vec![
            Op::AddMemoryResource {
                start: 1 << 32,
                size: 128 << 20,
                mhp_flags: 2,
                nid_arg: 1,
                ret: 0,
            },
            Op::ArchAddMemory {
                node: 1,
                start: 1 << 32,
                size: 128 << 20,
                altmap: Some(Altmap {
                    base_pfn: 0x100000,
                    alloc: 512,
                    align: 0,
                }),
                ret: 0,
            },
            Op::MhpInitMemmapOnMemory {
                pfn: 0x100000,
                nr_pages: 512,
                zone,
                ret: 0,
            },
            Op::OnlinePages {
                pfn: 0x100200,
                nr_pages: 0x7e00,
                zone,
                ret: 0,
            },
            Op::MovePfnRangeToZone {
                pfn: 0x100200,
                nr_pages: 0x7e00,
                zone,
                before: Span::default(),
                after: span,
            },
            Op::OfflinePages {
                pfn: 0x100200,
                nr_pages: 0x7e00,
                zone,
                ret: -16,
            },
            Op::RemovePfnRangeFromZone {
                pfn: 0x100200,
                nr_pages: 0x7e00,
                zone,
                before: span,
                after: Span::default(),
            },
            Op::SetZoneContiguous {
                zone,
                entry: false,
                contiguous: true,
                span,
            },
            Op::TryRemoveMemory {
                start: 1 << 32,
                size: 128 << 20,
                ret: 0,
            },
            Op::AddPages {
                node: 1,
                pfn: 0x100000,
                nr_pages: 0x8000,
                altmap: true,
                ret: 0,
            },
            Op::PageAlloc {
                pfn: 0x1234,
                order: 9,
                window_node: 1,
                window_pfn: 0x100000,
            },
            Op::MemmapInitRange {
                zone,
                pfn: 0x100200,
                nr_pages: 0x7e00,
                context: 1,
            },
            Op::MemmapInitZoneDevice {
                zone: ZoneId { node: 0, zone: 4 },
                pfn: 0x200000,
                nr_pages: 0x40000,
                pgmap_type: 4,
                altmap: false,
            },
            Op::MemremapPages {
                node: -1,
                start: 1 << 33,
                end: (1 << 33) + (1 << 30),
                nr_range: 1,
                pgmap_type: 4,
                altmap: false,
                ret: 0,
            },
            Op::MemunmapPages {
                start: 1 << 33,
                end: (1 << 33) + (1 << 30),
                nr_range: 1,
                pgmap_type: 4,
                altmap: false,
            },
            Op::BlockOnline {
                pfn: 0x100000,
                requested: OnlineType::OnlineMovable,
                node: 1,
                zone: Some(zone),
                policy: None,
                ret: 0,
            },
            Op::BlockOffline {
                pfn: 0x100000,
                node: 1,
                zone: None,
                ret: -22,
            },
            Op::IsolateRange {
                pfn: 0x100000,
                nr_pages: 0x8000,
                ret: -16,
            },
            Op::MemoryNotify {
                action: NotifyAction::GoingOffline,
                ret: 0,
            },
            Op::NodeNotify { action: 3, ret: 0 },
            Op::WalkSystemRam {
                pfn: 0x100000,
                nr_pages: 0x8000,
                ram_pages: 0x8000,
            },
            Op::DissolveHugePages {
                pfn: 0x100000,
                end_pfn: 0x108000,
                ret: 0,
            },
            Op::TestPagesIsolated {
                pfn: 0x100000,
                end_pfn: 0x108000,
                fin_pfn: 0x100010,
            },
            Op::MigratePages {
                succeeded: 10,
                failed: 1,
                reason: 2,
            },
            Op::DumpPage {
                pfn: 0x100010,
                flags: 0x17ffffc0000000,
                refcount: 1,
                mapcount: -1,
                page_type: 0xffffffff,
                reason: "unmovable page".into(),
            },
            Op::NodeFreePages {
                node: 0,
                free_pages: 100_000,
                moment: AddMoment::Before,
                window_pfn: 0x100000,
            },
            Op::SlowPathSample { zone, calls: 42 },
            Op::LostEventsSample { total: 3 },
            Op::ProbeCostSample {
                probe: "online_pages".into(),
                runs: 10,
                run_time_ns: 12_000,
            },
        ];
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Event {
                ts_ns: 1_000_000 + i as u64 * 1000,
                duration_ns: 500,
                tid: 7,
                op,
            })
            .collect()
    }

    fn both_ways(line: &str) -> (Result<Event, String>, Result<Event, String>) {
        let fast = event(&mut serde_json::Deserializer::from_str(line)).map_err(|e| e.to_string());
        let slow = serde_json::from_str::<Event>(line).map_err(|e| e.to_string());
        (fast, slow)
    }

    #[test]
    fn reads_every_recorded_event_as_the_derive_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        let mut kinds = std::collections::BTreeSet::new();
        for f in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            for line in text.lines().filter(|l| l.contains(r#""type":"event""#)) {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let mut obj = v.as_object().unwrap().clone();
                obj.remove("type");
                let line = serde_json::to_string(&obj).unwrap();
                let (fast, slow) = both_ways(&line);
                assert_eq!(fast, slow, "{line}");
                kinds.insert(fast.unwrap().op.function());
            }
        }
        assert!(kinds.len() >= 10, "{kinds:?}");
    }

    #[test]
    fn every_kind_round_trips() {
        for ev in every_kind_of_event() {
            let text = serde_json::to_string(&ev).unwrap();
            let (fast, slow) = both_ways(&text);
            assert_eq!(fast.as_ref(), Ok(&ev), "{text}");
            assert_eq!(slow.as_ref(), Ok(&ev), "{text}");
        }
    }

    #[test]
    fn kind_elsewhere_and_escapes_are_read() {
        let moved = r#"{"ts_ns":5,"duration_ns":1,"tid":2,"op":{"total":7,"kind":"lost_events_sample"}}"#;
        assert!(matches!(
            both_ways(moved).0.unwrap().op,
            Op::LostEventsSample { total: 7 }
        ));
        let escaped =
            r#"{"ts_ns":5,"duration_ns":1,"tid":2,"op":{"kind":"lost_events\u005fsample","total":7}}"#;
        assert!(matches!(
            both_ways(escaped).0.unwrap().op,
            Op::LostEventsSample { total: 7 }
        ));
        let unknown = r#"{"ts_ns":5,"duration_ns":1,"tid":2,"op":{"kind":"no_such","total":7}}"#;
        let err = both_ways(unknown).0.unwrap_err();
        assert!(err.contains("unknown variant `no_such`"), "{err}");
        let missing = r#"{"ts_ns":5,"duration_ns":1,"tid":2,"op":{"kind":"online_pages","pfn":1}}"#;
        let err = both_ways(missing).0.unwrap_err();
        assert!(err.contains("missing field `nr_pages`"), "{err}");
    }
}
