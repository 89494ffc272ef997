//! The roll-up behind long ranges of the events page, the overview and the Growth page:
//! per UTC day and per value of each dimension (every event, sessions, page views, event
//! name, route, referring site, UTM source, medium and campaign, browser, system, device),
//! the exact event counts and a HyperLogLog sketch of the people (sessions for the
//! sessions row). Folded from events by their commit number (`seq`) in the background, so
//! events that arrive late for a day already rolled up are added to it at the next fold.
//!
//! A range reads the whole UTC days inside it from the roll-up, and from `user_events`
//! its partial first and last day and the events the fold has not reached yet; both
//! parts meet in one accumulator, so a range costs about one day of raw events however
//! long it is. Sketches merge by register maximum: the result is the same sketch, hence
//! the same estimate, that the raw events of the range would give (`read(.., false)`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::{Int64Type, UInt64Type};
use duckdb::types::Value;
use duckdb::{params, params_from_iter, Connection};

use super::dimensions::{COLUMNS, PAGEVIEW_EVENTS};
use super::sketch::{Hll, P_TOTAL, P_VALUE};
use super::time::DAY_US;
use crate::store::profiles::unfolded;
use crate::store::{in_transaction, rolled_days, ts_param, Store, StoreError};

const FOLD_EVERY: Duration = Duration::from_secs(30);

/// Every event (`key` empty).
pub const ALL: u8 = 0;
/// Sessions: `events` counts events with a session, the sketch holds sessions.
pub const SESSIONS: u8 = 1;
/// Page views (`key` empty).
pub const PAGEVIEWS: u8 = 2;
/// The first breakdown dimension; `FIRST_VALUE + i` is `dimensions::COLUMNS[i]`.
pub const FIRST_VALUE: u8 = 3;

/// One bucket: a day (or, merged, a range) of one dimension value.
#[derive(Debug, Clone)]
pub struct Entry {
    pub day: i64,
    pub dim: u8,
    pub key: String,
    /// Every event of the bucket.
    pub events: u64,
    /// The events that name a person (`visitor_id`), which the Growth page counts.
    pub events_v: u64,
    pub hll: Hll,
}

/// A small multiplicative hasher for the accumulator's integer keys.
#[derive(Default)]
pub(super) struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Buckets by (day, dimension, DuckDB's hash of the value).
#[derive(Default)]
pub struct Acc {
    index: HashMap<(i64, u8, u64), usize, BuildHasherDefault<Fx>>,
    pub entries: Vec<Entry>,
}

impl Acc {
    fn slot(&mut self, day: i64, dim: u8, kh: u64, key: impl FnOnce() -> String) -> &mut Entry {
        let n = self.entries.len();
        let i = *self.index.entry((day, dim, kh)).or_insert(n);
        if i == n {
            let p = if dim < FIRST_VALUE { P_TOTAL } else { P_VALUE };
            self.entries.push(Entry {
                day,
                dim,
                key: key(),
                events: 0,
                events_v: 0,
                hll: Hll::new(p),
            });
        }
        &mut self.entries[i]
    }

    /// Reads events selected by `cond` (its `?` bound to `p`) into the buckets.
    fn pull(&mut self, conn: &Connection, cond: &str, p: Vec<Value>) -> Result<(), StoreError> {
        let cols: Vec<String> = COLUMNS
            .iter()
            .map(|(c, _)| format!("hash({c}), {c}"))
            .collect();
        let sql = format!(
            "SELECT epoch_us(event_time::TIMESTAMP) // {DAY_US} AS day, \
               CASE WHEN visitor_id IS NOT NULL THEN hash(visitor_id) END AS h, \
               CASE WHEN session_id IS NOT NULL THEN hash(session_id) END AS hs, \
               event IN {PAGEVIEW_EVENTS} AS pv, {} \
             FROM user_events WHERE {cond} AND event_time IS NOT NULL",
            cols.join(", ")
        );
        let mut stmt = conn.prepare(&sql)?;
        let bad = |what: &str| {
            StoreError::Internal(format!("roll-up read: {what} has an unexpected type"))
        };
        for batch in stmt.query_arrow(params_from_iter(p))? {
            let day = batch
                .column(0)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| bad("day"))?;
            let h = batch
                .column(1)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| bad("h"))?;
            let hs = batch
                .column(2)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| bad("hs"))?;
            let pv = batch.column(3).as_boolean_opt().ok_or_else(|| bad("pv"))?;
            let mut dims = Vec::with_capacity(COLUMNS.len());
            for i in 0..COLUMNS.len() {
                let kh = batch
                    .column(4 + 2 * i)
                    .as_primitive_opt::<UInt64Type>()
                    .ok_or_else(|| bad("key hash"))?;
                let key = batch.column(5 + 2 * i);
                dims.push((kh, key));
            }
            for r in 0..batch.num_rows() {
                let d = day.value(r);
                let person = h.is_valid(r).then(|| h.value(r));
                let is_pv = pv.is_valid(r) && pv.value(r);
                let count = |e: &mut Entry| {
                    e.events += 1;
                    if let Some(v) = person {
                        e.events_v += 1;
                        e.hll.add(v);
                    }
                };
                count(self.slot(d, ALL, 0, String::new));
                if is_pv {
                    count(self.slot(d, PAGEVIEWS, 0, String::new));
                }
                if hs.is_valid(r) {
                    let e = self.slot(d, SESSIONS, 0, String::new);
                    e.events += 1;
                    e.hll.add(hs.value(r));
                }
                for (i, (kh, key)) in dims.iter().enumerate() {
                    if key.is_null(r) || (COLUMNS[i].1 && !is_pv) {
                        continue;
                    }
                    let text = || text_at(key.as_ref(), r);
                    count(self.slot(d, FIRST_VALUE + i as u8, kh.value(r), text));
                }
            }
        }
        Ok(())
    }

    /// Adds stored roll-up rows of days `[d0, d1)`.
    fn load(&mut self, conn: &Connection, d0: i64, d1: i64) -> Result<(), StoreError> {
        let mut stmt = conn.prepare(
            "SELECT day, dim, key, hash(key), events, events_v, sketch FROM growth_rollup \
             WHERE day >= ? AND day < ?",
        )?;
        let mut rows = stmt.query(params![d0, d1])?;
        while let Some(r) = rows.next()? {
            let (day, dim, key): (i64, u8, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let kh: u64 = if dim < FIRST_VALUE { 0 } else { r.get(3)? };
            let sketch: Vec<u8> = r.get(6)?;
            let e = self.slot(day, dim, kh, || key);
            e.events += r.get::<_, i64>(4)?.max(0) as u64;
            e.events_v += r.get::<_, i64>(5)?.max(0) as u64;
            e.hll.merge_bytes(&sketch);
        }
        Ok(())
    }
}

