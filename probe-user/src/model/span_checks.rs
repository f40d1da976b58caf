//! Zone span checks, run after every span change.
//!
//! `shrink_zone_span` (via `remove_pfn_range_from_zone`) has been wrong in several ways: it can
//! leave pages assigned to a zone outside the zone's span, shrink at subsection granularity past
//! what was removed, or empty a zone unexpectedly. Nothing in the kernel reports these states, so
//! we track which pfns each zone holds and compare them with the span the kernel reports.
//! Pure and deterministic: no I/O.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::dense_map::DenseMap;
use crate::model::event::{Span, ZoneId};

/// Pages per memory subsection on x86_64 (2 MiB of 4 KiB pages).
pub const X86_64_SUBSECTION_PAGES: u64 = 512;

/// Which span check a finding is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Pages assigned to the zone lie outside its span.
    OutsideSpan,
    /// The zone's span intersects another zone's span on the same node.
    Overlap,
    /// The span shrank to a boundary that is not subsection-aligned.
    UnalignedShrink,
    /// The span became empty (informational).
    BecameEmpty,
}

/// A zone span check that found something, at a span change. Holds figures, not text: the
/// message is written when a view asks for it, so that ingesting an event allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ts_ns: u64,
    pub zone: ZoneId,
    pub check: Check,
    /// Kernel function of the event, e.g. "remove_pfn_range_from_zone".
    pub cause: &'static str,
    /// The event's pfn range.
    pub event_pfn: u64,
    pub event_nr_pages: u64,
    /// The zone's span before and after the event.
    pub before: Span,
    pub after: Span,
    /// The pfns involved, half-open [start, end).
    pub pfns: (u64, u64),
    /// The other zone, for `Overlap`.
    pub other_zone: Option<ZoneId>,
    pub detail: Detail,
}

/// What a finding's message says beyond the finding's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `pages` pages in `runs` runs; `pfns` is the first run.
    OutsideSpan { pages: u64, runs: usize },
    /// The other zone's span; `pfns` is the intersection.
    Overlap { other_span: Span },
    /// `pfns` is the part cut off.
    UnalignedShrink { subsection_pages: u64 },
    /// `pfns` is the span before.
    BecameEmpty,
}

impl Finding {
    /// One plain sentence for humans.
    pub fn message(&self) -> String {
        let prefix = fmt::from_fn(|f| {
            write!(
                f,
                "After {} of {} on {}",
                self.cause,
                fmt_iv(iv(self.event_pfn, self.event_nr_pages)),
                fmt_zone(self.zone)
            )
        });
        match self.detail {
            Detail::OutsideSpan { pages, runs } => {
                let runs = fmt::from_fn(|f| match runs {
                    0 | 1 => write!(f, " at {}", fmt_iv(self.pfns)),
                    n => write!(f, " in {n} runs, the first at {}", fmt_iv(self.pfns)),
                });
                format!(
                    "{prefix}, {pages} pages{runs} are assigned to the zone but outside its {}.",
                    fmt_span(self.after)
                )
            }
            Detail::Overlap { other_span } => format!(
                "{prefix}, its {} overlaps the {} of {} at {}.",
                fmt_span(self.after),
                fmt_span(other_span),
                fmt_zone(self.other_zone.unwrap_or(self.zone)),
                fmt_iv(self.pfns)
            ),
            Detail::UnalignedShrink { subsection_pages } => format!(
                "{prefix}, the span shrank from {} to {}, cutting {} at a boundary that is not a \
                 multiple of {subsection_pages} pages.",
                fmt_iv(span_iv(self.before)),
                fmt_iv(span_iv(self.after)),
                fmt_iv(self.pfns)
            ),
            Detail::BecameEmpty => format!(
                "{prefix}, the zone became empty (it spanned {}).",
                fmt_iv(self.pfns)
            ),
        }
    }
}

/// Half-open pfn interval; empty when start >= end.
type Iv = (u64, u64);

fn iv(start: u64, nr_pages: u64) -> Iv {
    // Saturating: a corrupt event must not panic the tool.
    (start, start.saturating_add(nr_pages))
}

fn span_iv(s: Span) -> Iv {
    iv(s.start_pfn, s.spanned_pages)
}

fn is_empty(r: Iv) -> bool {
    r.0 >= r.1
}

fn intersect(a: Iv, b: Iv) -> Iv {
    (a.0.max(b.0), a.1.min(b.1))
}

