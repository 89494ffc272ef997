//! Feature adoption: which features what share of active people use, how often, and the
//! trend per interval. A feature is the event's `feature` (property or analytics.features).

use duckdb::Connection;
use serde::Serialize;

use super::time::Interval;
use crate::store::{ts_param, StoreError};

pub const MAX_FEATURES: usize = 50;

#[derive(Debug, Clone, Copy)]
pub struct AdoptionSpec {
    pub from_us: i64,
    pub to_us: i64,
    pub interval: Interval,
    pub offset_us: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureUse {
    pub feature: String,
    pub users: u64,
    pub events: u64,
    /// users / active people of the range.
    pub adoption: f64,
    pub uses_per_user: f64,
    /// Share of each interval's active people who used it, oldest first.
    pub trend: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adoption {
    pub active_users: u64,
    pub interval: Interval,
    /// Start of each trend interval.
    pub buckets: Vec<String>,
    /// Active people per trend interval.
    pub active_per_bucket: Vec<u64>,
    pub features: Vec<FeatureUse>,
}

pub const SQL: &str = "SELECT feature, b, count(*) AS events, count(DISTINCT visitor_id) AS users,
           grouping(feature) AS any_feature, grouping(b) AS any_bucket
    FROM (SELECT feature, visitor_id, {bucket} AS b FROM user_events
          WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL)
    GROUP BY GROUPING SETS ((feature), (feature, b), (b), ())";

pub fn sql(spec: &AdoptionSpec) -> String {
    SQL.replace(
        "{bucket}",
        &spec
            .interval
            .sql("epoch_us(event_time::TIMESTAMP)", spec.offset_us),
    )
}

pub fn run_sync(conn: &Connection, spec: &AdoptionSpec) -> Result<Adoption, StoreError> {
    let mut stmt = conn.prepare(&sql(spec))?;
    let mut rows = stmt.query(duckdb::params![
        ts_param(spec.from_us),
        ts_param(spec.to_us)
    ])?;
    let mut cells = Vec::new();
    while let Some(r) = rows.next()? {
        cells.push(Cell {
            feature: r.get(0)?,
            bucket: r.get(1)?,
            events: r.get::<_, i64>(2)?.max(0) as u64,
            users: r.get::<_, i64>(3)?.max(0) as u64,
            any_feature: r.get::<_, i64>(4)? != 0,
            any_bucket: r.get::<_, i64>(5)? != 0,
        });
    }
    Ok(from_cells(spec, cells))
}

/// One row of the adoption query: a feature (or every event: `any_feature`) in a bucket
/// (or over the whole range: `any_bucket`), the same on both engines.
pub(super) struct Cell {
    pub feature: Option<String>,
    pub bucket: Option<i64>,
    pub events: u64,
    pub users: u64,
    pub any_feature: bool,
    pub any_bucket: bool,
}

pub(super) fn from_cells(spec: &AdoptionSpec, cells: Vec<Cell>) -> Adoption {
    let first = spec.interval.bucket(spec.from_us, spec.offset_us);
    let last = spec.interval.bucket(spec.to_us - 1, spec.offset_us);
    let width = (last - first + 1).max(0) as usize;
    let mut active_users = 0u64;
    let mut active_per_bucket = vec![0u64; width];
    // feature -> (events, users, users per bucket)
    let mut per: std::collections::BTreeMap<String, (u64, u64, Vec<u64>)> = Default::default();
    for c in cells {
        let slot = c
            .bucket
            .and_then(|b| usize::try_from(b - first).ok())
            .filter(|i| *i < width);
        if c.any_feature {
            // Every active person, over the range or per bucket.
            match (c.any_bucket, slot) {
                (true, _) => active_users = c.users,
                (false, Some(i)) => active_per_bucket[i] = c.users,
                (false, None) => {}
            }
            continue;
        }
        // Events without a feature group under NULL: not a feature.
        let Some(f) = c.feature else { continue };
        let e = per.entry(f).or_insert_with(|| (0, 0, vec![0; width]));
        match (c.any_bucket, slot) {
            (true, _) => {
                e.0 = c.events;
                e.1 = c.users;
            }
            (false, Some(i)) => e.2[i] = c.users,
            (false, None) => {}
        }
    }
    assemble(spec, first, active_users, active_per_bucket, per)
}

fn assemble(
    spec: &AdoptionSpec,
    first: i64,
    active_users: u64,
    active_per_bucket: Vec<u64>,
    per: std::collections::BTreeMap<String, (u64, u64, Vec<u64>)>,
) -> Adoption {
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut features: Vec<FeatureUse> = per
        .into_iter()
        .map(|(feature, (events, users, buckets))| FeatureUse {
            adoption: ratio(users, active_users),
            uses_per_user: ratio(events, users),
            trend: buckets
                .iter()
                .zip(&active_per_bucket)
                .map(|(u, a)| ratio(*u, *a))
                .collect(),
            feature,
            users,
            events,
        })
        .collect();
    features.sort_by(|a, b| {
        b.users
            .cmp(&a.users)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    features.truncate(MAX_FEATURES);
    let buckets = (0..active_per_bucket.len() as i64)
        .map(|i| {
            chrono::DateTime::from_timestamp_micros(spec.interval.start(first + i, spec.offset_us))
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .collect();
    Adoption {
        active_users,
        interval: spec.interval,
        buckets,
        active_per_bucket,
        features,
    }
}
