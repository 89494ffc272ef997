//! Per-call metric rows, written off the request path: calls hand rows to a background
//! task that commits whatever has queued up as one batch through the store's writer.
//! Nothing is dropped: a full write queue is retried, and shutdown drains everything.

use parking_lot::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{AiRow, Batch, Store, StoreError};

const MAX_BATCH: usize = 20_000;
/// Pause between commits, so a steady trickle of calls costs DuckDB at most ten commits a
/// second instead of one per call. Each commit takes the writer thread about a
/// millisecond of CPU; at 10 ms (a hundred commits a second) that landed in the calls' own
/// p99 on a 2-core machine (miss p99 overhead +1.2 to +2.1 ms against +0.45 to +0.63 ms at
/// 100 ms, side by side in `bench-ai`). Rows still land well within a second.
const LINGER: Duration = Duration::from_millis(100);

pub struct Recorder {
    tx: mpsc::UnboundedSender<AiRow>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Recorder {
    pub fn start(store: Store, queue_rows: usize) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let max = MAX_BATCH.min(queue_rows / 2).max(1);
        let task = tokio::spawn(run(store, rx, stop_rx, max));
        Recorder {
            tx,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Costs one channel send; the row is committed shortly after.
    pub fn record(&self, row: AiRow) {
        crate::telemetry::AI.record(
            row.cache_hit,
            row.success,
            row.prompt_tokens,
            row.completion_tokens,
        );
        if self.tx.send(row).is_err() {
            tracing::error!("AI metric row after shutdown; not recorded");
        }
    }

    /// Commits every row recorded so far and stops the task.
    pub async fn close(&self) {
        let stop = self.stop.lock().take();
        if let Some(s) = stop {
            let _ = s.send(());
        }
        let task = self.task.lock().take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<AiRow>,
    mut stop: oneshot::Receiver<()>,
    max: usize,
) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, max) => {
                if n == 0 {
                    break;
                }
                write(&store, std::mem::take(&mut buf)).await;
                tokio::time::sleep(LINGER).await;
            }
            _ = &mut stop => {
                while let Ok(row) = rx.try_recv() {
                    buf.push(row);
                    if buf.len() >= max {
                        write(&store, std::mem::take(&mut buf)).await;
                    }
                }
                write(&store, std::mem::take(&mut buf)).await;
                break;
            }
        }
    }
}

async fn write(store: &Store, rows: Vec<AiRow>) {
    if rows.is_empty() {
        return;
    }
    let batch = Batch::Ai(rows);
    let mut failures = 0u32;
    loop {
        match store.append(batch.clone()).await {
            Ok(()) => return,
            // Ingest has filled the queue: wait for the writer rather than drop rows.
            Err(StoreError::QueueFull) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(StoreError::Closed) => {
                tracing::error!(
                    rows = batch.len(),
                    "store closed before AI metrics were written"
                );
                return;
            }
            Err(e) => {
                failures += 1;
                if failures >= 5 {
                    tracing::error!(error = %e, rows = batch.len(), "AI metric rows could not be written");
                    return;
                }
                tracing::warn!(error = %e, "AI metric write failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 << failures)).await;
            }
        }
    }
}
