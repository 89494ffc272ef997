//! The single writer thread: drains queued batches, commits them together, then answers each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use duckdb::Connection;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::rows::{AiRow, Batch, ConversionRow, DatabaseRow, EventRow, PerformanceRow, Row};
use super::StoreError;

pub(super) struct Job {
    pub batch: Batch,
    pub done: oneshot::Sender<Result<(), StoreError>>,
    /// Held until the commit, so queued rows stay within `storage.queue_rows`.
    pub _permit: OwnedSemaphorePermit,
}

#[derive(Debug, Default)]
pub struct WriterStats {
    pub rows: AtomicU64,
    pub commits: AtomicU64,
}

pub(super) fn spawn(
    conn: Connection,
    rx: mpsc::UnboundedReceiver<Job>,
    max_commit_rows: usize,
    stats: Arc<WriterStats>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("gs-writer".into())
        .spawn(move || run(conn, rx, max_commit_rows, &stats))
}

fn run(
    conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_commit_rows: usize,
    stats: &WriterStats,
) {
    // Whatever arrived while the previous commit was syncing goes into the next one:
    // that is the group commit, and it needs no timer.
    while let Some(first) = rx.blocking_recv() {
        let mut rows = first.batch.len();
        let mut jobs = vec![first];
        while rows < max_commit_rows {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        commit_jobs(&conn, jobs, stats);
    }
    // Every sender is gone and the queue is empty: fold the WAL into the file so the
    // next start has nothing to replay.
    if let Err(e) = conn.execute_batch("CHECKPOINT") {
        tracing::warn!(error = %e, "checkpoint at shutdown failed; the WAL will be replayed at next start");
    }
}

fn commit_jobs(conn: &Connection, jobs: Vec<Job>, stats: &WriterStats) {
    let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
    match write(conn, &batches) {
        Ok(()) => {
            stats.rows.fetch_add(
                batches.iter().map(|b| b.len() as u64).sum(),
                Ordering::Relaxed,
            );
            stats.commits.fetch_add(1, Ordering::Relaxed);
            for job in jobs {
                let _ = job.done.send(Ok(()));
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.done.send(Err(e.into()));
            }
        }
        Err(e) => {
            // One request's rows must not fail its neighbours: retry each alone.
            tracing::warn!(error = %e, jobs = jobs.len(), "group commit failed; committing requests one by one");
            for job in jobs {
                let result = write(conn, &[&job.batch]);
                if result.is_ok() {
                    stats
                        .rows
                        .fetch_add(job.batch.len() as u64, Ordering::Relaxed);
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                }
                let _ = job.done.send(result.map_err(StoreError::from));
            }
        }
    }
}

/// Appends every batch in one transaction and commits; on any error nothing is kept.
pub(super) fn write(conn: &Connection, batches: &[&Batch]) -> duckdb::Result<()> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    let result = append_all(conn, batches).and_then(|()| conn.execute_batch("COMMIT"));
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn append_all(conn: &Connection, batches: &[&Batch]) -> duckdb::Result<()> {
    append_table::<PerformanceRow>(conn, batches)?;
    append_table::<AiRow>(conn, batches)?;
    append_table::<DatabaseRow>(conn, batches)?;
    append_table::<EventRow>(conn, batches)?;
    append_table::<ConversionRow>(conn, batches)
}

fn append_table<R: Row>(conn: &Connection, batches: &[&Batch]) -> duckdb::Result<()> {
    let mut slices = batches.iter().filter_map(|b| R::rows(b)).peekable();
    if slices.peek().is_none() {
        return Ok(());
    }
    let mut app = conn.appender(R::TABLE)?;
    for rows in slices {
        for row in rows {
            row.append(&mut app)?;
        }
    }
    // Dropping an appender flushes but swallows the error; flush explicitly.
    app.flush()
}
