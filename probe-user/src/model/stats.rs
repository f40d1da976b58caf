//! Duration distributions and their summary (count, percentiles, throughput), in memory that
//! does not grow with the number of calls: an HDR histogram (3 significant digits) for the
//! percentiles, exact count, total and maximum beside it.
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Significant digits the percentiles keep: within 0.1% of the true value.
const SIGFIG: u8 = 3;

#[derive(Debug, Clone)]
pub struct Durations {
    hist: Histogram<u64>,
    count: u64,
    total_ns: u64,
    max_ns: u64,
    pages: u64,
}

impl Default for Durations {
    fn default() -> Durations {
        Durations {
            // Auto-resizing: it grows with the largest duration seen, not with the count.
            hist: Histogram::new(SIGFIG).expect("3 significant digits are valid"),
            count: 0,
            total_ns: 0,
            max_ns: 0,
            pages: 0,
        }
    }
}

/// Calls of one kind: how many, time spent (percentiles within 0.1%) and pages handled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DurationSummary {
    pub count: u64,
    pub total_ns: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
    /// Pages handled by all the calls.
    pub pages: u64,
    /// Pages handled per second of time spent (0 when nothing was timed).
    pub pages_per_sec: f64,
}

impl Durations {
    pub fn record(&mut self, duration_ns: u64, pages: u64) {
        // An auto-resizing histogram only refuses values past u64's range it cannot reach.
        let _ = self.hist.record(duration_ns);
        self.count += 1;
        self.total_ns = self.total_ns.saturating_add(duration_ns);
        self.max_ns = self.max_ns.max(duration_ns);
        self.pages = self.pages.saturating_add(pages);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// (duration, how many) for each distinct recorded value, within 0.1% (metrics bucket them).
    pub fn recorded(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to().min(self.max_ns), v.count_at_value()))
    }

    /// Nearest-rank percentile, never above the exact maximum.
    fn percentile(&self, pct: u64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        self.hist.value_at_quantile(pct as f64 / 100.0).min(self.max_ns)
    }

    pub fn summary(&self) -> DurationSummary {
        DurationSummary {
            count: self.count,
            total_ns: self.total_ns,
            p50_ns: self.percentile(50),
            p99_ns: self.percentile(99),
            max_ns: self.max_ns,
            pages: self.pages,
            pages_per_sec: if self.total_ns == 0 {
                0.0
            } else {
                self.pages as f64 * 1e9 / self.total_ns as f64
            },
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u64], pct: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (pct * sorted.len() as u64).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }

    #[test]
    fn summary_counts_pages_per_second() {
        let mut d = Durations::default();
        d.record(2_000_000_000, 1000);
        d.record(1_000_000_000, 500);
        let s = d.summary();
        assert_eq!((s.count, s.total_ns, s.max_ns), (2, 3_000_000_000, 2_000_000_000));
        assert!(s.p50_ns.abs_diff(1_000_000_000) <= 1_000_000, "{}", s.p50_ns);
        assert_eq!(s.pages_per_sec, 500.0);
        assert_eq!(Durations::default().summary().pages_per_sec, 0.0);
    }

    #[test]
    fn percentiles_agree_with_the_exact_ones_within_a_thousandth() {
        // Durations spread over six orders of magnitude, as online and offline times are.
        let samples: Vec<u64> = (1..=5000u64).map(|i| i * i * 37 % 9_000_000_007 + 1000).collect();
        let mut d = Durations::default();
        for &s in &samples {
            d.record(s, 1);
        }
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        let s = d.summary();
        for (got, pct) in [(s.p50_ns, 50), (s.p99_ns, 99)] {
            let exact = percentile(&sorted, pct);
            assert!(
                got.abs_diff(exact) <= exact / 1000 + 1,
                "p{pct}: {got} vs {exact}"
            );
        }
        assert_eq!(s.max_ns, *sorted.last().unwrap());
        assert_eq!(s.total_ns, samples.iter().sum::<u64>());
    }

    #[test]
    fn memory_does_not_grow_with_the_count() {
        let mut d = Durations::default();
        for i in 0..5000u64 {
            d.record(i * 1000, 1);
        }
        let after_5k = d.hist.distinct_values();
        for i in 0..1_000_000u64 {
            d.record(i % 5000 * 1000, 1);
        }
        assert_eq!(d.hist.distinct_values(), after_5k);
        assert_eq!(d.count(), 1_005_000);
    }
}
