//! Memmap-init parallelism per burst.
//!
//! Initialising the memmap of huge ranges takes seconds per node; whether those inits run
//! concurrently or one after another under the hotplug lock decides whether a multi-node box
//! takes seconds or minutes. Grouping inits into bursts and comparing busy time with wall time
//! shows the parallelism actually achieved. Pure and deterministic: no I/O.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One memmap initialisation, as an interval of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Init {
    pub node: i32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub pages: u64,
}

impl Init {
    /// An end before the start (clock trouble) counts as zero length rather than wrapping.
    fn end(&self) -> u64 {
        self.end_ns.max(self.start_ns)
    }
}

/// Memmap inits close together in time: each starts no later than a gap (100 ms in the report)
/// after the latest end before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Burst {
    /// Earliest start and latest end of its inits.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Number of inits.
    pub inits: u64,
    /// Sorted, deduplicated.
    pub nodes: Vec<i32>,
    /// Sum of the inits' durations.
    pub busy_ns: u64,
    /// end_ns - start_ns.
    pub wall_ns: u64,
    /// busy_ns / wall_ns; 1.0 when wall_ns is 0. 1.0 means serial, N means N at once.
    pub concurrency: f64,
    /// Most inits running at one instant.
    pub max_overlap: u32,
    /// Pages initialised.
    pub pages: u64,
}

/// Groups inits into bursts: sorted by start, an init joins the current burst when it starts
/// no later than `gap_ns` after the latest end so far. Output is sorted by start.
pub fn bursts(inits: &[Init], gap_ns: u64) -> Vec<Burst> {
    let mut sorted = inits.to_vec();
    // Full key so equal starts come out the same whatever the input order.
    sorted.sort_unstable_by_key(|i| (i.start_ns, i.end(), i.node, i.pages));
    let mut out = Vec::new();
    let mut group_start = 0;
    let mut latest_end = 0u64;
    for (k, init) in sorted.iter().enumerate() {
        if k > 0 && init.start_ns > latest_end.saturating_add(gap_ns) {
            out.push(summarise(&sorted[group_start..k]));
            group_start = k;
        }
        latest_end = if k == group_start {
            init.end()
        } else {
            latest_end.max(init.end())
        };
    }
    if !sorted.is_empty() {
        out.push(summarise(&sorted[group_start..]));
    }
    out
}

/// Summary of a non-empty group sorted by start.
fn summarise(group: &[Init]) -> Burst {
    let start_ns = group[0].start_ns;
    let end_ns = group.iter().map(Init::end).max().unwrap_or(start_ns);
    let mut nodes: Vec<i32> = group.iter().map(|i| i.node).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let busy_ns = group.iter().map(|i| i.end() - i.start_ns).sum();
    let wall_ns = end_ns - start_ns;
    let concurrency = if wall_ns == 0 {
        1.0
    } else {
        busy_ns as f64 / wall_ns as f64
    };
    Burst {
        start_ns,
        end_ns,
        inits: group.len() as u64,
        nodes,
        busy_ns,
        wall_ns,
        concurrency,
        max_overlap: max_overlap(group),
        pages: group.iter().map(|i| i.pages).sum(),
    }
}