/// `x` minus `y`: at most two pieces.
fn subtract(x: Iv, y: Iv) -> impl Iterator<Item = Iv> {
    // What lies left and right of y; an empty y takes nothing.
    let pieces = if is_empty(y) {
        [x, (0, 0)]
    } else {
        [(x.0, x.1.min(y.0)), (x.0.max(y.1), x.1)]
    };
    pieces.into_iter().filter(|r| !is_empty(*r))
}

/// Disjoint, non-adjacent pfn ranges (start -> end). Ranges, not pages, so a zone of many
/// fragmented blocks stays small and every operation is O(log n + ranges touched).
#[derive(Debug, Clone, Default)]
struct RangeSet {
    map: BTreeMap<u64, u64>,
    pages: u64,
}

impl RangeSet {
    fn insert(&mut self, r: Iv) {
        if is_empty(r) {
            return;
        }
        let (mut start, mut end) = r;
        // Absorb every range that overlaps or touches: those starting at or before the end,
        // back to the first that ends before the start.
        while let Some((&s, &e)) = self.map.range(..=end).next_back() {
            if e < start {
                break;
            }
            self.map.remove(&s);
            self.pages -= e - s;
            (start, end) = (start.min(s), end.max(e));
        }
        self.map.insert(start, end);
        self.pages += end - start;
    }

    fn remove(&mut self, r: Iv) {
        // Most zones hold nothing (DMA on other nodes, Movable before an online): skip them.
        if is_empty(r) || self.map.is_empty() {
            return;
        }
        let (start, end) = r;
        // The ranges overlapping r start before its end: walk back from the last of them,
        // keeping what sticks out on either side.
        while let Some((&s, &e)) = self.map.range(..end).next_back() {
            if e <= start {
                break;
            }
            self.pages -= e.min(end) - s.max(start);
            if e > end {
                self.map.insert(end, e);
            }
            if s < start {
                self.map.insert(s, start);
                break;
            }
            self.map.remove(&s);
        }
    }

    /// Held ranges clipped to `r`, in order.
    fn overlapping(&self, r: Iv) -> impl Iterator<Item = Iv> + '_ {
        // An empty range or set needs no search.
        let search = !is_empty(r) && !self.map.is_empty();
        let pred = search.then(|| self.map.range(..r.0).next_back()).flatten();
        let inner = search.then(|| self.map.range(r.0..r.1)).into_iter().flatten();
        pred.into_iter()
            .chain(inner)
            .map(move |(&s, &e)| intersect((s, e), r))
            .filter(|x| !is_empty(*x))
    }

    /// Appends the parts of `r` not held to `out`, in order.
    fn gaps(&self, r: Iv, out: &mut Vec<Iv>) {
        let mut cur = r.0;
        for (s, e) in self.overlapping(r) {
            if s > cur {
                out.push((cur, s));
            }
            cur = e;
        }
        if cur < r.1 {
            out.push((cur, r.1));
        }
    }
}

#[derive(Debug, Clone, Default)]
struct ZoneTrack {
    span: Span,
    assigned: RangeSet,
}

/// The event being checked, bundled to keep signatures short.
struct Change {
    ts_ns: u64,
    cause: &'static str,
    zone: ZoneId,
    pfn: u64,
    nr_pages: u64,
    before: Span,
    after: Span,
}

impl Change {
    fn finding(&self, check: Check, pfns: Iv, other_zone: Option<ZoneId>, detail: Detail) -> Finding {
        Finding {
            ts_ns: self.ts_ns,
            zone: self.zone,
            check,
            cause: self.cause,
            event_pfn: self.pfn,
            event_nr_pages: self.nr_pages,
            before: self.before,
            after: self.after,
            pfns,
            other_zone,
            detail,
        }
    }
}

// Displayed in place, not built as strings: a finding's message is its only allocation.
fn fmt_zone(z: ZoneId) -> impl fmt::Display {
    fmt::from_fn(move |f| write!(f, "node {} zone {}", z.node, z.zone))
}

fn fmt_iv(r: Iv) -> impl fmt::Display {
    fmt::from_fn(move |f| write!(f, "pfns [{:#x}, {:#x})", r.0, r.1))
}

fn fmt_span(s: Span) -> impl fmt::Display {
    fmt::from_fn(move |f| {
        if s.spanned_pages == 0 {
            f.write_str("empty span")
        } else {
            write!(f, "span {}", fmt_iv(span_iv(s)))
        }
    })
}

/// Tracks every zone's span and assigned pfns, and checks each span change.
#[derive(Debug, Clone)]
pub struct SpanChecker {
    /// 0 disables the alignment check.
    subsection_pages: u64,
    zones: DenseMap<ZoneId, ZoneTrack>,
    /// Scratch ranges, reused from event to event.
    fresh: Vec<Iv>,
    newly: Vec<Iv>,
}

