//! Storage behind one narrow interface: `append` a batch (durable on return), `query` with a
//! read connection. DuckDB, its migrations and the group-commit writer live here, and the
//! ClickHouse engine (`clickhouse`) that takes events, conversions and web vitals when
//! configured.

pub mod buckets;
pub mod clickhouse;
mod disk;
mod ingest_log;
mod json;
mod migrate;
pub mod profiles;
mod rows;
mod streams;
pub mod timings;
mod wire;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use duckdb::Connection;
use tokio::sync::{mpsc, oneshot, Semaphore};

pub use disk::free_bytes;
pub use ingest_log::dir_of as ingest_log_dir;
pub use json::{
    count_between, newest_rows, query_json, rolled_days, series, ts_param, JsonRow, Span,
};
pub use migrate::latest as latest_schema;
pub use rows::{
    label, AiRow, Batch, ConversionRow, DatabaseRow, ErrorRow, EventRow, PerformanceRow,
    RecommendationRow, Row, SystemRow,
};
pub use streams::Stream;
pub use writer::WriterStats;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(duckdb::Error),
    /// Less than `storage.min_free_space` is left, or a write failed with ENOSPC.
    #[error("the disk holding the data dir is full")]
    DiskFull,
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "this database was written by a newer growth-stack (schema version {found}, this binary \
         knows up to {known}); upgrade growth-stack or point it at another data dir"
    )]
    TooNew { found: i64, known: i64 },
    #[error("migration {name} failed: {source}")]
    Migration {
        name: &'static str,
        source: duckdb::Error,
    },
    #[error("ingest queue is full")]
    QueueFull,
    #[error("store is closed")]
    Closed,
    #[error("{0}")]
    Internal(String),
    /// The ClickHouse engine failed: unreachable (503 to ingest) or a refused query.
    #[error("{0}")]
    ClickHouse(clickhouse::ChError),
}

impl From<duckdb::Error> for StoreError {
    fn from(e: duckdb::Error) -> Self {
        if disk::is_no_space(&e.to_string()) {
            StoreError::DiskFull
        } else {
            StoreError::Db(e)
        }
    }
}

/// How long a read waits for the newest acknowledged writes to reach DuckDB.
const READ_BARRIER: std::time::Duration = std::time::Duration::from_secs(5);

/// How the store is opened; mirrors `[storage]` in the config.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub memory_limit: String,
    pub threads: u32,
    pub queue_rows: usize,
    pub max_commit_rows: usize,
    pub read_connections: usize,
    pub wal_checkpoint: String,
}

#[cfg(test)]
impl StoreOptions {
    /// A small store for unit tests.
    pub fn small() -> StoreOptions {
        StoreOptions {
            memory_limit: "256MB".into(),
            threads: 1,
            queue_rows: 10,
            max_commit_rows: 1000,
            read_connections: 2,
            wal_checkpoint: "16MB".into(),
        }
    }
}

/// How many keys (`keys`, columns of `table`) stand in more than one row: a roll-up
/// that folds into its rows keeps none.
#[cfg(test)]
pub fn repeated_keys(conn: &Connection, table: &str, keys: &str) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        &format!(
            "SELECT count(*) FROM (SELECT {keys} FROM {table} GROUP BY ALL HAVING count(*) > 1)"
        ),
        [],
        |r| r.get(0),
    )?)
}

/// Runs `f` in one transaction on `conn`: committed when it succeeds, rolled back when it
/// fails. The connection must not be in a transaction already.
pub fn in_transaction<T, E: From<duckdb::Error>>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The first connection: every other one is cloned from it, and cloning after it is
    /// dropped is unsafe in DuckDB, so it lives as long as the store.
    origin: Mutex<Connection>,
    tx: Mutex<Option<mpsc::UnboundedSender<writer::Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    queue: Arc<Semaphore>,
    queue_rows: usize,
    readers: Mutex<Vec<Connection>>,
    read_slots: Semaphore,
    /// How many read slots there are, so `close` can wait for all of them.
    read_total: u32,
    stats: Arc<WriterStats>,
    progress: Arc<writer::Progress>,
    applied: Vec<i64>,
    /// The database file; its folder is where free space is checked.
    path: PathBuf,
    space: disk::Space,
    /// Set when `storage.engine = "clickhouse"`: events, conversions and web vitals go there.
    ch: std::sync::OnceLock<ChEngine>,
}

