//! Short text forms for narrow columns.

/// A duration in at most 6 characters: "950ns", "12µs", "1.5ms", "64ms", "1.2s".
pub fn short_ns(ns: u64) -> String {
    let f = ns as f64;
    match ns {
        0..=999 => format!("{ns}ns"),
        1_000..=9_999 => format!("{:.1}µs", f / 1e3),
        10_000..=999_999 => format!("{:.0}µs", f / 1e3),
        1_000_000..=9_999_999 => format!("{:.1}ms", f / 1e6),
        10_000_000..=999_999_999 => format!("{:.0}ms", f / 1e6),
        _ => format!("{:.1}s", f / 1e9),
    }
}

/// Time since the start of the stream, in seconds: "+3.489".
pub fn since(ts_ns: u64, start_ns: u64) -> String {
    format!("+{:.3}", ts_ns.saturating_sub(start_ns) as f64 / 1e9)
}

/// A byte count in binary units, rounded: "128M", "2G", "4K".
pub fn short_bytes(b: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if b >= size {
            let v = b as f64 / size as f64;
            return if v.fract() == 0.0 || v >= 10.0 {
                format!("{v:.0}{unit}")
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{b}B")
}

/// Bars for the last `width` values, scaled to the largest of them.
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let shown = &values[values.len().saturating_sub(width)..];
    let max = shown.iter().copied().max().unwrap_or(0).max(1);
    shown
        .iter()
        .map(|&v| BARS[((v as u128 * 7).div_ceil(max as u128)) as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_fit_their_columns() {
        assert_eq!(short_ns(950), "950ns");
        assert_eq!(short_ns(1_530_000), "1.5ms");
        assert_eq!(short_ns(64_040_950), "64ms");
        assert_eq!(short_ns(12_345), "12µs");
        assert_eq!(short_ns(11_801_034_760), "11.8s");
        for ns in [0, 999, 9_999, 999_999, 9_999_999, 999_999_999, 99_000_000_000] {
            assert!(short_ns(ns).chars().count() <= 6, "{}", short_ns(ns));
        }
        assert_eq!(since(11_519_199_090, 8_030_209_650), "+3.489");
        assert_eq!(since(1, 5), "+0.000");
        assert_eq!(short_bytes(128 << 20), "128M");
        assert_eq!(short_bytes(3 << 29), "1.5G");
        assert_eq!(short_bytes(100), "100B");
    }

    #[test]
    fn sparkline_scales_to_the_largest_value_shown() {
        assert_eq!(sparkline(&[1, 8, 4, 0], 10), "▂█▅▁");
        assert_eq!(sparkline(&[100, 1, 2], 2), "▅█", "only the last values, rescaled");
        assert_eq!(sparkline(&[], 5), "");
        assert_eq!(sparkline(&[0, 0], 5), "▁▁");
    }
}
