//! An acknowledged write survives kill -9; SIGTERM drains the queue and exits 0;
//! migrations run once and a newer schema is refused.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{bin, client, Server};

fn events_total(s: &Server) -> u64 {
    s.get_json("/api/analytics/events?range=1d")["totals"]["events"]
        .as_u64()
        .unwrap()
}

/// Writers that keep posting small batches of 1 to 5 events until `stop` is set or the
/// server is gone; `acked` counts the events acknowledged.
struct Hammer {
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    writers: Vec<std::thread::JoinHandle<()>>,
}

fn hammer(url: &str, threads: usize) -> Hammer {
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..threads {
        let (acked, stop, url) = (acked.clone(), stop.clone(), url.to_string());
        writers.push(std::thread::spawn(move || {
            let c = client();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let n = 1 + (i + t) % 5;
                let batch: Vec<_> = (0..n)
                    .map(|k| json!({ "event": format!("e{t}-{i}-{k}") }))
                    .collect();
                match c
                    .post(format!("{url}/api/analytics/events"))
                    .json(&json!(batch))
                    .send()
                {
                    Ok(r) if r.status() == 200 => {
                        acked.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    Ok(r) => assert!(r.status() == 503, "unexpected {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    Hammer {
        acked,
        stop,
        writers,
    }
}

impl Hammer {
    /// Stops the writers and returns how many events were acknowledged.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.writers {
            w.join().unwrap();
        }
        self.acked.load(Ordering::SeqCst)
    }
}

/// Acknowledged events a crash test needs before it proves anything.
const MEANINGFUL: u64 = 500;

/// Blocks until the writers have `n` acknowledged events. A generous deadline only keeps
/// a broken server from hanging the suite; how long it takes is not what is tested.
fn wait_for_acks(acked: &AtomicU64, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while acked.load(Ordering::SeqCst) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the server acknowledged only {} events",
            acked.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A server in `dir` under four writers that already have `MEANINGFUL` acknowledged events.
fn under_load(dir: &Path) -> (Server, Hammer) {
    let s = Server::start_in(dir, &["--rate-limit", "0"], &[]);
    let load = hammer(&s.url, 4);
    wait_for_acks(&load.acked, MEANINGFUL);
    (s, load)
}

/// After a restart in `dir`: every one of the `n` acknowledged events, and at most one
/// in-flight batch per writer more (committed, but its answer never left the process).
fn restart_keeps(dir: &Path, n: u64) {
    let s = Server::start_in(dir, &[], &[]);
    let stored = events_total(&s);
    assert!(
        stored >= n && stored <= n + 4 * 5,
        "acknowledged {n}, stored {stored}"
    );
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let (s, load) = under_load(&dir);
    let n = load.finish();
    assert!(
        n >= MEANINGFUL,
        "only {n} writes were acknowledged; the test proves little"
    );
    // No graceful path: anything only buffered in memory would be lost here.
    s.kill9();

    let s = Server::start_in(&dir, &[], &[]);
    assert_eq!(events_total(&s), n, "exactly the acknowledged events");
}

#[test]
fn kill_9_under_load_keeps_every_acknowledged_write() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    // Killed only once a meaningful number of writes was acknowledged, with more in flight.
    let (s, load) = under_load(&dir);
    s.kill9();
    let n = load.finish();
    assert!(n >= MEANINGFUL, "only {n} writes were acknowledged");
    restart_keeps(&dir, n);
}

#[test]
fn sigterm_commits_the_queue_and_exits_zero() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let (s, load) = under_load(&dir);
    let status = s.terminate();
    assert!(status.success(), "exit status {status}");
    let n = load.finish();
    assert!(n >= MEANINGFUL, "only {n} writes were acknowledged");
    // After a clean stop the WAL was checkpointed into the file.
    let wal = dir.join("data/growth.duckdb.wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "WAL left behind"
    );
    restart_keeps(&dir, n);
}

#[test]
fn migrations_run_once_and_newer_schemas_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_path_buf();
    let s = Server::start_in(&dir, &[], &[]);
    s.post("/api/analytics/events", r#"{"event":"kept"}"#);
    assert!(s.terminate().success());
    let s = Server::start_in(&dir, &[], &[]);
    assert_eq!(events_total(&s), 1);
    assert!(s.terminate().success());

    let db = dir.join("data/growth.duckdb");
    {
        let conn = duckdb::Connection::open(&db).unwrap();
        let (n, distinct, newest): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), count(DISTINCT version), max(version) FROM schema_migrations",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        // Versions are numbered per branch, so there may be gaps until all are merged.
        assert_eq!(newest, growth_stack::store::latest_schema());
        assert_eq!(n, distinct);
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future')",
            [],
        )
        .unwrap();
    }
    let out = bin()
        .current_dir(&dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            "some-admin-token-000000",
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("newer growth-stack") && err.contains("9999"),
        "{err}"
    );
}

#[test]
fn a_full_queue_answers_503_and_writes_nothing_of_that_request() {
    // Room for one 10-item batch at a time: concurrent senders must be turned away.
    let temp = tempfile::tempdir().unwrap();
    let env = [
        ("GROWTH_STORAGE_QUEUE_ROWS", "10"),
        ("GROWTH_INGEST_MAX_BATCH", "10"),
    ];
    let s = Server::start_in(temp.path(), &["--rate-limit", "0"], &env);
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (acked, refused, url) = (acked.clone(), refused.clone(), s.url.clone());
            std::thread::spawn(move || {
                let c = client();
                for i in 0..40 {
                    let batch: Vec<_> = (0..10)
                        .map(|k| json!({ "event": format!("q{t}-{i}-{k}") }))
                        .collect();
                    let r = c
                        .post(format!("{url}/api/analytics/events"))
                        .json(&json!(batch))
                        .send()
                        .unwrap();
                    if r.status() == 200 {
                        acked.fetch_add(10, Ordering::SeqCst);
                    } else {
                        assert_eq!(r.status(), 503);
                        assert_eq!(r.headers()["retry-after"], "1");
                        let body: serde_json::Value = r.json().unwrap();
                        assert_eq!(body["error"]["code"], "overloaded");
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(refused.load(Ordering::SeqCst) > 0, "the queue never filled");
    assert_eq!(events_total(&s), acked.load(Ordering::SeqCst));
}
