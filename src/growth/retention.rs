//! Retention cohorts: people grouped by the interval of their first start event; a person
//! is retained in period k when they do the return event in the k-th interval after it
//! (in period 0: at or after their first start event).

use duckdb::types::Value;
use duckdb::Connection;
use serde::Serialize;

use super::time::Interval;
use crate::store::{ts_param, Store, StoreError};

pub const MAX_PERIODS: u32 = 60;

#[derive(Debug, Clone)]
pub struct RetentionSpec {
    /// None: any event starts a cohort membership.
    pub start_event: Option<String>,
    /// None: any event counts as a return.
    pub return_event: Option<String>,
    pub interval: Interval,
    /// Cohorts are the last `periods + 1` intervals up to `to_us`.
    pub periods: u32,
    pub to_us: i64,
    pub offset_us: i64,
}

impl RetentionSpec {
    pub fn last_bucket(&self) -> i64 {
        self.interval.bucket(self.to_us - 1, self.offset_us)
    }
    pub fn first_bucket(&self) -> i64 {
        self.last_bucket() - i64::from(self.periods)
    }
    pub fn from_us(&self) -> i64 {
        self.interval.start(self.first_bucket(), self.offset_us)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    pub start: String,
    pub size: u64,
    /// People retained per period; null where the period has not happened yet.
    pub retained: Vec<Option<u64>>,
    pub rates: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    pub interval: Interval,
    pub from: String,
    pub to: String,
    pub cohorts: Vec<Cohort>,
    /// Per period: retained share over every cohort that has reached it, by size.
    pub retention: Vec<Option<f64>>,
    /// Per period: the share not retained (1 - retention).
    pub churn: Vec<Option<f64>>,
}

fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn sql(spec: &RetentionSpec) -> (String, Vec<Value>) {
    let mut p = Vec::new();
    let bucket = spec.interval.sql("t", spec.offset_us);
    let cond = |ev: &Option<String>, p: &mut Vec<Value>| match ev {
        Some(e) => {
            p.push(Value::Text(e.clone()));
            "event = ?".to_string()
        }
        None => "true".to_string(),
    };
    let start = cond(&spec.start_event, &mut p);
    let ret = cond(&spec.return_event, &mut p);
    let mut s = format!(
        "WITH pb AS (SELECT v, {bucket} AS b, min(t) FILTER (WHERE {start}) AS fs, max(t) FILTER (WHERE {ret}) AS lr \
         FROM (SELECT hash(visitor_id) AS v, event, epoch_us(event_time::TIMESTAMP) AS t FROM user_events \
         WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL"
    );
    p.push(ts_param(spec.from_us()));
    p.push(ts_param(spec.to_us));
    if let (Some(a), Some(b)) = (&spec.start_event, &spec.return_event) {
        s.push_str(" AND event IN (?, ?)");
        p.push(Value::Text(a.clone()));
        p.push(Value::Text(b.clone()));
    }
    s.push_str(
        ") GROUP BY ALL), \
         c AS (SELECT v, min(b) AS b0, min(fs) AS t0 FROM pb WHERE fs IS NOT NULL GROUP BY v) \
         SELECT b0, -1 AS k, count(*) AS n FROM c GROUP BY b0 \
         UNION ALL SELECT c.b0, pb.b - c.b0 AS k, count(*) AS n FROM c JOIN pb ON pb.v = c.v \
         WHERE pb.b >= c.b0 AND pb.lr >= c.t0 GROUP BY ALL",
    );
    (s, p)
}

pub async fn run(store: &Store, spec: RetentionSpec) -> Result<Retention, StoreError> {
    store.query(move |conn| run_sync(conn, &spec)).await
}

/// Whether `spec` can be read from the active-days roll-up: any event starts and any
/// event returns, in UTC buckets (the roll-up holds UTC days). Then a person's cohort is
/// the bucket of their first active day in the range and they are retained in period k
/// when they have an active day in bucket k after it (period 0 always: the first event is
/// itself a return at or after it), which is what the events give.
fn from_active_days(spec: &RetentionSpec) -> bool {
    spec.start_event.is_none() && spec.return_event.is_none() && spec.offset_us == 0
}

/// Per person a mask of the buckets they were active in (bit i: bucket `first + i`; at
/// most `MAX_PERIODS + 1` = 61 bits), then the people per distinct mask. Whole UTC days
/// of the range come from `active_days` folded up to event number `done`; the last
/// (partial) day and the events the fold has not reached yet from `user_events`.
/// Duplicate (person, day) pairs are harmless: a bit set twice.
pub fn sql_rolled(spec: &RetentionSpec, done: i64) -> (String, Vec<Value>) {
    let day_us = super::time::DAY_US;
    let bucket = spec.interval.sql(&format!("(day * {day_us})"), 0);
    let first = spec.first_bucket();
    let (from, to) = (spec.from_us(), spec.to_us);
    // `from` is a UTC bucket start, so a whole day; the last day may be partial.
    let last = (to - 1).div_euclid(day_us);
    let last_start = last * day_us;
    let day = "epoch_us(event_time::TIMESTAMP) // 86400000000";
    let s = format!(
        "SELECT m, count(*) FROM (SELECT bit_or(1::UBIGINT << ({bucket} - {first})::UBIGINT) AS m FROM ( \
           SELECT v, day FROM active_days WHERE day >= ? AND day < ? \
           UNION ALL SELECT hash(visitor_id), {day} FROM user_events \
             WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL \
           UNION ALL SELECT hash(visitor_id), {day} FROM user_events \
             WHERE seq > ? AND event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL \
         ) GROUP BY v) GROUP BY m"
    );
    let p = vec![
        Value::BigInt(from.div_euclid(day_us)),
        Value::BigInt(last),
        ts_param(last_start.max(from)),
        ts_param(to),
        Value::BigInt(done),
        ts_param(from),
        ts_param(last_start.max(from)),
    ];
    (s, p)
}

/// Sizes and retained people per cohort from (mask, people) pairs (see `sql_rolled`).
pub fn fold_masks(width: usize, masks: &[(u64, u64)]) -> (Vec<u64>, Vec<Vec<u64>>) {
    let mut sizes = vec![0u64; width];
    let mut kept = vec![vec![0u64; width]; width];
    for &(mask, people) in masks {
        if mask == 0 {
            continue;
        }
        let c = mask.trailing_zeros() as usize;
        if c >= width {
            continue;
        }
        sizes[c] += people;
        let mut rest = mask;
        while rest != 0 {
            let b = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if let Some(slot) = kept[c].get_mut(b - c) {
                *slot += people;
            }
        }
    }
    (sizes, kept)
}

pub fn run_sync(conn: &Connection, spec: &RetentionSpec) -> Result<Retention, StoreError> {
    let first = spec.first_bucket();
    let last = spec.last_bucket();
    let width = (spec.periods + 1) as usize;
    let rolled = match from_active_days(spec) {
        true => super::rollup::done(conn)?,
        false => None,
    };
    if let Some(done) = rolled {
        let (text, params) = sql_rolled(spec, done);
        let mut stmt = conn.prepare(&text)?;
        let mut rows = stmt.query(duckdb::params_from_iter(params))?;
        let mut masks = Vec::new();
        while let Some(r) = rows.next()? {
            masks.push((r.get::<_, u64>(0)?, r.get::<_, i64>(1)?.max(0) as u64));
        }
        let (sizes, kept) = fold_masks(width, &masks);
        return Ok(table(spec, first, last, &sizes, &kept));
    }
    let (text, params) = sql(spec);
    let mut sizes = vec![0u64; width];
    let mut kept = vec![vec![0u64; width]; width];
    let mut stmt = conn.prepare(&text)?;
    let mut rows = stmt.query(duckdb::params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        let (b0, k, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let Ok(c) = usize::try_from(b0 - first) else {
            continue;
        };
        if c >= width {
            continue;
        }
        if k < 0 {
            sizes[c] = n as u64;
        } else if let Some(slot) = kept[c].get_mut(k as usize) {
            *slot = n as u64;
        }
    }
    Ok(table(spec, first, last, &sizes, &kept))
}

/// The cohort table, period averages and churn from sizes and retained counts.
pub fn table(
    spec: &RetentionSpec,
    first: i64,
    last: i64,
    sizes: &[u64],
    kept: &[Vec<u64>],
) -> Retention {
    let width = sizes.len();
    let mut cohorts = Vec::with_capacity(width);
    let mut sum_kept = vec![0u64; width];
    let mut sum_size = vec![0u64; width];
    for c in 0..width {
        let b0 = first + c as i64;
        let observable = (last - b0) as usize;
        let mut retained = Vec::with_capacity(width);
        let mut rates = Vec::with_capacity(width);
        for k in 0..width {
            if k > observable {
                retained.push(None);
                rates.push(None);
                continue;
            }
            let n = kept[c][k];
            retained.push(Some(n));
            rates.push(Some(if sizes[c] == 0 {
                0.0
            } else {
                n as f64 / sizes[c] as f64
            }));
            sum_kept[k] += n;
            sum_size[k] += sizes[c];
        }
        cohorts.push(Cohort {
            start: iso(spec.interval.start(b0, spec.offset_us)),
            size: sizes[c],
            retained,
            rates,
        });
    }
    let retention: Vec<Option<f64>> = (0..width)
        .map(|k| (sum_size[k] > 0).then(|| sum_kept[k] as f64 / sum_size[k] as f64))
        .collect();
    let churn = retention.iter().map(|r| r.map(|r| 1.0 - r)).collect();
    Retention {
        interval: spec.interval,
        from: iso(spec.from_us()),
        to: iso(spec.to_us),
        cohorts,
        retention,
        churn,
    }
}
