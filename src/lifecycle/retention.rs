//! Retention: rows older than each stream's `retention.<stream>_days` are deleted in
//! bounded batches (each its own short transaction, so ingest keeps committing between
//! them), the web-vitals roll-up by its own `rollup_days`, then a checkpoint gives the
//! freed blocks back to the file.

use std::time::Duration;

use duckdb::params;
use duckdb::types::Value;
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::RetentionConfig;
use crate::store::{profiles, ts_param, Store, StoreError, Stream};

const DAY_US: i64 = 86_400_000_000;

/// A pause between batches, so the writer's commits interleave with the prune's.
const BETWEEN_BATCHES: Duration = Duration::from_millis(5);

/// Days of `stream` kept (0: all).
pub fn days(cfg: &RetentionConfig, stream: Stream) -> u32 {
    match stream {
        Stream::Events => cfg.events_days,
        Stream::Performance => cfg.performance_days,
        Stream::Ai => cfg.ai_days,
        Stream::Database => cfg.database_days,
        Stream::Conversions => cfg.conversions_days,
        Stream::Errors => cfg.errors_days,
        Stream::System => cfg.system_days,
        Stream::Recommendations => cfg.recommendations_days,
    }
}

/// What one prune deleted.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Pruned {
    /// Rows deleted per stream (streams with a retention only). For the streams ClickHouse
    /// holds, the rows a mutation was scheduled to delete: ClickHouse deletes them in the
    /// background, within seconds to minutes.
    pub streams: std::collections::BTreeMap<String, u64>,
    /// Days of the web-vitals roll-up deleted (rows).
    pub rollup_rows: u64,
    /// Expired dashboard sessions deleted.
    pub sessions: u64,
    pub took_ms: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.streams.values().sum::<u64>() + self.rollup_rows
    }
}

/// Deletes what is older than the retention in force, as of `now_us`.
pub async fn prune(
    store: &Store,
    cfg: &RetentionConfig,
    now_us: i64,
) -> Result<Pruned, StoreError> {
    prune_streams(store, cfg, now_us, true).await
}

