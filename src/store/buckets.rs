//! Log-bucket histograms: what the roll-ups keep of a distribution (web vitals, AI call
//! and query durations), so a percentile over a month is a sum of small rows instead of a
//! sort of every value. Buckets are counted in SQL (`bucket_sql`) and read back here.

use std::collections::BTreeMap;

/// Neighbouring bucket bounds differ by 4%: a value read back is within 2% of the truth.
pub const GAMMA: f64 = 1.04;
/// The bucket of values <= 0, which the log scale cannot hold.
pub const ZERO_BUCKET: i16 = i16::MIN;

/// SQL: the log bucket of `v` (> 0), or the zero bucket.
pub fn bucket_sql(v: &str) -> String {
    format!(
        "(CASE WHEN {v} <= 0 THEN {ZERO_BUCKET} ELSE round(ln({v}) / ln({GAMMA}))::SMALLINT END)"
    )
}

/// The value a bucket stands for: the geometric middle of its bounds.
pub fn bucket_value(b: i16) -> f64 {
    if b == ZERO_BUCKET {
        0.0
    } else {
        GAMMA.powi(i32::from(b))
    }
}

/// Counts per bucket. Counts may be negative while partial sums are merged (a re-reported
/// web vital takes its earlier report back); reads clamp them at zero.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Buckets(BTreeMap<i16, i64>);

impl Buckets {
    pub fn add(&mut self, bucket: i16, n: i64) {
        *self.0.entry(bucket).or_default() += n;
    }

    pub fn merge(&mut self, other: &Buckets) {
        for (b, n) in &other.0 {
            self.add(*b, *n);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.values().map(|n| (*n).max(0) as u64).sum()
    }

    /// (bucket value, count) pairs, smallest first.
    pub fn values(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.0
            .iter()
            .map(|(b, n)| (bucket_value(*b), (*n).max(0) as u64))
    }

    /// How many values lie above `limit`, by the value each bucket stands for.
    pub fn count_above(&self, limit: f64) -> u64 {
        self.values()
            .filter(|(v, _)| *v > limit)
            .map(|(_, n)| n)
            .sum()
    }

    /// The value at quantile `q`: the bucket holding rank floor((n - 1) q).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((n - 1) as f64 * q).floor() as u64;
        let mut seen = 0u64;
        for (v, c) in self.values() {
            seen += c;
            if seen > rank {
                return Some(v);
            }
        }
        self.0.keys().next_back().map(|b| bucket_value(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::Connection;

    #[test]
    fn buckets_read_back_within_two_percent() {
        let conn = Connection::open_in_memory().unwrap();
        for v in [
            0.0011,
            0.05,
            0.1,
            0.25,
            1.0,
            40.0,
            199.0,
            2500.0,
            86_400_000.0,
        ] {
            let b: i16 = conn
                .query_row(&format!("SELECT {}", bucket_sql(&v.to_string())), [], |r| {
                    r.get(0)
                })
                .unwrap();
            let back = bucket_value(b);
            assert!((back - v).abs() / v <= 0.02, "{v} -> {b} -> {back}");
        }
    }

    #[test]
    fn quantiles_from_buckets() {
        let mut h = Buckets::default();
        for (b, n) in [(10, 5), (20, 3), (30, 2)] {
            h.add(b, n);
        }
        h.add(30, -1); // a re-report took one back
        assert_eq!(h.count(), 9);
        // Compile-time and run-time powi may differ in the last bit.
        let at = |q: f64, b: i16| (h.quantile(q).unwrap() - bucket_value(b)).abs() < 1e-9;
        assert!(at(0.0, 10));
        assert!(at(0.5, 10), "rank 4 of 0..8");
        assert!(at(0.75, 20), "rank 6");
        assert!(at(1.0, 30));
        assert_eq!(h.count_above(bucket_value(15)), 4);
        assert_eq!(Buckets::default().quantile(0.5), None);
    }
}