pub(super) fn text_at(col: &dyn Array, r: usize) -> String {
    if let Some(s) = col.as_string_opt::<i32>() {
        return s.value(r).to_string();
    }
    if let Some(s) = col.as_string_opt::<i64>() {
        return s.value(r).to_string();
    }
    if let Some(s) = col.as_string_view_opt() {
        return s.value(r).to_string();
    }
    String::new()
}

/// The commit number up to which events are folded, once the roll-up has begun.
pub fn done(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row("SELECT max(seq) FROM growth_rollup_state", [], |r| r.get(0))?)
}

/// Folds every committed event past the watermark; returns the buckets rewritten.
pub fn fold(conn: &Connection) -> Result<usize, StoreError> {
    in_transaction(conn, fold_in)
}

fn fold_in(conn: &Connection) -> Result<usize, StoreError> {
    let Some((top, which, p)) = unfolded(conn, "user_events", done(conn)?)? else {
        return Ok(0);
    };
    let mut acc = Acc::default();
    acc.pull(conn, which, p.into_iter().map(Value::BigInt).collect())?;
    let mut days: Vec<i64> = acc.entries.iter().map(|e| e.day).collect();
    days.sort_unstable();
    days.dedup();
    // Each touched day is read back, merged and written whole: one row per bucket.
    for &d in &days {
        acc.load(conn, d, d + 1)?;
    }
    {
        let mut del = conn.prepare("DELETE FROM growth_rollup WHERE day = ?")?;
        for &d in &days {
            del.execute(params![d])?;
        }
        let mut ins = conn.prepare("INSERT INTO growth_rollup VALUES (?, ?, ?, ?, ?, ?)")?;
        for e in &acc.entries {
            ins.execute(params![
                e.day,
                e.dim,
                e.key,
                e.events as i64,
                e.events_v as i64,
                e.hll.to_bytes()
            ])?;
        }
    }
    conn.execute("DELETE FROM growth_rollup_state", [])?;
    conn.execute("INSERT INTO growth_rollup_state VALUES (?)", params![top])?;
    Ok(acc.entries.len())
}

/// Folds now (start-up, the demo); returns the buckets rewritten.
pub async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    store.maintain(fold).await
}

/// Keeps the roll-up current in the background.
pub fn spawn(store: Store) {
    store.every(FOLD_EVERY, "growth roll-up", |store| async move {
        catch_up(&store).await.map(drop)
    });
}

/// The buckets of `[from_us, to_us)` per UTC day: whole days from the roll-up (when
/// `rolled` and it has begun), the rest from the events, in one snapshot. Days of the
/// partial edges carry only their part inside the range.
pub fn read(
    conn: &Connection,
    from_us: i64,
    to_us: i64,
    rolled: bool,
) -> Result<Vec<Entry>, StoreError> {
    in_transaction(conn, |conn| {
        let mut acc = Acc::default();
        let done = if rolled { done(conn)? } else { None };
        let range = "event_time >= ? AND event_time < ?";
        let (d0, d1) = match done {
            Some(_) => rolled_days(conn, "user_events", from_us, to_us)?,
            None => (0, 0),
        };
        match done {
            Some(done) if d1 > d0 => {
                let (a, b) = (d0 * DAY_US, d1 * DAY_US);
                acc.load(conn, d0, d1)?;
                if from_us < a {
                    acc.pull(conn, range, vec![ts_param(from_us), ts_param(a)])?;
                }
                if b < to_us {
                    acc.pull(conn, range, vec![ts_param(b), ts_param(to_us)])?;
                }
                acc.pull(
                    conn,
                    &format!("seq > ? AND {range}"),
                    vec![Value::BigInt(done), ts_param(a), ts_param(b)],
                )?;
            }
            _ => acc.pull(conn, range, vec![ts_param(from_us), ts_param(to_us)])?,
        }
        Ok(acc.entries)
    })
}

