//! The roll-up of timed calls behind the overview's long windows: per stream (AI calls,
//! query timings), UTC day of event time and log bucket of the duration, the calls, the
//! failed ones, the cache hits and the tokens. Folded by commit number (`seq`) in the
//! background, so rows that arrive late for a day already rolled up join it at the next
//! fold, and a backfilled row is never skipped.
//!
//! A window reads its whole UTC days from the roll-up, and from the rows its partial
//! first and last day and what the fold has not reached yet, so 30 days of millions of
//! timings cost about one day of rows. Counts stay exact; percentiles come from the
//! buckets (within 2%), which is why short windows keep the exact path (`long_window`).

use std::time::Duration;

use duckdb::types::Value;
use duckdb::{params, params_from_iter, Connection};

use super::buckets::{bucket_sql, Buckets};
use super::profiles::unfolded;
use super::{in_transaction, rolled_days, ts_param, Store, StoreError};

const DAY_US: i64 = 86_400_000_000;
const FOLD_EVERY: Duration = Duration::from_secs(30);

/// One stream of timed calls: its table and what counts as failed, a cache hit and tokens
/// (SQL over the table's columns, from our own constants).
#[derive(Debug)]
pub struct Timings {
    pub stream: u8,
    pub table: &'static str,
    pub failed: &'static str,
    pub hit: &'static str,
    pub tokens: &'static str,
}

/// What a window holds of one stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub calls: u64,
    pub failed: u64,
    pub hits: u64,
    pub tokens: u64,
    /// Milliseconds, per log bucket.
    pub durations: Buckets,
}

impl Summary {
    fn add_rows(&mut self, conn: &Connection, sql: &str, p: Vec<Value>) -> Result<(), StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query(params_from_iter(p))?;
        while let Some(r) = rows.next()? {
            let n: i64 = r.get(1)?;
            self.calls += n.max(0) as u64;
            self.failed += r.get::<_, i64>(2)?.max(0) as u64;
            self.hits += r.get::<_, i64>(3)?.max(0) as u64;
            self.tokens += r.get::<_, i64>(4)?.max(0) as u64;
            self.durations.add(r.get(0)?, n);
        }
        Ok(())
    }
}