/// `prune`; `shared` says whether to prune the streams ClickHouse holds as well (the
/// daily job does only on the node that won the day's lease; each node always prunes
/// what lives in its own file).
async fn prune_streams(
    store: &Store,
    cfg: &RetentionConfig,
    now_us: i64,
    shared: bool,
) -> Result<Pruned, StoreError> {
    let started = std::time::Instant::now();
    let mut out = Pruned::default();
    let batch = cfg.batch_rows.max(1);
    if days(cfg, Stream::Events) > 0 {
        // Events are deleted only once their users' profiles have counted them: fold now
        // so that old events are not kept a day longer. If the profile task folds at the
        // same moment, this one loses the race, which is fine.
        let folded = store.maintain(|c| Ok(profiles::fold(c)?)).await;
        if let Err(e) = folded {
            tracing::debug!(error = %e, "profile fold before prune skipped");
        }
    }
    for stream in Stream::ALL {
        let keep = days(cfg, stream);
        if keep == 0 {
            continue;
        }
        let cutoff = now_us - i64::from(keep) * DAY_US;
        let on_cluster = store
            .clickhouse()
            .zip(crate::store::clickhouse::table_of_stream(stream));
        if let Some((ch, table)) = on_cluster {
            if shared {
                let n = ch
                    .delete_before(table, cutoff)
                    .await
                    .map_err(StoreError::ClickHouse)?;
                out.streams.insert(stream.name().to_string(), n);
            }
            continue;
        }
        let sql = delete_sql(stream, batch);
        let mut deleted = 0u64;
        loop {
            let sql = sql.clone();
            let n = store
                .maintain(move |c| Ok(c.execute(&sql, params![ts_param(cutoff)])? as u64))
                .await?;
            deleted += n;
            if n < u64::from(batch) {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        out.streams.insert(stream.name().to_string(), deleted);
    }
    if let Some(ch) = store.clickhouse().filter(|_| shared) {
        // A claim matters for the period it names (a day at most): older ones only grow
        // the table every node reads when it claims.
        ch.delete_before("job_leases", now_us - 2 * DAY_US)
            .await
            .map_err(StoreError::ClickHouse)?;
    }
    if cfg.rollup_days > 0 {
        let cutoff = now_us - i64::from(cfg.rollup_days) * DAY_US;
        out.rollup_rows = store
            .maintain(move |c| {
                // The roll-ups age together: they keep old trends visible after the raw
                // rows are gone. Their days are day numbers, the vitals' are timestamps.
                let day = Value::BigInt(cutoff.div_euclid(DAY_US));
                let mut n = 0;
                for (table, cut) in [
                    ("active_days", day.clone()),
                    ("growth_rollup", day.clone()),
                    ("timing_rollup", day),
                    ("performance_rollup", ts_param(cutoff)),
                ] {
                    n += c.execute(&format!("DELETE FROM {table} WHERE day < ?"), [cut])? as u64;
                }
                Ok(n)
            })
            .await?;
    }
    out.sessions = store
        .maintain(move |c| {
            Ok(c.execute(
                "DELETE FROM dashboard_sessions WHERE expires_at <= ?",
                params![ts_param(now_us)],
            )? as u64)
        })
        .await?;
    if out.total() > 0 {
        // Deleted rows free their blocks only at a checkpoint. It fails while another
        // transaction writes; the automatic one then does it later.
        let checkpoint = store.maintain(|c| Ok(c.execute_batch("CHECKPOINT")?)).await;
        if let Err(e) = checkpoint {
            tracing::debug!(error = %e, "checkpoint after prune deferred");
        }
    }
    out.took_ms = started.elapsed().as_millis() as u64;
    Ok(out)
}

/// One batch: the oldest `batch` rows before the cutoff (the one parameter). Events not yet
/// folded into their users' profiles are kept until the fold has counted them.
fn delete_sql(stream: Stream, batch: u32) -> String {
    let (table, age) = (stream.table(), stream.age_column());
    let folded = match stream {
        Stream::Events => {
            " AND (seq IS NULL OR seq <= (SELECT coalesce(max(seq), 0) FROM user_profile_watermark))"
        }
        _ => "",
    };
    format!(
        "DELETE FROM {table} WHERE rowid IN \
         (SELECT rowid FROM {table} WHERE {age} < ?{folded} LIMIT {batch})"
    )
}

/// Runs at start-up, then daily.
pub fn spawn(store: &Store, cfg: RetentionConfig) {
    let cfg = std::sync::Arc::new(cfg);
    store.every(
        Duration::from_secs(86_400),
        "retention prune",
        move |store| {
            let cfg = cfg.clone();
            async move {
                let now = chrono::Utc::now().timestamp_micros();
                // On ClickHouse one node a day prunes the shared streams.
                let on_cluster = Stream::ALL.iter().any(|&s| {
                    days(&cfg, s) > 0 && crate::store::clickhouse::table_of_stream(s).is_some()
                });
                let shared = match store.clickhouse() {
                    Some(_) if !on_cluster => false,
                    Some(ch) => {
                        let day = now.div_euclid(DAY_US);
                        // ClickHouse unreachable: no claim, but this node's own streams
                        // are still pruned; a node that reaches it later today runs the rest.
                        crate::store::clickhouse::lease::claim(ch, &format!("retention:{day}"))
                            .await
                            .unwrap_or_else(|e| {
                                tracing::warn!(error = %e, "retention: cannot claim today's prune of the shared streams");
                                false
                            })
                    }
                    None => true,
                };
                let pruned = prune_streams(&store, &cfg, now, shared).await?;
                if pruned.total() > 0 {
                    tracing::info!(streams = ?pruned.streams, rollup_rows = pruned.rollup_rows,
                        took_ms = pruned.took_ms, "retention: deleted old rows");
                }
                Ok(())
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_has_a_key() {
        let cfg = RetentionConfig {
            events_days: 1,
            performance_days: 2,
            ai_days: 3,
            database_days: 4,
            conversions_days: 5,
            errors_days: 6,
            system_days: 7,
            recommendations_days: 8,
            ..RetentionConfig::default()
        };
        let mut seen: Vec<u32> = Stream::ALL.iter().map(|&s| days(&cfg, s)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=8).collect::<Vec<_>>());
        assert!(delete_sql(Stream::Events, 10).contains("user_profile_watermark"));
        assert!(delete_sql(Stream::Ai, 10).contains("LIMIT 10"));
    }
}
