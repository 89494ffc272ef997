//! The writer: a log thread that makes each group of queued batches durable in the ingest
//! log and answers it, and a commit thread that moves what was logged into DuckDB.

use std::collections::hash_map;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use duckdb::{Appender, Connection};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit};

use super::ingest_log::{IngestLog, Record};
use super::profiles;
use super::rows::{
    AiRow, Batch, ConversionRow, DatabaseRow, ErrorRow, EventRow, PerformanceRow,
    RecommendationRow, Row, SystemRow,
};
use super::wire::Wire;
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

/// What the writer has done, for the read barrier (`Store::query`): the last log position
/// acknowledged to a client, and the last one DuckDB holds.
#[derive(Debug)]
pub struct Progress {
    pub logged: AtomicU64,
    pub committed: watch::Sender<u64>,
    /// DuckDB refuses commits for now (a full disk): reads do not wait for them.
    pub stalled: AtomicBool,
    /// The highest position a waiting read needs: while DuckDB holds less, commits do
    /// not gather (see `COMMIT_LINGER`).
    pub wanted: AtomicU64,
    /// The log thread has stopped: a commit that cannot land is left to the next start.
    closing: AtomicBool,
}

impl Progress {
    pub fn new(committed: u64) -> Progress {
        Progress {
            logged: AtomicU64::new(committed),
            committed: watch::Sender::new(committed),
            stalled: AtomicBool::new(false),
            wanted: AtomicU64::new(committed),
            closing: AtomicBool::new(false),
        }
    }
}

/// How long a DuckDB commit waits for more logged batches after the first: a commit costs
/// about the same for 1 row or 1,000. A read that needs those batches cuts it short
/// (`Progress::wanted`), so only writers pay for it, and they were answered already.
const COMMIT_LINGER: Duration = Duration::from_millis(20);

/// How often a gathering commit looks whether a read is waiting for it.
const HURRY_CHECK: Duration = Duration::from_millis(1);