/// Sweep over starts and ends. Intervals are half-open, so back-to-back inits do not overlap:
/// at one instant, ends go before starts. A zero-length init is the instant itself: it counts
/// as running alongside whatever starts at or spans that instant, so its end goes last.
fn max_overlap(group: &[Init]) -> u32 {
    const END: u8 = 0;
    const START: u8 = 1;
    const POINT_END: u8 = 2;
    let mut edges: Vec<(u64, u8)> = Vec::with_capacity(group.len() * 2);
    for i in group {
        edges.push((i.start_ns, START));
        let kind = if i.end() == i.start_ns { POINT_END } else { END };
        edges.push((i.end(), kind));
    }
    edges.sort_unstable();
    let (mut running, mut max) = (0u32, 0u32);
    for (_, kind) in edges {
        if kind == START {
            running += 1;
            max = max.max(running);
        } else {
            running -= 1;
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(node: i32, start_ns: u64, end_ns: u64, pages: u64) -> Init {
        Init {
            node,
            start_ns,
            end_ns,
            pages,
        }
    }

    #[test]
    fn empty_input_has_no_bursts() {
        assert_eq!(bursts(&[], 100), vec![]);
    }

    #[test]
    fn serial_inits_on_two_nodes_form_one_serial_burst() {
        // Node 0 then node 1, back to back, as under the hotplug lock.
        let b = bursts(&[init(0, 1_000, 21_000, 10), init(1, 21_000, 41_000, 20)], 0);
        assert_eq!(
            b,
            vec![Burst {
                start_ns: 1_000,
                end_ns: 41_000,
                inits: 2,
                nodes: vec![0, 1],
                busy_ns: 40_000,
                wall_ns: 40_000,
                concurrency: 1.0,
                max_overlap: 1,
                pages: 30,
            }]
        );
        // A small hole between them, within the gap: still one burst, a little under 1.0.
        let b = bursts(&[init(0, 0, 100, 1), init(1, 110, 210, 1)], 50);
        assert_eq!(b.len(), 1);
        assert!((b[0].concurrency - 200.0 / 210.0).abs() < 1e-9);
        assert_eq!(b[0].max_overlap, 1);
    }

    #[test]
    fn fully_overlapping_inits_run_at_concurrency_two() {
        let b = bursts(&[init(1, 500, 1_500, 4), init(0, 500, 1_500, 4)], 0);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].nodes, vec![0, 1]);
        assert_eq!((b[0].busy_ns, b[0].wall_ns), (2_000, 1_000));
        assert_eq!(b[0].concurrency, 2.0);
        assert_eq!(b[0].max_overlap, 2);
        assert_eq!(b[0].pages, 8);
    }

    #[test]
    fn partial_overlap_counts_the_peak() {
        // 0-100, 50-150, 60-70: three at once during 60-70.
        let b = bursts(&[init(0, 0, 100, 1), init(1, 50, 150, 1), init(2, 60, 70, 1)], 0);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].max_overlap, 3);
        assert_eq!((b[0].busy_ns, b[0].wall_ns), (210, 150));
    }

    #[test]
    fn gaps_split_bursts() {
        let inits = [
            init(0, 0, 100, 1),
            init(1, 150, 200, 1), // 50 after: joins with gap 50
            init(0, 251, 300, 1), // 51 after: new burst
            init(2, 1_000, 1_010, 1),
        ];
        let b = bursts(&inits, 50);
        let spans: Vec<_> = b.iter().map(|b| (b.start_ns, b.end_ns, b.inits)).collect();
        assert_eq!(spans, vec![(0, 200, 2), (251, 300, 1), (1_000, 1_010, 1)]);
        // The latest end so far counts, not the previous init's end.
        let b = bursts(
            &[init(0, 0, 1_000, 1), init(1, 10, 20, 1), init(2, 900, 2_000, 1)],
            0,
        );
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].max_overlap, 2);
    }

    #[test]
    fn zero_length_inits() {
        let b = bursts(&[init(3, 500, 500, 7)], 0);
        assert_eq!(
            b,
            vec![Burst {
                start_ns: 500,
                end_ns: 500,
                inits: 1,
                nodes: vec![3],
                busy_ns: 0,
                wall_ns: 0,
                concurrency: 1.0,
                max_overlap: 1,
                pages: 7,
            }]
        );
        // Two at the same instant run together; one at another's end does not.
        let b = bursts(&[init(0, 5, 5, 1), init(1, 5, 5, 1)], 0);
        assert_eq!((b.len(), b[0].max_overlap, b[0].concurrency), (1, 2, 1.0));
        let b = bursts(&[init(0, 0, 10, 1), init(1, 10, 10, 1)], 0);
        assert_eq!((b.len(), b[0].max_overlap), (1, 1));
        let b = bursts(&[init(0, 10, 20, 1), init(1, 10, 10, 1)], 0);
        assert_eq!(b[0].max_overlap, 2);
        // An end before the start is taken as zero length.
        let b = bursts(&[init(0, 10, 5, 1)], 0);
        assert_eq!((b[0].end_ns, b[0].busy_ns, b[0].wall_ns), (10, 0, 0));
    }

    #[test]
    fn unsorted_input_gives_the_same_sorted_output() {
        let inits = [
            init(2, 3_000, 3_100, 1),
            init(1, 0, 100, 1),
            init(0, 0, 100, 1),
            init(1, 2_000, 2_500, 1),
            init(2, 50, 80, 1),
        ];
        let b = bursts(&inits, 10);
        let mut rev = inits;
        rev.reverse();
        assert_eq!(bursts(&rev, 10), b);
        let starts: Vec<_> = b.iter().map(|b| b.start_ns).collect();
        assert_eq!(starts, vec![0, 2_000, 3_000]);
        assert_eq!(b[0].nodes, vec![0, 1, 2]);
        assert_eq!(b[0].max_overlap, 3);
    }
}