impl Default for SpanChecker {
    /// x86_64's subsection size; the only architecture mhpscope targets today.
    fn default() -> Self {
        SpanChecker::new(X86_64_SUBSECTION_PAGES)
    }
}

impl SpanChecker {
    /// `subsection_pages`: 512 on x86_64 (2 MiB / 4 KiB); 0 disables `UnalignedShrink`.
    pub fn new(subsection_pages: u64) -> Self {
        SpanChecker {
            subsection_pages,
            zones: DenseMap::default(),
            fresh: Vec::new(),
            newly: Vec::new(),
        }
    }

    /// Span from the static frame at start.
    pub fn seed_span(&mut self, zone: ZoneId, span: Span) {
        self.zones.or_default(zone).span = span;
    }

    /// Pages already in the zone at start.
    pub fn seed_assigned(&mut self, zone: ZoneId, pfn: u64, nr_pages: u64) {
        self.assign(zone, iv(pfn, nr_pages));
    }

    /// A span seen by another event (e.g. set_zone_contiguous) without a range change.
    pub fn observe_span(&mut self, zone: ZoneId, span: Span) {
        self.zones.or_default(zone).span = span;
    }

    /// Last known span of `zone`.
    pub fn span(&self, zone: ZoneId) -> Option<Span> {
        self.zones.get(&zone).map(|z| z.span)
    }

    /// Pages currently assigned to `zone`.
    pub fn assigned_pages(&self, zone: ZoneId) -> u64 {
        self.zones.get(&zone).map_or(0, |z| z.assigned.pages)
    }

    /// Ranges currently assigned to `zone`, half-open, in order.
    pub fn assigned_ranges(&self, zone: ZoneId) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.zones
            .get(&zone)
            .into_iter()
            .flat_map(|z| z.assigned.map.iter().map(|(&s, &e)| (s, e)))
    }

    /// move_pfn_range_to_zone: pages [pfn, pfn + nr_pages) now belong to `zone`; then checks
    /// the new span, appending what it finds to `out` (the caller's list: nothing allocated).
    #[allow(clippy::too_many_arguments)]
    pub fn moved_to_zone(
        &mut self,
        ts_ns: u64,
        cause: &'static str,
        zone: ZoneId,
        pfn: u64,
        nr_pages: u64,
        before: Span,
        after: Span,
        out: &mut Vec<Finding>,
    ) {
        let range = iv(pfn, nr_pages);
        // Pages the zone did not hold before cannot have been outside its span before.
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.clear();
        match self.zones.get(&zone) {
            Some(z) => z.assigned.gaps(range, &mut fresh),
            None => fresh.push(range),
        }
        self.assign(zone, range);
        let change = Change {
            ts_ns,
            cause,
            zone,
            pfn,
            nr_pages,
            before,
            after,
        };
        self.check(&change, &fresh, out);
        self.fresh = fresh;
    }

    /// remove_pfn_range_from_zone: pages leave `zone`; then checks the new span, appending what
    /// it finds to `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn removed_from_zone(
        &mut self,
        ts_ns: u64,
        cause: &'static str,
        zone: ZoneId,
        pfn: u64,
        nr_pages: u64,
        before: Span,
        after: Span,
        out: &mut Vec<Finding>,
    ) {
        self.zones.or_default(zone).assigned.remove(iv(pfn, nr_pages));
        let change = Change {
            ts_ns,
            cause,
            zone,
            pfn,
            nr_pages,
            before,
            after,
        };
        self.check(&change, &[], out);
    }

    /// A page belongs to one zone: assigning it to `zone` takes it from any other.
    fn assign(&mut self, zone: ZoneId, range: Iv) {
        for (id, z) in self.zones.iter_mut() {
            if *id != zone {
                z.assigned.remove(range);
            }
        }
        self.zones.or_default(zone).assigned.insert(range);
    }

    fn check(&mut self, c: &Change, fresh: &[Iv], findings: &mut Vec<Finding>) {
        let track = self.zones.or_default(c.zone);
        track.span = c.after;
        let (b, a) = (span_iv(c.before), span_iv(c.after));

        // Newly outside: held pages in the part of the old span the new one dropped, plus
        // pages just assigned that the new span does not cover. Pages already outside the old
        // span were reported when they got there.
        let newly = &mut self.newly;
        newly.clear();
        for r in subtract(b, a) {
            newly.extend(track.assigned.overlapping(r));
        }
        for &r in fresh {
            for piece in subtract(r, a) {
                newly.push(piece);
            }
        }
        merge(newly);
        if let Some(&first) = newly.first() {
            let pages: u64 = newly.iter().map(|r| r.1 - r.0).sum();
            let detail = Detail::OutsideSpan {
                pages,
                runs: newly.len(),
            };
            findings.push(c.finding(Check::OutsideSpan, first, None, detail));
        }

        if !is_empty(a) {
            // The node's zones, in order: zones sort by node first.
            let zones = self.zones.as_slice();
            let first = zones.partition_point(|(id, _)| id.node < c.zone.node);
            let node_zones = zones[first..].iter().take_while(|(id, _)| id.node == c.zone.node);
            for &(other, ref t) in node_zones {
                let o = span_iv(t.span);
                if other == c.zone || is_empty(o) {
                    continue;
                }
                let now = intersect(a, o);
                if is_empty(now) || !is_empty(intersect(b, o)) {
                    continue;
                }
                let detail = Detail::Overlap { other_span: t.span };
                findings.push(c.finding(Check::Overlap, now, Some(other), detail));
            }
        }

        let shrank = c.before != c.after && !is_empty(a) && a.0 >= b.0 && a.1 <= b.1;
        if shrank && self.subsection_pages > 0 {
            // Only a boundary that moved is the shrink's doing; an unaligned boundary left in
            // place (e.g. ZONE_DMA starting at pfn 1) is not.
            let sides = [(a.0 != b.0, a.0, (b.0, a.0)), (a.1 != b.1, a.1, (a.1, b.1))];
            for (moved, boundary, removed) in sides {
                if moved && !boundary.is_multiple_of(self.subsection_pages) {
                    let detail = Detail::UnalignedShrink {
                        subsection_pages: self.subsection_pages,
                    };
                    findings.push(c.finding(Check::UnalignedShrink, removed, None, detail));
                }
            }
        }

        if c.before.spanned_pages > 0 && c.after.spanned_pages == 0 {
            findings.push(c.finding(Check::BecameEmpty, b, None, Detail::BecameEmpty));
        }
    }
}