/// `part` of `whole` as a fraction; none of none is no rate.
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl Timings {
    /// SQL: (bucket, calls, failed, hits, tokens) per bucket of the rows matching `cond`.
    fn raw(&self, cond: &str) -> String {
        format!(
            "SELECT {} AS bucket, count(*)::BIGINT, count(*) FILTER (WHERE {})::BIGINT, \
             count(*) FILTER (WHERE {})::BIGINT, coalesce(sum({}), 0)::BIGINT \
             FROM {} WHERE {cond} AND event_time IS NOT NULL AND duration IS NOT NULL GROUP BY 1",
            bucket_sql("duration"),
            self.failed,
            self.hit,
            self.tokens,
            self.table
        )
    }

    /// The commit number up to which rows are folded, once the roll-up has begun.
    pub fn done(&self, conn: &Connection) -> Result<Option<i64>, StoreError> {
        Ok(conn.query_row(
            "SELECT max(seq) FROM timing_rollup_state WHERE stream = ?",
            params![self.stream],
            |r| r.get(0),
        )?)
    }

    /// Folds every committed row past the watermark; returns the rows folded.
    pub fn fold(&self, conn: &Connection) -> Result<usize, StoreError> {
        in_transaction(conn, |conn| {
            let Some((top, which, p)) = unfolded(conn, self.table, self.done(conn)?)? else {
                return Ok(0);
            };
            let n = conn.execute(
                &format!(
                    "INSERT INTO timing_rollup \
                     SELECT {stream}, day, bucket, sum(n), sum(failed), sum(hits), sum(tokens) FROM ( \
                       SELECT epoch_us(event_time::TIMESTAMP) // {DAY_US} AS day, {bucket} AS bucket, 1 AS n, \
                         ({failed})::INTEGER AS failed, ({hit})::INTEGER AS hits, coalesce({tokens}, 0) AS tokens \
                       FROM {table} WHERE {which} AND event_time IS NOT NULL AND duration IS NOT NULL) \
                     GROUP BY day, bucket \
                     ON CONFLICT DO UPDATE SET n = n + excluded.n, failed = failed + excluded.failed, \
                       hits = hits + excluded.hits, tokens = tokens + excluded.tokens",
                    stream = self.stream,
                    bucket = bucket_sql("duration"),
                    failed = self.failed,
                    hit = self.hit,
                    tokens = self.tokens,
                    table = self.table,
                ),
                params_from_iter(p),
            )?;
            conn.execute(
                "DELETE FROM timing_rollup_state WHERE stream = ?",
                params![self.stream],
            )?;
            conn.execute(
                "INSERT INTO timing_rollup_state VALUES (?, ?)",
                params![self.stream, top],
            )?;
            Ok(n)
        })
    }

    /// Folds now (start-up, the demo); returns the buckets written. Nothing on the
    /// ClickHouse engine: the rows live there, and its reads take them raw.
    pub async fn catch_up(&'static self, store: &Store) -> Result<usize, StoreError> {
        if store.clickhouse().is_some() {
            return Ok(0);
        }
        store.maintain(|conn| self.fold(conn)).await
    }

    /// Keeps the roll-up current in the background (DuckDB only: on ClickHouse the
    /// node's file gets no calls to fold, and no read would look at its roll-up).
    pub fn spawn(&'static self, store: &Store) {
        if store.clickhouse().is_some() {
            return;
        }
        store.every(FOLD_EVERY, "timing roll-up", move |store| async move {
            self.catch_up(&store).await.map(drop)
        });
    }

    /// A window of more than two days from the roll-up (`read`); `None` for shorter ones,
    /// where the rows are few and their percentiles stay exact, or when `read` declines.
    pub fn long_window(
        &self,
        conn: &Connection,
        from_us: i64,
        to_us: i64,
    ) -> Result<Option<Summary>, StoreError> {
        if to_us - from_us <= 2 * DAY_US {
            return Ok(None);
        }
        self.read(conn, from_us, to_us, true)
    }

    /// `[from_us, to_us)` from the roll-up for its whole UTC days and the rows for the
    /// rest, in one snapshot; `None` when the roll-up has not begun or the window holds
    /// no whole day (then the rows alone are the better read). With `rolled` false, the
    /// same answer from the rows alone (the reference the tests compare with).
    pub fn read(
        &self,
        conn: &Connection,
        from_us: i64,
        to_us: i64,
        rolled: bool,
    ) -> Result<Option<Summary>, StoreError> {
        in_transaction(conn, |conn| {
            let range = "event_time >= ? AND event_time < ?";
            let mut out = Summary::default();
            if !rolled {
                out.add_rows(
                    conn,
                    &self.raw(range),
                    vec![ts_param(from_us), ts_param(to_us)],
                )?;
                return Ok(Some(out));
            }
            let Some(done) = self.done(conn)? else {
                return Ok(None);
            };
            let (d0, d1) = rolled_days(conn, self.table, from_us, to_us)?;
            if d1 <= d0 {
                return Ok(None);
            }
            let (a, b) = (d0 * DAY_US, d1 * DAY_US);
            out.add_rows(
                conn,
                "SELECT bucket, sum(n)::BIGINT, sum(failed)::BIGINT, sum(hits)::BIGINT, sum(tokens)::BIGINT \
                 FROM timing_rollup WHERE stream = ? AND day >= ? AND day < ? GROUP BY bucket",
                vec![
                    Value::UTinyInt(self.stream),
                    Value::BigInt(d0),
                    Value::BigInt(d1),
                ],
            )?;
            if from_us < a {
                out.add_rows(conn, &self.raw(range), vec![ts_param(from_us), ts_param(a)])?;
            }
            if b < to_us {
                out.add_rows(conn, &self.raw(range), vec![ts_param(b), ts_param(to_us)])?;
            }
            out.add_rows(
                conn,
                &self.raw(&format!("seq > ? AND {range}")),
                vec![Value::BigInt(done), ts_param(a), ts_param(b)],
            )?;
            Ok(Some(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000_000;
    const AI: Timings = Timings {
        stream: 1,
        table: "ai_performance_metrics",
        failed: "NOT success",
        hit: "cache_hit",
        tokens: "tokens",
    };

    /// 30 calls an hour for `hours` hours from `start`, numbered from `seq`: durations
    /// from 1 ms to about 30 s, every fourth failed, every third a cache hit.
    fn write(conn: &Connection, start: i64, hours: i64, seq: i64) {
        let mut s = seq;
        for h in 0..hours {
            for i in 0..30i64 {
                s += 1;
                let t = start + h * HOUR + i * 100_000_000;
                conn.execute(
                    "INSERT INTO ai_performance_metrics (id, endpoint, model, tokens, duration, success, \
                     cache_hit, timestamp, created_at, event_time, seq) \
                     VALUES (uuid(), 'chat', 'm', ?, ?, ?, ?, 0, make_timestamp(?), make_timestamp(?), ?)",
                    params![
                        i * 7 + h,
                        1.37f64.powi(((i * 11 + h) % 33) as i32),
                        i % 4 != 0,
                        i % 3 == 0,
                        t,
                        t,
                        s
                    ],
                )
                .unwrap();
            }
        }
    }

    #[tokio::test]
    async fn rolled_reads_equal_raw_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.duckdb"), &StoreOptions::small()).unwrap();
        store
            .maintain(|conn| {
                write(conn, T0, 84, 0);
                assert_eq!(AI.read(conn, T0, T0 + 3 * DAY_US, true)?, None, "not begun");
                assert!(AI.fold(conn)? > 0);
                assert_eq!(AI.done(conn)?, Some(84 * 30));
                let ranges = [
                    (T0, T0 + 3 * DAY_US),
                    (T0 + 5 * HOUR + 7, T0 + 2 * DAY_US + 3 * HOUR),
                    (T0 + 30 * HOUR, T0 + 84 * HOUR + 1),
                    (T0 - DAY_US, T0 + 10 * DAY_US),
                ];
                let check = |conn: &Connection| -> Result<(), StoreError> {
                    for (a, b) in ranges {
                        let rolled = AI.read(conn, a, b, true)?.expect("whole days");
                        assert_eq!(Some(rolled), AI.read(conn, a, b, false)?, "{a}..{b}");
                    }
                    // Inside one day the rows are the read.
                    assert_eq!(AI.read(conn, T0 + 2 * HOUR, T0 + 20 * HOUR, true)?, None);
                    Ok(())
                };
                check(conn)?;
                // Late calls for the first day, a day already folded: read before and after
                // the fold, and folded into the same buckets (one row per key).
                write(conn, T0 + 3 * HOUR + 50_000_000, 2, 84 * 30);
                check(conn)?;
                AI.fold(conn)?;
                check(conn)?;
                let all = AI.read(conn, T0, T0 + 4 * DAY_US, true)?.unwrap();
                assert_eq!(all.calls, 86 * 30);
                // Every fourth call failed and every third hit the cache: 8 and 10 an hour.
                assert_eq!((all.failed, all.hits), (86 * 8, 86 * 10));
                assert_eq!(
                    crate::store::repeated_keys(conn, "timing_rollup", "stream, day, bucket")?,
                    0
                );
                Ok(())
            })
            .await
            .unwrap();
    }
}