/// The ClickHouse side of a store: the connection and its own group-commit task.
struct ChEngine {
    ch: Arc<clickhouse::ClickHouse>,
    tx: Mutex<Option<mpsc::UnboundedSender<writer::Job>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Store {
    /// Opens (or creates) `growth.duckdb` in `data_dir`, migrates it and starts the writer.
    pub fn open(db_path: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        if let Some(dir) = db_path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let cfg = duckdb::Config::default()
            .max_memory(&opts.memory_limit)?
            .threads(i64::from(opts.threads))?
            .with("wal_autocheckpoint", &opts.wal_checkpoint)?;
        let origin =
            Connection::open_with_flags(db_path, cfg).map_err(|e| open_error(db_path, e))?;
        let applied = migrate::migrate(&origin)?;
        let writer_conn = origin.try_clone()?;
        let readers = (0..opts.read_connections)
            .map(|_| origin.try_clone())
            .collect::<duckdb::Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(WriterStats::default());
        let io_error = |source| StoreError::Io {
            path: ingest_log::dir_of(db_path),
            source,
        };
        let position: u64 =
            origin.query_row("SELECT max(position) FROM ingest_log_position", [], |r| {
                r.get(0)
            })?;
        let (log, replay) = ingest_log::IngestLog::open(db_path, position).map_err(io_error)?;
        let progress = Arc::new(writer::Progress::new(position));
        let mut rejected = ingest_log::dir_of(db_path).into_os_string();
        rejected.push(".rejected");
        let handle = writer::spawn(
            writer_conn,
            log,
            replay,
            rx,
            writer::WriterOptions {
                max_commit_rows: opts.max_commit_rows,
                stats: stats.clone(),
                progress: progress.clone(),
                rejected: rejected.into(),
            },
        )
        .map_err(io_error)?;
        Ok(Store {
            inner: Arc::new(Inner {
                origin: Mutex::new(origin),
                tx: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(handle)),
                queue: Arc::new(Semaphore::new(opts.queue_rows)),
                queue_rows: opts.queue_rows,
                readers: Mutex::new(readers),
                read_slots: Semaphore::new(opts.read_connections),
                read_total: u32::try_from(opts.read_connections).unwrap_or(u32::MAX),
                stats,
                progress,
                applied,
                path: db_path.to_path_buf(),
                space: disk::Space::default(),
                ch: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Hands events, conversions and web vitals to ClickHouse from now on (`storage.engine =
    /// "clickhouse"`); its writer groups at most `max_commit_rows` per INSERT.
    pub fn use_clickhouse(&self, ch: clickhouse::ClickHouse, max_commit_rows: usize) {
        let ch = Arc::new(ch);
        let (tx, rx) = mpsc::unbounded_channel();
        let task =
            clickhouse::writer::spawn(ch.clone(), rx, max_commit_rows, self.inner.stats.clone());
        let _ = self.inner.ch.set(ChEngine {
            ch,
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        });
    }

    /// The ClickHouse engine, when it holds events, conversions and web vitals: reads
    /// dispatch on this.
    pub fn clickhouse(&self) -> Option<&clickhouse::ClickHouse> {
        self.inner.ch.get().map(|e| &*e.ch)
    }

    /// Schema versions this open applied (empty when the file was already current).
    pub fn applied_migrations(&self) -> &[i64] {
        &self.inner.applied
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn dir(&self) -> &Path {
        self.inner.path.parent().unwrap_or(Path::new("."))
    }

    /// Refuse writes while less than `bytes` are free on the data dir's disk (0: never).
    pub fn set_min_free_space(&self, bytes: u64) {
        self.inner.space.set_reserve(bytes);
    }

    /// Whether writes are refused for lack of disk space right now.
    pub fn disk_full(&self) -> bool {
        !self.inner.space.check(self.dir())
    }

    /// Free and total bytes of the data dir's file system, when it can be read.
    pub fn disk_usage(&self) -> Option<(u64, u64)> {
        disk::usage(self.dir()).ok()
    }

    pub fn stats(&self) -> (u64, u64) {
        let s = &self.inner.stats;
        (
            s.rows.load(Ordering::Relaxed),
            s.commits.load(Ordering::Relaxed),
        )
    }

    /// Rows waiting for the writer.
    pub fn queued_rows(&self) -> usize {
        self.inner.queue_rows - self.inner.queue.available_permits()
    }

    /// Queues the batch and returns once it is committed. A full queue fails at once
    /// with `QueueFull` rather than buffering without bound.
    pub async fn append(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // The one engine dispatch of writes: ClickHouse takes the streams it stores.
        let ch = self.inner.ch.get().filter(|_| clickhouse::stores(&batch));
        if ch.is_none() && !self.inner.space.check(self.dir()) {
            return Err(StoreError::DiskFull);
        }
        let n = u32::try_from(batch.len()).map_err(|_| StoreError::QueueFull)?;
        let permit = self
            .inner
            .queue
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::Closed => StoreError::Closed,
                tokio::sync::TryAcquireError::NoPermits => StoreError::QueueFull,
            })?;
        let (done, answer) = oneshot::channel();
        let table = batch.table();
        {
            let tx = match ch {
                Some(engine) => engine.tx.lock(),
                None => self.inner.tx.lock(),
            };
            let tx = tx.as_ref().ok_or(StoreError::Closed)?;
            tx.send(writer::Job {
                batch,
                done,
                _permit: permit,
            })
            .map_err(|_| StoreError::Closed)?;
        }
        let result = answer.await.map_err(|_| StoreError::Closed)?;
        if let Err(StoreError::DiskFull) = result {
            self.inner.space.mark_full(self.dir());
        }
        result?;
        crate::telemetry::INGEST.add(table, u64::from(n));
        Ok(())
    }

    /// Runs `f` on a read connection off the async runtime. It sees every write
    /// acknowledged before it was called: it waits (at most `READ_BARRIER`) until DuckDB
    /// holds what the ingest log acknowledged, which takes one commit of the writer.
    pub async fn query<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.caught_up().await;
        let _slot = self
            .inner
            .read_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conn = match self.inner.readers.lock().pop() {
            Some(c) => c,
            None => self.inner.origin.lock().try_clone()?,
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            inner.readers.lock().push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("query task failed: {e}")))?
    }

    /// Waits until DuckDB holds every write acknowledged so far. A commit thread that
    /// cannot write (a full disk) must not hang the dashboard: after `READ_BARRIER` the
    /// read goes on without the newest writes.
    async fn caught_up(&self) {
        let progress = &self.inner.progress;
        if progress.stalled.load(Ordering::Acquire) {
            return;
        }
        let want = progress.logged.load(Ordering::Acquire);
        if *progress.committed.borrow() >= want {
            return;
        }
        // The commit thread stops gathering once it sees a read waiting.
        progress.wanted.fetch_max(want, Ordering::AcqRel);
        let mut committed = progress.committed.subscribe();
        let wait = committed.wait_for(|&c| c >= want);
        if tokio::time::timeout(READ_BARRIER, wait).await.is_err() {
            tracing::warn!(
                "the database is behind the ingest log; reading without the newest writes"
            );
        }
    }

    /// Runs `job` every `every` until the store closes: the background upkeep of derived
    /// tables (roll-ups, profile folds). A failed run is logged and tried again next tick.
    pub fn every<F, Fut>(&self, every: std::time::Duration, what: &'static str, job: F)
    where
        F: Fn(Store) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), StoreError>> + Send,
    {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match job(store.clone()).await {
                    Ok(()) => {}
                    Err(StoreError::Closed) => break,
                    Err(e) => tracing::warn!(error = %e, "{what} failed; retrying later"),
                }
            }
        });
    }

    /// Runs derived-data maintenance (roll-ups) on a pooled connection off the async
    /// runtime. Only for tables ingest never appends to, so it cannot conflict with the
    /// writer; the caller manages its own transaction.
    pub async fn maintain<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.query(f).await
    }

    /// Stops taking writes, commits everything queued, checkpoints and waits for the writer.
    pub async fn close(&self) -> Result<(), StoreError> {
        // Background upkeep (roll-ups, alert states, the outbox) writes through pooled
        // connections: wait for what runs, then refuse more, so that nothing lands in the
        // WAL after the writer's last checkpoint.
        let running = self
            .inner
            .read_slots
            .acquire_many(self.inner.read_total)
            .await;
        self.inner.read_slots.close();
        drop(running);
        self.inner.tx.lock().take();
        if let Some(engine) = self.inner.ch.get() {
            engine.tx.lock().take();
            let task = engine.task.lock().take();
            if let Some(task) = task {
                let _ = task.await;
            }
        }
        let handle = self.inner.writer.lock().take();
        if let Some(h) = handle {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| StoreError::Internal(e.to_string()))?
                .map_err(|_| StoreError::Internal("writer thread panicked".into()))?;
        }
        self.inner.queue.close();
        Ok(())
    }
}

