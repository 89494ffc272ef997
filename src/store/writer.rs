//! The single writer thread: drains queued batches, commits them together, then answers each.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use duckdb::{Appender, Connection};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::profiles;
use super::rows::{
    AiRow, Batch, ConversionRow, DatabaseRow, ErrorRow, EventRow, PerformanceRow,
    RecommendationRow, Row, SystemRow,
};
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
    let mut appenders = Appenders::new(&conn);
    // Each flush is an `INSERT ... SELECT` of the appended rows, planned anew every
    // commit; on this connection there is nothing to optimise, and the optimiser's
    // passes were about a tenth of the writer's time at one commit per few beacons.
    if let Err(e) = conn.execute_batch("PRAGMA disable_optimizer") {
        tracing::warn!(error = %e, "cannot turn the optimiser off on the writer connection");
    }
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
        commit_jobs(&mut appenders, jobs, stats);
    }
    drop(appenders);
    // Every sender is gone and the queue is empty: fold the WAL into the file so the
    // next start has nothing to replay.
    if let Err(e) = conn.execute_batch("CHECKPOINT") {
        tracing::warn!(error = %e, "checkpoint at shutdown failed; the WAL will be replayed at next start");
    }
}

/// One long-lived appender per table. Each `flush` is one committed transaction, so a
/// group commit costs no SQL parsing and no appender set-up, only the append and the sync.
struct Appenders<'c> {
    conn: &'c Connection,
    open: HashMap<&'static str, Appender<'c>>,
    /// The next event's number: events are numbered in commit order, so profiles can
    /// fold in "every event above a watermark" (see `profiles`).
    seq: i64,
}

impl<'c> Appenders<'c> {
    fn new(conn: &'c Connection) -> Self {
        let seq = profiles::next_seq(conn).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the last event number; numbering from the clock");
            // Still above every stored number unless events were written in the future.
            chrono::Utc::now().timestamp_micros()
        });
        Appenders {
            conn,
            open: HashMap::new(),
            seq,
        }
    }

    /// Appends every batch of `R`'s table and commits them as one transaction. On error
    /// nothing of them is kept and the appender, now invalid, is dropped.
    fn write<R: Row>(&mut self, batches: &[&Batch]) -> duckdb::Result<()> {
        let mut slices = batches.iter().filter_map(|b| R::rows(b)).peekable();
        if slices.peek().is_none() {
            return Ok(());
        }
        let app = match self.open.entry(R::TABLE) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(self.conn.appender(R::TABLE)?),
        };
        let result = slices
            .try_for_each(|rows| {
                rows.iter().try_for_each(|row| {
                    self.seq += 1;
                    row.append_numbered(app, self.seq)
                })
            })
            .and_then(|()| app.flush());
        if result.is_err() {
            self.open.remove(R::TABLE);
        }
        result
    }

    /// Each batch holds one table's rows, so every request stays all-or-nothing.
    fn write_tables(&mut self, batches: &[&Batch]) -> duckdb::Result<()> {
        self.write::<PerformanceRow>(batches)?;
        self.write::<AiRow>(batches)?;
        self.write::<DatabaseRow>(batches)?;
        self.write::<EventRow>(batches)?;
        self.write::<ConversionRow>(batches)?;
        self.write::<ErrorRow>(batches)?;
        self.write::<SystemRow>(batches)?;
        self.write::<RecommendationRow>(batches)
    }

    /// Commits the batches. A user's profile needs no work here: it is derived from the
    /// numbered events themselves (see `profiles`), so it is current in this very commit.
    fn write_all(&mut self, batches: &[&Batch]) -> duckdb::Result<()> {
        self.write_tables(batches)
    }
}

fn commit_jobs(appenders: &mut Appenders<'_>, jobs: Vec<Job>, stats: &WriterStats) {
    // One commit per table, so a failure in one table never leaves another half-retried.
    let mut by_table: Vec<(&'static str, Vec<Job>)> = Vec::new();
    for job in jobs {
        let table = job.batch.table();
        match by_table.iter_mut().find(|(t, _)| *t == table) {
            Some((_, group)) => group.push(job),
            None => by_table.push((table, vec![job])),
        }
    }
    for (_, group) in by_table {
        commit_group(appenders, group, stats);
    }
}

fn commit_group(appenders: &mut Appenders<'_>, jobs: Vec<Job>, stats: &WriterStats) {
    let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
    match appenders.write_all(&batches) {
        Ok(()) => {
            let rows: u64 = batches.iter().map(|b| b.len() as u64).sum();
            crate::telemetry::COMMITS.observe(&crate::telemetry::COMMIT_BUCKETS, rows as f64);
            stats.rows.fetch_add(rows, Ordering::Relaxed);
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
                let result = appenders.write_all(&[&job.batch]);
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