/// Sorts and merges overlapping or touching ranges, in place.
fn merge(v: &mut Vec<Iv>) {
    v.sort_unstable();
    let mut kept = 0;
    for i in 0..v.len() {
        let r = v[i];
        if kept > 0 && r.0 <= v[kept - 1].1 {
            v[kept - 1].1 = v[kept - 1].1.max(r.1);
        } else {
            v[kept] = r;
            kept += 1;
        }
    }
    v.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOVE: &str = "move_pfn_range_to_zone";
    const REMOVE: &str = "remove_pfn_range_from_zone";

    fn z(node: i32, zone: u8) -> ZoneId {
        ZoneId { node, zone }
    }

    fn sp(start_pfn: u64, spanned_pages: u64) -> Span {
        Span {
            start_pfn,
            spanned_pages,
        }
    }

    /// The parts tests assert on: check, zone, pfns, cause, other zone.
    type Brief<'a> = (Check, ZoneId, (u64, u64), &'a str, Option<ZoneId>);

    fn brief(f: &[Finding]) -> Vec<Brief<'_>> {
        f.iter()
            .map(|f| (f.check, f.zone, f.pfns, f.cause, f.other_zone))
            .collect()
    }

    /// The findings of one change, on their own.
    impl SpanChecker {
        #[allow(clippy::too_many_arguments)]
        fn moved(
            &mut self,
            ts: u64,
            cause: &'static str,
            z: ZoneId,
            pfn: u64,
            n: u64,
            b: Span,
            a: Span,
        ) -> Vec<Finding> {
            let mut out = Vec::new();
            self.moved_to_zone(ts, cause, z, pfn, n, b, a, &mut out);
            out
        }

        #[allow(clippy::too_many_arguments)]
        fn removed(
            &mut self,
            ts: u64,
            cause: &'static str,
            z: ZoneId,
            pfn: u64,
            n: u64,
            b: Span,
            a: Span,
        ) -> Vec<Finding> {
            let mut out = Vec::new();
            self.removed_from_zone(ts, cause, z, pfn, n, b, a, &mut out);
            out
        }
    }

    const EMPTY: Span = Span {
        start_pfn: 0,
        spanned_pages: 0,
    };

    #[test]
    fn linux_6_1_memmap_on_memory_offline_leaves_vmemmap_pages_outside_empty_span() {
        let movable = z(1, 3);
        let mut c = SpanChecker::new(512);
        let f = c.moved(10, MOVE, movable, 0x100000, 512, EMPTY, sp(0x100000, 512));
        assert_eq!(f, vec![]);
        let f = c.moved(
            20,
            MOVE,
            movable,
            0x100200,
            32256,
            sp(0x100000, 512),
            sp(0x100000, 32768),
        );
        assert_eq!(f, vec![]);
        assert_eq!(c.assigned_pages(movable), 32768);

        let f = c.removed(30, REMOVE, movable, 0x100200, 32256, sp(0x100000, 32768), EMPTY);
        assert_eq!(
            brief(&f),
            vec![
                (Check::OutsideSpan, movable, (0x100000, 0x100200), REMOVE, None),
                (Check::BecameEmpty, movable, (0x100000, 0x108000), REMOVE, None),
            ]
        );
        let o = &f[0];
        assert_eq!((o.ts_ns, o.event_pfn, o.event_nr_pages), (30, 0x100200, 32256));
        assert_eq!((o.before, o.after), (sp(0x100000, 32768), EMPTY));
        assert_eq!(
            o.message(),
            "After remove_pfn_range_from_zone of pfns [0x100200, 0x108000) on node 1 zone 3, 512 pages \
             at pfns [0x100000, 0x100200) are assigned to the zone but outside its empty span."
        );

        let f = c.removed(40, REMOVE, movable, 0x100000, 512, EMPTY, EMPTY);
        assert_eq!(f, vec![]);
        assert_eq!(c.assigned_pages(movable), 0);
        assert_eq!(c.span(movable), Some(EMPTY));
    }

    #[test]
    fn outside_span_when_shrink_cuts_assigned_pages() {
        let n = z(0, 2);
        let mut c = SpanChecker::new(512);
        c.seed_span(n, sp(0x1000, 0x2000));
        c.seed_assigned(n, 0x1000, 0x2000);
        // Removing [0x1000, 0x1800) but the span now starts at 0x2000: [0x1800, 0x2000) is out.
        let f = c.removed(
            1,
            REMOVE,
            n,
            0x1000,
            0x800,
            sp(0x1000, 0x2000),
            sp(0x2000, 0x1000),
        );
        assert_eq!(
            brief(&f),
            vec![(Check::OutsideSpan, n, (0x1800, 0x2000), REMOVE, None)]
        );
    }

    #[test]
    fn shrink_to_exactly_the_remaining_pages_is_clean() {
        let n = z(0, 2);
        let mut c = SpanChecker::new(512);
        c.seed_span(n, sp(0x1000, 0x2000));
        c.seed_assigned(n, 0x1000, 0x2000);
        let f = c.removed(
            1,
            REMOVE,
            n,
            0x1000,
            0x800,
            sp(0x1000, 0x2000),
            sp(0x1800, 0x1800),
        );
        assert_eq!(f, vec![]);
        // A hole in the middle does not shrink the span and holes are not outside it.
        let f = c.removed(
            2,
            REMOVE,
            n,
            0x2000,
            0x200,
            sp(0x1800, 0x1800),
            sp(0x1800, 0x1800),
        );
        assert_eq!(f, vec![]);
    }

    #[test]
    fn persisting_outside_pages_are_not_reported_twice() {
        let n = z(0, 2);
        let mut c = SpanChecker::new(512);
        c.seed_span(n, sp(0x1000, 0x2000));
        c.seed_assigned(n, 0x1000, 0x2000);
        let f = c.removed(
            1,
            REMOVE,
            n,
            0x1000,
            0x800,
            sp(0x1000, 0x2000),
            sp(0x2000, 0x1000),
        );
        assert_eq!(f.len(), 1);
        let f = c.removed(2, REMOVE, n, 0x2800, 0x800, sp(0x2000, 0x1000), sp(0x2000, 0x800));
        assert_eq!(f, vec![]);
        // Growing back over them and shrinking again reports them again: a new occurrence.
        let f = c.moved(3, MOVE, n, 0x2800, 0x800, sp(0x2000, 0x800), sp(0x1800, 0x1800));
        assert_eq!(f, vec![]);
        let f = c.removed(4, REMOVE, n, 0x2800, 0x800, sp(0x1800, 0x1800), sp(0x2000, 0x800));
        assert_eq!(
            brief(&f),
            vec![(Check::OutsideSpan, n, (0x1800, 0x2000), REMOVE, None)]
        );
    }

    #[test]
    fn outside_span_reports_first_run_and_counts_all() {
        let n = z(0, 3);
        let mut c = SpanChecker::new(512);
        c.seed_span(n, sp(0x1000, 0x1000));
        c.seed_assigned(n, 0x1000, 0x200);
        c.seed_assigned(n, 0x1800, 0x100);
        c.seed_assigned(n, 0x1c00, 0x400);
        let f = c.removed(1, REMOVE, n, 0x1c00, 0x400, sp(0x1000, 0x1000), EMPTY);
        assert_eq!(
            brief(&f),
            vec![
                (Check::OutsideSpan, n, (0x1000, 0x1200), REMOVE, None),
                (Check::BecameEmpty, n, (0x1000, 0x2000), REMOVE, None),
            ]
        );
        assert!(f[0]
            .message()
            .contains("768 pages in 2 runs, the first at pfns [0x1000, 0x1200)"));
    }

    #[test]
    fn move_that_does_not_grow_the_span_over_the_range_is_outside() {
        let n = z(0, 3);
        let mut c = SpanChecker::new(512);
        let f = c.moved(1, MOVE, n, 0x8000, 0x400, EMPTY, sp(0x8000, 0x200));
        assert_eq!(
            brief(&f),
            vec![(Check::OutsideSpan, n, (0x8200, 0x8400), MOVE, None)]
        );
        // Re-moving pages it already held outside is not new.
        let f = c.moved(2, MOVE, n, 0x8200, 0x200, sp(0x8000, 0x200), sp(0x8000, 0x200));
        assert_eq!(f, vec![]);
    }

    #[test]
    fn pages_moved_to_another_zone_leave_the_first() {
        let normal = z(0, 2);
        let movable = z(0, 3);
        let mut c = SpanChecker::new(512);
        c.seed_span(normal, sp(0x10000, 0x8000));
        c.seed_assigned(normal, 0x10000, 0x8000);
        // The kernel shrank Normal first (not traced as a range change here).
        c.observe_span(normal, sp(0x10000, 0x4000));
        let f = c.moved(1, MOVE, movable, 0x14000, 0x4000, EMPTY, sp(0x14000, 0x4000));
        assert_eq!(f, vec![]);
        assert_eq!(c.assigned_pages(normal), 0x4000);
        assert_eq!(
            c.assigned_ranges(movable).collect::<Vec<_>>(),
            vec![(0x14000, 0x18000)]
        );
        // Normal shrinking to what it still holds is clean.
        let f = c.removed(
            2,
            REMOVE,
            normal,
            0x12000,
            0x2000,
            sp(0x10000, 0x4000),
            sp(0x10000, 0x2000),
        );
        assert_eq!(f, vec![]);
    }

    #[test]
    fn overlap_fires_once_when_spans_of_a_node_start_to_intersect() {
        let normal = z(0, 2);
        let movable = z(0, 3);
        let mut c = SpanChecker::new(512);
        c.seed_span(normal, sp(0x100000, 0x8000));
        c.seed_assigned(normal, 0x100000, 0x4000);
        let f = c.moved(1, MOVE, movable, 0x104000, 0x8000, EMPTY, sp(0x104000, 0x8000));
        assert_eq!(
            brief(&f),
            vec![(Check::Overlap, movable, (0x104000, 0x108000), MOVE, Some(normal))]
        );
        assert!(f[0]
            .message()
            .contains("overlaps the span pfns [0x100000, 0x108000) of node 0 zone 2"));
        // Still overlapping after growing further: not new.
        let f = c.moved(
            2,
            MOVE,
            movable,
            0x10c000,
            0x8000,
            sp(0x104000, 0x8000),
            sp(0x104000, 0x10000),
        );
        assert_eq!(f, vec![]);
    }

    #[test]
    fn adjacent_zones_do_not_overlap() {
        let normal = z(0, 2);
        let movable = z(0, 3);
        let mut c = SpanChecker::new(512);
        c.seed_span(normal, sp(0x100000, 0x8000));
        let f = c.moved(1, MOVE, movable, 0x108000, 0x8000, EMPTY, sp(0x108000, 0x8000));
        assert_eq!(f, vec![]);
        // An empty zone never overlaps, even with a start inside another span.
        let f = c.moved(2, MOVE, z(0, 1), 0x100000, 0, sp(0x100000, 0), sp(0x100000, 0));
        assert_eq!(f, vec![]);
    }

    #[test]
    fn zones_on_different_nodes_never_overlap() {
        let mut c = SpanChecker::new(512);
        c.seed_span(z(0, 2), sp(0x100000, 0x8000));
        c.seed_span(z(0, 3), sp(0x100000, 0x8000));
        let f = c.moved(1, MOVE, z(1, 3), 0x100000, 0x8000, EMPTY, sp(0x100000, 0x8000));
        assert_eq!(f, vec![]);
    }

    #[test]
    fn unaligned_shrink_fires_on_the_moved_unaligned_side() {
        let n = z(1, 3);
        let mut c = SpanChecker::new(512);
        c.seed_span(n, sp(0x100000, 0x8000));
        c.seed_assigned(n, 0x100000, 0x8000);
        let f = c.removed(
            1,
            REMOVE,
            n,
            0x107f00,
            0x100,
            sp(0x100000, 0x8000),
            sp(0x100000, 0x7f00),
        );
        assert_eq!(
            brief(&f),
            vec![(Check::UnalignedShrink, n, (0x107f00, 0x108000), REMOVE, None)]
        );
        let f = c.removed(
            2,
            REMOVE,
            n,
            0x100000,
            0x100,
            sp(0x100000, 0x7f00),
            sp(0x100100, 0x7e00),
        );
        assert_eq!(
            brief(&f),
            vec![(Check::UnalignedShrink, n, (0x100000, 0x100100), REMOVE, None)]
        );
        // Both sides at once give one finding per side (the end's pages left earlier).
        let f = c.removed(
            3,
            REMOVE,
            n,
            0x107ef0,
            0x10,
            sp(0x100100, 0x7e00),
            sp(0x100100, 0x7e00),
        );
        assert_eq!(f, vec![]);
        let f = c.removed(
            4,
            REMOVE,
            n,
            0x100100,
            0x10,
            sp(0x100100, 0x7e00),
            sp(0x100110, 0x7de0),
        );
        assert_eq!(
            brief(&f),
            vec![
                (Check::UnalignedShrink, n, (0x100100, 0x100110), REMOVE, None),
                (Check::UnalignedShrink, n, (0x107ef0, 0x107f00), REMOVE, None),
            ]
        );
    }

    #[test]
    fn aligned_shrink_growth_and_unmoved_unaligned_boundaries_do_not_fire() {
        let dma = z(0, 0);
        let mut c = SpanChecker::new(512);
        c.seed_span(dma, sp(1, 0xfff));
        c.seed_assigned(dma, 1, 0xfff);
        // Aligned end, start left at pfn 1 as the boot layout has it.
        let f = c.removed(1, REMOVE, dma, 0xe00, 0x200, sp(1, 0xfff), sp(1, 0xdff));
        assert_eq!(f, vec![]);
        // Growth to an unaligned end is not a shrink.
        let f = c.moved(2, MOVE, dma, 0xe00, 0x100, sp(1, 0xdff), sp(1, 0xeff));
        assert_eq!(f, vec![]);
        // A shifted, not shrunk, span is not a shrink either.
        let n = z(0, 3);
        let f = c.moved(3, MOVE, n, 0x10000, 0x1000, EMPTY, sp(0x10000, 0x1000));
        assert_eq!(f, vec![]);
        let f = c.moved(
            4,
            MOVE,
            n,
            0x10100,
            0x1000,
            sp(0x10000, 0x1000),
            sp(0x10100, 0x1000),
        );
        assert_eq!(
            brief(&f),
            vec![(Check::OutsideSpan, n, (0x10000, 0x10100), MOVE, None)]
        );
        // With the check disabled an unaligned shrink is silent.
        let mut off = SpanChecker::new(0);
        off.seed_assigned(n, 0x10000, 0x1000);
        let f = off.removed(
            5,
            REMOVE,
            n,
            0x10f00,
            0x100,
            sp(0x10000, 0x1000),
            sp(0x10000, 0xf00),
        );
        assert_eq!(f, vec![]);
    }

    #[test]
    fn became_empty_only_on_the_transition() {
        let n = z(2, 3);
        let mut c = SpanChecker::default();
        let f = c.moved(1, MOVE, n, 0x200000, 0x8000, EMPTY, sp(0x200000, 0x8000));
        assert_eq!(f, vec![]);
        let f = c.removed(
            2,
            REMOVE,
            n,
            0x200000,
            0x4000,
            sp(0x200000, 0x8000),
            sp(0x204000, 0x4000),
        );
        assert_eq!(f, vec![]);
        let f = c.removed(3, REMOVE, n, 0x204000, 0x4000, sp(0x204000, 0x4000), EMPTY);
        assert_eq!(
            brief(&f),
            vec![(Check::BecameEmpty, n, (0x204000, 0x208000), REMOVE, None)]
        );
        let f = c.removed(4, REMOVE, n, 0x204000, 0x4000, EMPTY, EMPTY);
        assert_eq!(f, vec![]);
    }

    #[test]
    fn check_serialises_snake_case() {
        let s = serde_json::to_string(&[Check::OutsideSpan, Check::UnalignedShrink]).unwrap();
        assert_eq!(s, r#"["outside_span","unaligned_shrink"]"#);
    }

    #[test]
    fn range_set_merges_splits_and_counts() {
        let mut s = RangeSet::default();
        s.insert((10, 20));
        s.insert((30, 40));
        s.insert((20, 30)); // touches both: one range
        assert_eq!(
            s.map.iter().map(|(&a, &b)| (a, b)).collect::<Vec<_>>(),
            vec![(10, 40)]
        );
        assert_eq!(s.pages, 30);
        s.insert((5, 50));
        assert_eq!(s.map.len(), 1);
        assert_eq!(s.pages, 45);
        s.remove((20, 25));
        s.remove((45, 60));
        s.remove((0, 6));
        assert_eq!(
            s.map.iter().map(|(&a, &b)| (a, b)).collect::<Vec<_>>(),
            vec![(6, 20), (25, 45)]
        );
        assert_eq!(s.pages, 34);
        assert_eq!(
            s.overlapping((10, 30)).collect::<Vec<_>>(),
            vec![(10, 20), (25, 30)]
        );
        let gaps = |r| {
            let mut out = vec![(1, 2)];
            s.gaps(r, &mut out);
            out
        };
        // Appended to what the vector held.
        assert_eq!(gaps((0, 50)), vec![(1, 2), (0, 6), (20, 25), (45, 50)]);
        assert_eq!(gaps((30, 40)), vec![(1, 2)]);
        s.remove((0, 100));
        assert!(s.map.is_empty());
        assert_eq!(s.pages, 0);
        s.insert((7, 7));
        s.remove((9, 3));
        assert!(s.map.is_empty());
    }

    #[test]
    fn range_set_agrees_with_a_set_of_pages() {
        // Random inserts and removes over a small pfn space, against the pages one by one.
        let mut x: u64 = 1;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let mut s = RangeSet::default();
        let mut pages = std::collections::BTreeSet::new();
        for _ in 0..3000 {
            let start = next(200);
            let r = (start, start + next(24));
            if next(2) == 0 {
                s.insert(r);
                pages.extend(r.0..r.1);
            } else {
                s.remove(r);
                for p in r.0..r.1 {
                    pages.remove(&p);
                }
            }
            let held: Vec<u64> = s.map.iter().flat_map(|(&a, &b)| a..b).collect();
            assert_eq!(held, pages.iter().copied().collect::<Vec<_>>());
            assert_eq!(s.pages, pages.len() as u64);
            // Non-empty, disjoint and not touching: touching ranges are merged.
            let ranges: Vec<Iv> = s.map.iter().map(|(&a, &b)| (a, b)).collect();
            assert!(ranges.iter().all(|r| !is_empty(*r)));
            assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0), "{ranges:?}");

            let q0 = next(230);
            let q = (q0, q0 + next(40));
            let over: Vec<u64> = s.overlapping(q).flat_map(|(a, b)| a..b).collect();
            assert_eq!(over, pages.range(q.0..q.1).copied().collect::<Vec<_>>());
            let mut gaps = Vec::new();
            s.gaps(q, &mut gaps);
            let gap_pages: Vec<u64> = gaps.iter().flat_map(|&(a, b)| a..b).collect();
            assert_eq!(
                gap_pages,
                (q.0..q.1).filter(|p| !pages.contains(p)).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn scales_to_many_fragmented_ranges() {
        // Every other page, as memmap_on_memory interleaving would fragment it at worst.
        const N: u64 = 200_000;
        let n = z(0, 3);
        let mut c = SpanChecker::new(512);
        for i in 0..N {
            c.seed_assigned(n, 2 * i, 1);
        }
        c.seed_span(n, sp(0, 2 * N));
        assert_eq!(c.assigned_pages(n), N);
        let f = c.removed(1, REMOVE, n, 0, 0, sp(0, 2 * N), EMPTY);
        assert_eq!(f[0].check, Check::OutsideSpan);
        assert_eq!(f[0].pfns, (0, 1));
        assert!(f[0].message().contains(&format!("{N} pages in {N} runs")));
        c.moved(2, MOVE, z(0, 2), 0, 2 * N, EMPTY, sp(0, 2 * N));
        assert_eq!(c.assigned_pages(n), 0);
    }
}
