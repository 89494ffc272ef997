//! Active people per day: DAU, WAU (7 days ending that day), MAU (30 days) and
//! stickiness (DAU / MAU), from a bit mask of each person's active days.

use duckdb::types::Value;
use duckdb::Connection;
use serde::Serialize;

use super::time::{Interval, DAY_US};
use crate::store::{ts_param, StoreError};

pub const WEEK_DAYS: i64 = 7;
pub const MONTH_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy)]
pub struct ActiveSpec {
    pub from_us: i64,
    pub to_us: i64,
    pub offset_us: i64,
}

impl ActiveSpec {
    pub fn first_day(&self) -> i64 {
        Interval::Day.bucket(self.from_us, self.offset_us)
    }
    pub fn last_day(&self) -> i64 {
        Interval::Day.bucket(self.to_us - 1, self.offset_us)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayActive {
    #[serde(skip)]
    pub day: i64,
    pub dau: u64,
    pub wau: u64,
    pub mau: u64,
    pub stickiness: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayRow {
    pub t: String,
    #[serde(flatten)]
    pub active: DayActive,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Active {
    pub current: Option<DayActive>,
    /// Mean DAU over mean MAU across the days of the range.
    pub stickiness: f64,
    pub series: Vec<DayRow>,
}

/// The most days one person's bit mask holds: a range of up to 35 days plus the 29 days
/// before it that its first MAU needs. Longer ranges take the edges below.
pub const MASK_DAYS: i64 = 64;

/// Whether `spec` fits a mask (see `masks`).
fn fits_mask(spec: &ActiveSpec) -> bool {
    spec.last_day() - (spec.first_day() - (MONTH_DAYS - 1)) < MASK_DAYS
}

/// The distinct (person, day) pairs read from the events alone.
fn pairs_raw(spec: &ActiveSpec) -> (String, Vec<Value>) {
    let day = Interval::Day.sql("epoch_us(event_time::TIMESTAMP)", spec.offset_us);
    let d = format!(
        "SELECT hash(visitor_id) AS v, {day} AS day FROM user_events \
         WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL"
    );
    let from = Interval::Day.start(spec.first_day() - (MONTH_DAYS - 1), spec.offset_us);
    (d, vec![ts_param(from), ts_param(spec.to_us)])
}

/// The statement over the events alone (any UTC offset): per-person masks when the range
/// fits one, else the edges.
pub fn sql(spec: &ActiveSpec) -> (String, Vec<Value>) {
    let (d, p) = pairs_raw(spec);
    match fits_mask(spec) {
        true => (masks(spec, &d), p),
        false => (edges(&format!("SELECT DISTINCT * FROM ({d})")), p),
    }
}

/// Per person, one bit per day from 29 days before the range to its last day (a 30-day
/// range needs 60), then the people per distinct mask: one hash aggregate over the
/// (person, day) pairs and a few thousand rows out, instead of a window over every pair
/// (the edges below; 400 ms against 50 ms on the 10M-event demo file). `summarise_masks`
/// reads DAU/WAU/MAU off the masks. Duplicate pairs are harmless (a bit set twice).
fn masks(spec: &ActiveSpec, d: &str) -> String {
    let lo = spec.first_day() - (MONTH_DAYS - 1);
    format!(
        "SELECT m, count(*) FROM (SELECT bit_or(1::UBIGINT << (day - {lo})::UBIGINT) AS m \
         FROM ({d}) GROUP BY v) GROUP BY m"
    )
}

/// The same in UTC days over the `rollup` of active days folded up to event number
/// `done`: whole days from it, the last (partial) day and the events not folded yet from
/// `user_events` (each part skips the rest of the table by its zone maps).
pub fn sql_rolled(spec: &ActiveSpec, done: i64) -> (String, Vec<Value>) {
    let day = Interval::Day.sql("epoch_us(event_time::TIMESTAMP)", 0);
    let (lo, last) = (spec.first_day() - (MONTH_DAYS - 1), spec.last_day());
    let (from, last_start) = (Interval::Day.start(lo, 0), Interval::Day.start(last, 0));
    let d = format!(
        "SELECT v, day FROM active_days WHERE day >= ? AND day < ? \
         UNION ALL SELECT hash(visitor_id), {day} FROM user_events \
           WHERE event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL \
         UNION ALL SELECT hash(visitor_id), {day} FROM user_events \
           WHERE seq > ? AND event_time >= ? AND event_time < ? AND visitor_id IS NOT NULL"
    );
    let p = vec![
        Value::BigInt(lo),
        Value::BigInt(last),
        ts_param(last_start),
        ts_param(spec.to_us),
        Value::BigInt(done),
        ts_param(from),
        ts_param(last_start),
    ];
    match fits_mask(spec) {
        true => (masks(spec, &d), p),
        false => (edges(&format!("SELECT DISTINCT * FROM ({d})")), p),
    }
}

/// DAU/WAU/MAU edges per day from `d`, the distinct (person, day) pairs.
fn edges(d: &str) -> String {
    format!(
        "WITH d AS ({d}), \
         p AS (SELECT day, lead(day) OVER (PARTITION BY v ORDER BY day) AS nxt FROM d) \
         SELECT x, sum(dau)::BIGINT, sum(wau)::BIGINT, sum(mau)::BIGINT FROM ( \
           SELECT day AS x, 1 AS dau, 1 AS wau, 1 AS mau FROM p \
           UNION ALL SELECT day + 1, -1, 0, 0 FROM p \
           UNION ALL SELECT least(day + {WEEK_DAYS}, coalesce(nxt, day + {WEEK_DAYS})), 0, -1, 0 FROM p \
           UNION ALL SELECT least(day + {MONTH_DAYS}, coalesce(nxt, day + {MONTH_DAYS})), 0, 0, -1 FROM p \
         ) GROUP BY x ORDER BY x"
    )
}

pub fn run_sync(conn: &Connection, spec: &ActiveSpec) -> Result<Active, StoreError> {
    // The roll-up holds UTC days; another offset moves the day edges, so it reads events.
    let rolled = match spec.offset_us {
        0 => super::rollup::done(conn)?,
        _ => None,
    };
    let (text, params) = match rolled {
        Some(done) => sql_rolled(spec, done),
        None => sql(spec),
    };
    let mut stmt = conn.prepare(&text)?;
    let mut rows = stmt.query(duckdb::params_from_iter(params))?;
    if fits_mask(spec) {
        let mut masks = Vec::new();
        while let Some(r) = rows.next()? {
            masks.push((r.get::<_, u64>(0)?, r.get::<_, i64>(1)?.max(0) as u64));
        }
        return Ok(summarise_masks(spec, &masks));
    }
    let mut deltas = Vec::new();
    while let Some(r) = rows.next()? {
        deltas.push((
            r.get::<_, i64>(0)?,
            [r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?],
        ));
    }
    Ok(summarise(spec, &deltas))
}

/// DAU/WAU/MAU per day from (mask, people) pairs, bit `i` of a mask being day
/// `first_day - 29 + i` (see `masks`): the people whose mask has a bit in the window.
pub fn summarise_masks(spec: &ActiveSpec, masks: &[(u64, u64)]) -> Active {
    let lo = spec.first_day() - (MONTH_DAYS - 1);
    let (first, last) = (spec.first_day(), spec.last_day());
    let window = |i: i64, w: i64| -> u64 {
        // Bits i-w+1..=i; i < 64 and w <= 30 < i + 1 for every day of the range.
        let upto = if i >= 63 {
            u64::MAX
        } else {
            (1u64 << (i + 1)) - 1
        };
        let below = (1u64 << (i + 1 - w)) - 1;
        upto & !below
    };
    let mut deltas = Vec::with_capacity((last - first + 1) as usize);
    let mut prev = [0i64; 3];
    for day in first..=last {
        let i = day - lo;
        let (d, w, m) = (window(i, 1), window(i, WEEK_DAYS), window(i, MONTH_DAYS));
        let mut n = [0i64; 3];
        for &(mask, people) in masks {
            let people = people as i64;
            n[0] += people * i64::from(mask & d != 0);
            n[1] += people * i64::from(mask & w != 0);
            n[2] += people * i64::from(mask & m != 0);
        }
        deltas.push((day, [n[0] - prev[0], n[1] - prev[1], n[2] - prev[2]]));
        prev = n;
    }
    summarise(spec, &deltas)
}

/// Running totals of the edges, one row per day of the range.
pub fn summarise(spec: &ActiveSpec, deltas: &[(i64, [i64; 3])]) -> Active {
    let (first, last) = (spec.first_day(), spec.last_day());
    let mut running = [0i64; 3];
    let mut it = deltas.iter().peekable();
    let mut series = Vec::new();
    for day in first..=last {
        while let Some((x, d)) = it.peek() {
            if *x > day {
                break;
            }
            for i in 0..3 {
                running[i] += d[i];
            }
            it.next();
        }
        let [dau, wau, mau] = running.map(|n| n.max(0) as u64);
        let active = DayActive {
            day,
            dau,
            wau,
            mau,
            stickiness: if mau == 0 {
                0.0
            } else {
                dau as f64 / mau as f64
            },
        };
        series.push(DayRow {
            t: chrono::DateTime::from_timestamp_micros(day * DAY_US - spec.offset_us)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            active,
        });
    }
    let (sum_dau, sum_mau) = series.iter().fold((0u64, 0u64), |(a, b), r| {
        (a + r.active.dau, b + r.active.mau)
    });
    Active {
        current: series.last().map(|r| r.active),
        stickiness: if sum_mau == 0 {
            0.0
        } else {
            sum_dau as f64 / sum_mau as f64
        },
        series,
    }
}
