//! The expected band of a measure: a robust seasonal baseline. For the current hour of
//! the week, the values of the same hour (and its neighbours, one hour either side) over
//! the last four weeks; their median is the expectation and their median absolute
//! deviation (scaled by 1.4826, a standard deviation for normal data) the spread. Median
//! and MAD ignore the odd incident week that a mean and standard deviation would absorb.

use serde::Serialize;

pub const WEEKS: i64 = 4;
pub const WEEK_US: i64 = 7 * 86_400 * 1_000_000;
const HOUR_US: i64 = 3_600 * 1_000_000;
/// Fewer points than this say nothing about normal.
pub const MIN_POINTS: usize = 6;
pub const DEFAULT_SENSITIVITY: f64 = 3.0;
const MAD_TO_SD: f64 = 1.4826;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Band {
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    pub points: usize,
}

pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The band from baseline values; `None` when there are too few.
pub fn band(values: &[f64], sensitivity: f64) -> Option<Band> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < MIN_POINTS {
        return None;
    }
    let m = median(&mut v)?;
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev)?;
    // A flat history has MAD 0: allow 5% of the level (or a hair) so noise does not page.
    let spread = (mad * MAD_TO_SD).max(m.abs() * 0.05).max(1e-9);
    Some(Band {
        expected: m,
        lower: m - sensitivity * spread,
        upper: m + sensitivity * spread,
        points: v.len(),
    })
}

/// The windows of the baseline for a window ending at `now_us` of `window_us`: the same
/// window 1..=4 weeks back, and shifted by an hour either side. Returns [from, to) pairs.
pub fn baseline_windows(now_us: i64, window_us: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for w in 1..=WEEKS {
        for shift in [-HOUR_US, 0, HOUR_US] {
            let to = now_us - w * WEEK_US + shift;
            out.push((to - window_us, to));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_ignores_one_bad_week() {
        let b = band(&[100.0, 102.0, 98.0, 101.0, 99.0, 500.0, 100.0], 3.0).unwrap();
        assert_eq!(b.expected, 100.0);
        assert!(b.upper < 120.0 && b.lower > 80.0, "{b:?}");
        assert!(band(&[1.0, 2.0], 3.0).is_none());
    }

    #[test]
    fn flat_history_still_has_a_band() {
        let b = band(&[10.0; 8], 3.0).unwrap();
        assert!(b.upper > 10.0 && b.lower < 10.0);
    }

    #[test]
    fn windows_are_a_week_apart() {
        let w = baseline_windows(WEEK_US * 10, 900_000_000);
        assert_eq!(w.len(), 12);
        assert_eq!(w[1], (WEEK_US * 9 - 900_000_000, WEEK_US * 9));
    }
}