fn open_error(path: &Path, e: duckdb::Error) -> StoreError {
    let msg = e.to_string();
    let message = if msg.contains("lock") {
        format!("{msg}\nIs another growth-stack (or a DuckDB shell) using this data dir? Stop it first.")
    } else {
        msg
    };
    StoreError::Open {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> StoreOptions {
        StoreOptions::small()
    }

    fn event(name: &str) -> EventRow {
        EventRow {
            id: uuid::Uuid::new_v4(),
            event: name.into(),
            timestamp: 1,
            created_at: 1_700_000_000_000_000,
            ..Default::default()
        }
    }

    async fn count(store: &Store) -> i64 {
        store
            .query(|c| Ok(c.query_row("SELECT count(*) FROM user_events", [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn append_commits_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.duckdb");
        let store = Store::open(&path, &opts()).unwrap();
        assert_eq!(
            store.applied_migrations(),
            migrate::MIGRATIONS
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        );
        store
            .append(Batch::Events(vec![event("a"), event("b")]))
            .await
            .unwrap();
        assert_eq!(count(&store).await, 2);
        store.close().await.unwrap();
        assert!(matches!(
            store.append(Batch::Events(vec![event("c")])).await,
            Err(StoreError::Closed)
        ));
        drop(store);
        let store = Store::open(&path, &opts()).unwrap();
        assert!(store.applied_migrations().is_empty());
        assert_eq!(count(&store).await, 2);
    }

    /// What a crash between the ingest log's sync and DuckDB's commit leaves: records in
    /// the log above DuckDB's position. The next open commits them, once.
    #[tokio::test]
    async fn logged_writes_duckdb_missed_are_replayed_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.duckdb");
        let store = Store::open(&path, &opts()).unwrap();
        store
            .append(Batch::Events(vec![event("committed")]))
            .await
            .unwrap();
        store.close().await.unwrap();
        drop(store);
        assert!(
            !ingest_log::dir_of(&path).exists(),
            "a clean stop leaves no log"
        );
        let (mut log, replay) = ingest_log::IngestLog::open(&path, 1).unwrap();
        assert!(replay.is_empty());
        log.append(&[
            &Batch::Events(vec![event("logged-1"), event("logged-2")]),
            &Batch::Events(vec![event("logged-3")]),
        ])
        .unwrap();
        drop(log);
        for _ in 0..2 {
            let store = Store::open(&path, &opts()).unwrap();
            let names: Vec<String> = store
                .query(|c| {
                    let mut st = c.prepare("SELECT event FROM user_events ORDER BY seq")?;
                    let rows = st.query_map([], |r| r.get(0))?;
                    Ok(rows.collect::<duckdb::Result<Vec<String>>>()?)
                })
                .await
                .unwrap();
            assert_eq!(names, ["committed", "logged-1", "logged-2", "logged-3"]);
            store.close().await.unwrap();
        }
    }

    #[tokio::test]
    async fn batch_larger_than_queue_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("g.duckdb"), &opts()).unwrap();
        let rows = (0..11).map(|i| event(&i.to_string())).collect();
        assert!(matches!(
            store.append(Batch::Events(rows)).await,
            Err(StoreError::QueueFull)
        ));
        assert_eq!(count(&store).await, 0);
    }
}
