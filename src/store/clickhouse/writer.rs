//! The group commit on ClickHouse: drain the queued batches, send one INSERT per table,
//! answer each request only after ClickHouse confirmed its rows. A synchronous
//! distributed insert (`insert_distributed_sync=1`) means "confirmed" covers every shard,
//! not just the node's spool directory. On failure nothing is acknowledged: the caller
//! answers 503 with Retry-After and the client resends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::rows;
use super::ClickHouse;
use crate::store::writer::{Job, WriterStats};
use crate::store::StoreError;

pub(super) const INSERT_SETTINGS: &[(&str, &str)] = &[("insert_distributed_sync", "1")];

pub fn spawn(
    ch: Arc<ClickHouse>,
    rx: mpsc::UnboundedReceiver<Job>,
    max_commit_rows: usize,
    stats: Arc<WriterStats>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(ch, rx, max_commit_rows, stats))
}

async fn run(
    ch: Arc<ClickHouse>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_commit_rows: usize,
    stats: Arc<WriterStats>,
) {
    // As on DuckDB: whatever arrived during the previous INSERT goes into the next one.
    while let Some(first) = rx.recv().await {
        let mut n = first.batch.len();
        let mut jobs = vec![first];
        while n < max_commit_rows {
            match rx.try_recv() {
                Ok(job) => {
                    n += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut by_table: Vec<(&'static str, Vec<Job>)> = Vec::new();
        for job in jobs {
            let table = rows::table_of(&job.batch).unwrap_or("");
            match by_table.iter_mut().find(|(t, _)| *t == table) {
                Some((_, group)) => group.push(job),
                None => by_table.push((table, vec![job])),
            }
        }
        for (table, group) in by_table {
            commit(&ch, table, group, &stats).await;
        }
    }
}

async fn insert(ch: &ClickHouse, table: &str, jobs: &[Job]) -> Result<u64, StoreError> {
    let mut body = Vec::new();
    let mut n = 0u64;
    for job in jobs {
        rows::encode(&job.batch, &mut body)
            .map_err(|e| StoreError::Internal(format!("cannot encode rows: {e}")))?;
        n += job.batch.len() as u64;
    }
    ch.client
        .insert(
            &ch.table(table),
            &rows::format(table),
            Bytes::from(body),
            INSERT_SETTINGS,
        )
        .await
        .map_err(StoreError::ClickHouse)?;
    Ok(n)
}

async fn commit(ch: &ClickHouse, table: &str, jobs: Vec<Job>, stats: &WriterStats) {
    match insert(ch, table, &jobs).await {
        Ok(n) => {
            crate::telemetry::COMMITS.observe(&crate::telemetry::COMMIT_BUCKETS, n as f64);
            stats.rows.fetch_add(n, Ordering::Relaxed);
            stats.commits.fetch_add(1, Ordering::Relaxed);
            for job in jobs {
                let _ = job.done.send(Ok(()));
            }
        }
        Err(e) if jobs.len() > 1 && !unavailable(&e) => {
            // ClickHouse refused the group's rows: one request's rows must not fail its
            // neighbours, so each goes alone.
            tracing::warn!(error = %e, jobs = jobs.len(), "ClickHouse group insert failed; inserting requests one by one");
            for job in jobs {
                let one = std::slice::from_ref(&job);
                let result = insert(ch, table, one).await.map(|n| {
                    stats.rows.fetch_add(n, Ordering::Relaxed);
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                });
                let _ = job.done.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "ClickHouse insert failed; answering 503");
            let message = e.to_string();
            let unavailable = unavailable(&e);
            let mut first = Some(e);
            for job in jobs {
                let err = first.take().unwrap_or_else(|| {
                    if unavailable {
                        StoreError::ClickHouse(super::ChError::Unreachable(message.clone()))
                    } else {
                        StoreError::Internal(message.clone())
                    }
                });
                let _ = job.done.send(Err(err));
            }
        }
    }
}

fn unavailable(e: &StoreError) -> bool {
    matches!(e, StoreError::ClickHouse(c) if c.is_unavailable())
}