/// The buckets of a range merged over its days, one per (dimension, value).
pub fn merged(entries: &[Entry]) -> Vec<Entry> {
    let mut index: HashMap<(u8, &str), usize> = HashMap::new();
    let mut out: Vec<Entry> = Vec::new();
    for e in entries {
        match index.get(&(e.dim, e.key.as_str())) {
            Some(&i) => {
                let o = &mut out[i];
                o.events += e.events;
                o.events_v += e.events_v;
                o.hll.merge(&e.hll);
            }
            None => {
                index.insert((e.dim, e.key.as_str()), out.len());
                let mut o = e.clone();
                o.day = 0;
                out.push(o);
            }
        }
    }
    out
}

/// Whether the range's events and people should come from the roll-up: only UTC day
/// buckets exist, so series of smaller buckets are read from the events.
pub fn serves_series(bucket_us: i64) -> bool {
    bucket_us == DAY_US
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000_000;

    /// Events of `n` people over `hours` hours from `start`, numbered from `seq`: several
    /// names, routes, browsers, sessions; every seventh without a person, every fifth a page view.
    fn write(conn: &Connection, start: i64, hours: i64, seq: i64) {
        let mut s = seq;
        for h in 0..hours {
            for i in 0..40i64 {
                s += 1;
                let person = (i % 7 != 0).then(|| format!("u{}", (i * 13 + h * 5) % 97));
                let event = if i % 5 == 0 {
                    "pageview"
                } else {
                    ["signup", "viewed", "saved"][(i % 3) as usize]
                };
                let route = (i % 5 == 0).then(|| format!("/r{}", i % 4));
                let t = start + h * HOUR + i * 60_000_000;
                conn.execute(
                    "INSERT INTO user_events (event, visitor_id, session_id, route, browser, utm_source, \
                     created_at, event_time, seq) VALUES (?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), ?)",
                    params![
                        event,
                        person,
                        format!("s{}", (i + h) % 11),
                        route,
                        ["Firefox", "Chrome"][(i % 2) as usize],
                        (i % 10 == 0).then_some("news"),
                        t,
                        t,
                        s
                    ],
                )
                .unwrap();
            }
        }
    }

    fn same(a: &[Entry], b: &[Entry]) {
        let key = |e: &Entry| (e.dim, e.key.clone());
        let (mut a, mut b) = (merged(a), merged(b));
        a.sort_by_key(key);
        b.sort_by_key(key);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                (x.dim, &x.key, x.events, x.events_v, &x.hll),
                (y.dim, &y.key, y.events, y.events_v, &y.hll)
            );
        }
    }

    #[tokio::test]
    async fn rolled_reads_equal_raw_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.duckdb"), &StoreOptions::small()).unwrap();
        store
            .maintain(|conn| {
                // Three days and a half; folded; then late events for the first day.
                write(conn, T0, 84, 0);
                assert!(fold(conn)? > 0);
                assert_eq!(done(conn)?, Some(84 * 40));
                let ranges = [
                    (T0, T0 + 3 * DAY_US),                           // aligned
                    (T0 + 5 * HOUR + 7, T0 + 2 * DAY_US + 3 * HOUR), // neither edge aligned
                    (T0 + 2 * HOUR, T0 + 20 * HOUR),                 // inside one day
                    (T0 + 30 * HOUR, T0 + 84 * HOUR + 1),            // ends after the last event
                    (T0 - DAY_US, T0 + 10 * DAY_US),
                ];
                let check = |conn: &Connection| -> Result<(), StoreError> {
                    for (a, b) in ranges {
                        same(&read(conn, a, b, true)?, &read(conn, a, b, false)?);
                    }
                    Ok(())
                };
                check(conn)?;
                let before = merged(&read(conn, T0, T0 + DAY_US, true)?);
                // Data arriving after its day was rolled up: read before and after the fold.
                write(conn, T0 + 3 * HOUR + 30_000_000, 2, 84 * 40);
                check(conn)?;
                let after = merged(&read(conn, T0, T0 + DAY_US, true)?);
                let all = |v: &[Entry]| v.iter().find(|e| e.dim == ALL).map(|e| e.events);
                assert_eq!(all(&after), all(&before).map(|n| n + 80));
                fold(conn)?;
                check(conn)?;
                assert_eq!(
                    all(&merged(&read(conn, T0, T0 + DAY_US, true)?)),
                    all(&after)
                );
                // One row per bucket after folding twice into the same day.
                assert_eq!(
                    crate::store::repeated_keys(conn, "growth_rollup", "day, dim, key")?,
                    0
                );
                Ok(())
            })
            .await
            .unwrap();
    }
}
