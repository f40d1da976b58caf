//! Duration samples and their summary (count, percentiles, throughput).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default)]
pub struct Durations {
    samples_ns: Vec<u64>,
    pages: u64,
}

/// Calls of one kind: how many, time spent (nearest-rank percentiles) and pages handled.
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
        self.samples_ns.push(duration_ns);
        self.pages += pages;
    }

    pub fn count(&self) -> u64 {
        self.samples_ns.len() as u64
    }

    /// Every recorded duration, in the order recorded (metrics bucket them into histograms).
    pub fn samples_ns(&self) -> &[u64] {
        &self.samples_ns
    }

    pub fn summary(&self) -> DurationSummary {
        let mut sorted = self.samples_ns.clone();
        sorted.sort_unstable();
        let total_ns: u64 = sorted.iter().sum();
        DurationSummary {
            count: sorted.len() as u64,
            total_ns,
            p50_ns: percentile(&sorted, 50),
            p99_ns: percentile(&sorted, 99),
            max_ns: sorted.last().copied().unwrap_or(0),
            pages: self.pages,
            pages_per_sec: if total_ns == 0 {
                0.0
            } else {
                self.pages as f64 * 1e9 / total_ns as f64
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
        assert_eq!(
            (s.count, s.total_ns, s.max_ns, s.p50_ns),
            (2, 3_000_000_000, 2_000_000_000, 1_000_000_000)
        );
        assert_eq!(s.pages_per_sec, 500.0);
        assert_eq!(Durations::default().summary().pages_per_sec, 0.0);
    }
}