/// A logged batch on its way to DuckDB, still holding its place in the queue.
struct Entry {
    position: u64,
    batch: Batch,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Starts the writer: the log thread (answers once a group is in the ingest log) and the
/// commit thread it feeds (DuckDB). `replay` (the log's records DuckDB does not hold) is
/// committed before anything new. The returned thread ends after both have drained.
pub(super) fn spawn(
    conn: Connection,
    log: IngestLog,
    replay: Vec<Record>,
    rx: mpsc::UnboundedReceiver<Job>,
    opts: WriterOptions,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // One message per log group, not per batch: each send wakes the commit thread.
    let (to_commit, commits) = std::sync::mpsc::channel::<Vec<Entry>>();
    if let Some(last) = replay.last() {
        opts.progress.logged.store(last.position, Ordering::Release);
        tracing::info!(
            records = replay.len(),
            "replaying the ingest log into the database"
        );
    }
    for r in replay {
        let _ = to_commit.send(vec![Entry {
            position: r.position,
            batch: r.batch,
            _permit: None,
        }]);
    }
    let committer = {
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("gs-commit".into())
            .spawn(move || commit_loop(conn, commits, &opts))?
    };
    std::thread::Builder::new()
        .name("gs-writer".into())
        .spawn(move || {
            log_loop(log, rx, to_commit, &opts, committer);
        })
}

#[derive(Clone)]
pub(super) struct WriterOptions {
    pub max_commit_rows: usize,
    pub stats: Arc<WriterStats>,
    pub progress: Arc<Progress>,
    /// Where a batch DuckDB refuses for good is kept (it was acknowledged).
    pub rejected: PathBuf,
}

fn log_loop(
    mut log: IngestLog,
    mut rx: mpsc::UnboundedReceiver<Job>,
    to_commit: std::sync::mpsc::Sender<Vec<Entry>>,
    opts: &WriterOptions,
    committer: std::thread::JoinHandle<()>,
) {
    // Whatever arrived while the previous sync ran goes into the next one: that is the
    // group commit, and it needs no timer.
    while let Some(first) = rx.blocking_recv() {
        let mut rows = first.batch.len();
        let mut jobs = vec![first];
        while rows < opts.max_commit_rows {
            match rx.try_recv() {
                Ok(job) => {
                    rows += job.batch.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
        match log.append(&batches) {
            Ok(positions) => {
                if let Some(&last) = positions.last() {
                    opts.progress.logged.store(last, Ordering::Release);
                }
                let mut entries = Vec::with_capacity(jobs.len());
                for (job, position) in jobs.into_iter().zip(positions) {
                    let Job {
                        batch,
                        done,
                        _permit,
                    } = job;
                    entries.push(Entry {
                        position,
                        batch,
                        _permit: Some(_permit),
                    });
                    let _ = done.send(Ok(()));
                }
                let _ = to_commit.send(entries);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the ingest log; refusing this group");
                let no_space = e.kind() == std::io::ErrorKind::StorageFull;
                for job in jobs {
                    let _ = job.done.send(Err(if no_space {
                        StoreError::DiskFull
                    } else {
                        StoreError::Internal(format!("ingest log: {e}"))
                    }));
                }
            }
        }
        log.release(*opts.progress.committed.borrow(), false);
    }
    drop(to_commit);
    opts.progress.closing.store(true, Ordering::Release);
    if committer.join().is_err() {
        tracing::error!(
            "the commit thread panicked; the ingest log keeps its records for the next start"
        );
        return;
    }
    log.release(*opts.progress.committed.borrow(), true);
}

fn commit_loop(conn: Connection, rx: std::sync::mpsc::Receiver<Vec<Entry>>, opts: &WriterOptions) {
    let mut appenders = Appenders::new(&conn);
    // Each flush is an `INSERT ... SELECT` of the appended rows, planned anew every
    // commit; on this connection there is nothing to optimise, and the optimiser's
    // passes were about a tenth of the writer's time at one commit per few beacons.
    if let Err(e) = conn.execute_batch("PRAGMA disable_optimizer") {
        tracing::warn!(error = %e, "cannot turn the optimiser off on the writer connection");
    }
    let rows_of = |group: &[Entry]| group.iter().map(|e| e.batch.len()).sum::<usize>();
    while let Ok(mut entries) = rx.recv() {
        let mut rows = rows_of(&entries);
        // Nobody waits for this commit to be answered (the log answered), so it gathers
        // what arrives for a moment; a waiting read only gets what is queued already.
        let until = Instant::now() + COMMIT_LINGER;
        while rows < opts.max_commit_rows {
            let left = until.saturating_duration_since(Instant::now());
            let next = if left.is_zero() || read_waits(&opts.progress) {
                rx.try_recv().ok()
            } else {
                match rx.recv_timeout(left.min(HURRY_CHECK)) {
                    Ok(e) => Some(e),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
                }
            };
            let Some(group) = next else { break };
            rows += rows_of(&group);
            entries.extend(group);
        }
        if !commit_entries(&mut appenders, &entries, opts) {
            // Closing while DuckDB cannot write: the records stay in the log for the next
            // start, and nothing later may be committed before them.
            tracing::error!("stopping with writes DuckDB could not commit; the next start replays them from the ingest log");
            return;
        }
    }
    drop(appenders);
    // Every sender is gone and the queue is empty: fold the WAL into the file so the
    // next start has nothing to replay.
    if let Err(e) = conn.execute_batch("CHECKPOINT") {
        tracing::warn!(error = %e, "checkpoint at shutdown failed; the WAL will be replayed at next start");
    }
}

/// Whether a read waits for a position DuckDB does not hold yet.
fn read_waits(progress: &Progress) -> bool {
    progress.wanted.load(Ordering::Acquire) > *progress.committed.borrow()
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
            hash_map::Entry::Occupied(e) => e.into_mut(),
            hash_map::Entry::Vacant(e) => e.insert(self.conn.appender(R::TABLE)?),
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

    /// Commits the entries' rows and the last entry's log position as one transaction. A
    /// user's profile needs no work here: it is derived from the numbered events themselves
    /// (see `profiles`), so it is current in this very commit.
    fn commit(&mut self, entries: &[Entry]) -> duckdb::Result<()> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let batches: Vec<&Batch> = entries.iter().map(|e| &e.batch).collect();
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        let result = self
            .write_tables(&batches)
            .and_then(|()| self.set_position(last.position))
            .and_then(|()| self.conn.execute_batch("COMMIT"));
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            // An appender that failed inside the transaction is no longer usable.
            self.open.clear();
        }
        result
    }

    /// Records `position` as held (with the transaction's rows, or alone for a batch set
    /// aside as rejected).
    fn set_position(&self, position: u64) -> duckdb::Result<()> {
        self.conn
            .prepare_cached("UPDATE ingest_log_position SET position = ?")?
            .execute([position])
            .map(drop)
    }
}

/// Commits the entries and their last position in one transaction; a group DuckDB
/// refuses is retried one entry at a time, and an entry refused alone is set aside in the
/// rejected file (it was acknowledged, so it is kept, not dropped). A failure of the
/// machine (a full disk) is retried until it passes; `false` only when the store closes
/// meanwhile, and then the records stay in the log for the next start.
fn commit_entries(appenders: &mut Appenders<'_>, entries: &[Entry], opts: &WriterOptions) -> bool {
    let mut wait = Duration::from_millis(100);
    loop {
        let failed = match appenders.commit(entries) {
            Ok(()) => {
                committed(entries, opts);
                opts.progress.stalled.store(false, Ordering::Release);
                return true;
            }
            Err(e) => e,
        };
        if !is_environment(&failed) {
            if entries.len() > 1 {
                tracing::warn!(error = %failed, entries = entries.len(), "group commit failed; committing batches one by one");
                return entries
                    .iter()
                    .all(|e| commit_entries(appenders, std::slice::from_ref(e), opts));
            }
            reject(&entries[0], &failed, opts);
            if let Err(e) = appenders.set_position(entries[0].position) {
                tracing::warn!(error = %e, "cannot record the rejected batch's position; it may be replayed (and rejected) again at the next start");
            }
            opts.progress.committed.send_replace(entries[0].position);
            return true;
        }
        // Reads stop waiting for writes that cannot land now (see `Store::caught_up`).
        opts.progress.stalled.store(true, Ordering::Release);
        if opts.progress.closing.load(Ordering::Acquire) {
            return false;
        }
        tracing::error!(error = %failed, retry_in = ?wait, "the database cannot commit; the ingest log keeps the acknowledged writes");
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

fn committed(entries: &[Entry], opts: &WriterOptions) {
    let Some(last) = entries.last() else {
        return;
    };
    let rows: u64 = entries.iter().map(|e| e.batch.len() as u64).sum();
    crate::telemetry::COMMITS.observe(&crate::telemetry::COMMIT_BUCKETS, rows as f64);
    opts.stats.rows.fetch_add(rows, Ordering::Relaxed);
    opts.stats.commits.fetch_add(1, Ordering::Relaxed);
    opts.progress.committed.send_replace(last.position);
}

/// A failure of the machine (disk, memory), not of the rows: retrying may succeed.
fn is_environment(e: &duckdb::Error) -> bool {
    let text = e.to_string();
    super::disk::is_no_space(&text) || text.contains("Out of Memory") || text.contains("IO Error")
}

fn reject(entry: &Entry, e: &duckdb::Error, opts: &WriterOptions) {
    tracing::error!(error = %e, position = entry.position, rows = entry.batch.len(), file = %opts.rejected.display(),
        "the database refuses an acknowledged batch; keeping it in the rejected file");
    let mut bytes = Vec::new();
    entry.position.put(&mut bytes);
    entry.batch.put(&mut bytes);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&opts.rejected)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(&(bytes.len() as u64).to_le_bytes())?;
            f.write_all(&bytes)?;
            f.sync_data()
        });
    if let Err(io) = written {
        tracing::error!(error = %io, "cannot write the rejected file; the batch stays in the ingest log only");
    }
}
