//! The data's life over HTTP and the CLI: export read back by other readers, an online
//! backup taken under writes and restored, retention, sessions across a restart, a full
//! disk, and import of our own export.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::helpers::{
    bin, client, error_of, python_with, row_where, store_options, succeeded, Server, TOKEN,
};

/// `GROWTH_TEST_PYTHON` (or the venv `.ci/run` makes) when it has pyarrow.
fn python() -> Option<PathBuf> {
    let found = python_with("pyarrow");
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the export test needs Python with pyarrow (see .ci/run)"
        );
        eprintln!("SKIPPED the pyarrow part: no Python with pyarrow; run `bash .ci/run` or set GROWTH_TEST_PYTHON");
    }
    found
}

/// Rows and column names of a file, as pyarrow (Parquet) or Python's csv/json modules read it.
fn read_back(python: &Path, format: &str, file: &Path) -> (usize, Vec<String>) {
    let script = r#"
import sys, csv, json
fmt, path = sys.argv[1], sys.argv[2]
if fmt == "parquet":
    import pyarrow.parquet as pq
    t = pq.read_table(path)
    n, cols = t.num_rows, t.column_names
elif fmt == "csv":
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        rows = list(r)
        n, cols = len(rows), r.fieldnames
else:
    rows = [json.loads(l) for l in open(path) if l.strip()]
    n, cols = len(rows), list(rows[0].keys()) if rows else []
print(n)
print(",".join(cols))
"#;
    let out = Command::new(python)
        .args(["-c", script, format])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "reading {format} back failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    let n = lines.next().unwrap().trim().parse().unwrap();
    let cols = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    (n, cols)
}

fn post_events(s: &Server, names: &[String]) -> u16 {
    let body: Vec<Value> = names
        .iter()
        .map(|n| json!({"event": n, "sessionId": "s1", "properties": {"plan": "pro", "n": n}}))
        .collect();
    s.post("/api/analytics/events", &Value::Array(body).to_string())
        .status()
        .as_u16()
}

/// Event names of a JSON Lines export, parsed here (serde_json, not DuckDB).
fn jsonl_events(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"].as_str().unwrap().to_string()
        })
        .collect()
}

fn exported(s: &Server, query: &str) -> crate::helpers::Response {
    let r = s.get(&format!("/api/export?{query}"));
    assert_eq!(r.status(), 200, "export {query}: {:?}", r.text());
    r
}

#[test]
fn export_of_1000_events_reads_back_as_1000_rows_in_every_format() {
    let s = Server::start();
    for chunk in 0..10 {
        let names: Vec<String> = (0..100).map(|i| format!("e{}", chunk * 100 + i)).collect();
        assert_eq!(post_events(&s, &names), 200);
    }
    let dir = tempfile::tempdir().unwrap();
    let py = python();
    for (format, ctype) in [
        ("parquet", "application/vnd.apache.parquet"),
        ("csv", "text/csv; charset=utf-8"),
        ("jsonl", "application/x-ndjson"),
    ] {
        let r = exported(&s, &format!("stream=events&format={format}&range=30d"));
        assert_eq!(r.headers()["content-type"], ctype);
        let disposition = r.headers()["content-disposition"].to_str().unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"growth-stack-events-")
                && disposition.ends_with(&format!(".{format}\"")),
            "{disposition}"
        );
        assert_eq!(r.headers()["x-export-rows"], "1000");
        let file = dir.path().join(format!("events.{format}"));
        std::fs::write(&file, r.bytes()).unwrap();
        if format == "jsonl" {
            let mut names = jsonl_events(r.bytes());
            names.sort();
            names.dedup();
            assert_eq!(names.len(), 1000);
        }
        if let Some(py) = &py {
            let (rows, cols) = read_back(py, format, &file);
            assert_eq!(rows, 1000, "{format}");
            // The guide's column names.
            for c in [
                "id",
                "user_id",
                "session_id",
                "event",
                "properties",
                "created_at",
            ] {
                assert!(cols.iter().any(|x| x == c), "{format} lacks {c}: {cols:?}");
            }
            assert!(!cols.iter().any(|x| x == "seq"), "internal numbering leaks");
        }
    }
    // A client that accepts compression gets the whole file too.
    let r = client()
        .get(format!("{}/api/export?stream=events&format=csv", s.url))
        .bearer_auth(TOKEN)
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-export-rows"], "1000");
    // A window without rows, and bad parameters.
    let r = exported(&s, "stream=events&format=csv&to=2000-01-01");
    assert_eq!(r.headers()["x-export-rows"], "0");
    let e = error_of(s.get("/api/export?stream=nope"), 400);
    assert!(e["message"].as_str().unwrap().contains("stream"), "{e}");
    error_of(s.get("/api/export?stream=events&format=xml"), 400);
    error_of(s.get("/api/export?format=csv"), 400);
    let anon = client()
        .get(format!("{}/api/export?stream=events", s.url))
        .send()
        .unwrap();
    error_of(anon, 401);
}

#[test]
fn backup_under_writes_restores_everything_acknowledged_before_it() {
    let s = Arc::new(Server::start());
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (s, acked, stop, sent) = (s.clone(), acked.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let names: Vec<String> = (0..20).map(|k| format!("w{i}-{k}")).collect();
                i += 1;
                if post_events(&s, &names) == 200 {
                    acked.lock().unwrap().extend(names);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while sent.load(Ordering::Relaxed) < 20 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before: Vec<String> = acked.lock().unwrap().clone();
    let r = client()
        .post(format!("{}/api/admin/backup", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let info: Value = r.json().unwrap();
    let path = PathBuf::from(info["path"].as_str().unwrap());
    assert!(path.join("manifest.json").is_file());
    assert!(!path.to_string_lossy().ends_with(".partial"));
    // Writes go on after it.
    let at_backup = sent.load(Ordering::Relaxed);
    while sent.load(Ordering::Relaxed) < at_backup + 10 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(path.join("manifest.json")).unwrap())
            .unwrap();
    let in_backup = manifest["tables"]["user_events"].as_u64().unwrap();
    assert!(in_backup as usize >= before.len());
    let listed = s.get_json("/api/admin/backups");
    assert_eq!(listed[0]["path"], info["path"]);

    // Restore into a new folder; refused over a non-empty one without --force.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    let restore = |force: bool| {
        let mut cmd = bin();
        cmd.arg("restore").arg(&path).arg("--data-dir").arg(&data);
        if force {
            cmd.arg("--force");
        }
        cmd.output().unwrap()
    };
    let out = succeeded(restore(false));
    assert!(String::from_utf8_lossy(&out.stdout).contains("user_events"));
    let out = restore(false);
    assert!(!out.status.success(), "a non-empty data dir is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    succeeded(restore(true));

    let restored = Server::start_in(target.path(), &[], &[]);
    let r = exported(&restored, "stream=events&format=jsonl");
    let names: std::collections::HashSet<String> = jsonl_events(r.bytes()).into_iter().collect();
    assert_eq!(names.len() as u64, in_backup, "counts match the manifest");
    for n in &before {
        assert!(names.contains(n), "{n} was acknowledged before the backup");
    }
    let all: std::collections::HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    assert!(names.is_subset(&all), "nothing that was never acknowledged");
}

#[test]
fn retention_of_two_days_removes_five_day_old_events_and_keeps_today() {
    use growth_stack::store::{Batch, EventRow, Store};
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let day = 86_400_000_000i64;
    {
        let opts = store_options(10_000);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = Store::open(&dir.path().join("data/growth.duckdb"), &opts).unwrap();
            let rows = |age: i64, tag: &str| {
                (0..50)
                    .map(|i| EventRow {
                        id: uuid::Uuid::new_v4(),
                        event: format!("{tag}{i}"),
                        user_id: Some(format!("u{i}")),
                        visitor_id: Some(format!("u{i}")),
                        timestamp: (now - age) / 1000,
                        created_at: now - age,
                        ..Default::default()
                    })
                    .collect::<Vec<_>>()
            };
            store
                .append(Batch::Events(rows(5 * day, "old")))
                .await
                .unwrap();
            store
                .append(Batch::Events(rows(3_600_000_000, "today")))
                .await
                .unwrap();
            store.close().await.unwrap();
        });
    }
    let s = Server::start_in(dir.path(), &[], &[("GROWTH_RETENTION_EVENTS_DAYS", "2")]);
    // Applied at start-up in the background: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let events = loop {
        let storage = s.get_json("/api/admin/storage");
        let events = row_where(&storage["streams"], "stream", "events").clone();
        if events["rows"] == 50 || std::time::Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(events["rows"], 50, "{events}");
    assert_eq!(events["retention_days"], 2);
    let r = exported(&s, "stream=events&format=jsonl");
    let names = jsonl_events(r.bytes());
    assert!(names.iter().all(|n| n.starts_with("today")), "{names:?}");
    // The profiles still count the pruned events: they were folded first.
    let u = s.get_json("/api/analytics/users/u1");
    assert_eq!(u["profile"]["total_events"], 2, "{u}");
    // Pruning again finds nothing more.
    let r = client()
        .post(format!("{}/api/admin/prune", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let pruned: Value = r.json().unwrap();
    assert_eq!(pruned["streams"]["events"], 0, "{pruned}");
}

fn cookie_of(r: &crate::helpers::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

#[test]
fn a_dashboard_session_survives_a_restart_and_logs_out_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[], &[]);
    let login = |s: &Server| {
        let r = client()
            .post(format!("{}/api/session", s.url))
            .json(&json!({"token": TOKEN}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        cookie_of(&r)
    };
    let with_cookie = |s: &Server, cookie: &str| {
        client()
            .get(format!("{}/api/session", s.url))
            .header("cookie", cookie)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let a = login(&s);
    let b = login(&s);
    assert_eq!(with_cookie(&s, &a), 200);
    assert!(s.terminate().success());
    let s = Server::start_in(dir.path(), &[], &[]);
    assert_eq!(
        with_cookie(&s, &a),
        200,
        "the cookie still works after a restart"
    );
    assert_eq!(with_cookie(&s, "gs_session=0123"), 401);
    // The stored form is a hash: the cookie's id is nowhere in the file.
    assert!(s.terminate().success());
    let db = std::fs::read(dir.path().join("data/growth.duckdb")).unwrap();
    let id = a.trim_start_matches("gs_session=");
    assert!(!db.windows(id.len()).any(|w| w == id.as_bytes()));
    let s = Server::start_in(dir.path(), &[], &[]);
    let r = client()
        .delete(format!("{}/api/sessions", s.url))
        .header("cookie", &b)
        .header("x-requested-with", "growth-stack")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let ended: Value = r.json().unwrap();
    assert_eq!(ended["ended"], 2);
    assert_eq!(with_cookie(&s, &a), 401);
    assert_eq!(with_cookie(&s, &b), 401);
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

fn free_bytes(path: &Path) -> u64 {
    growth_stack::store::free_bytes(path).unwrap()
}

#[test]
fn a_full_disk_answers_503_keeps_reads_and_resumes_when_space_returns() {
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("mnt");
    let Some(fs) = Tmpfs::mount(&mnt, "64m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the full-disk test mounts a tmpfs (needs root)"
        );
        eprintln!("SKIPPED the full-disk test: cannot mount a tmpfs here (needs root)");
        return;
    };
    let s = Server::start_in(
        &fs.0,
        &[],
        &[
            ("GROWTH_STORAGE_MIN_FREE_SPACE", "16MB"),
            ("GROWTH_ALERTS_INTERVAL", "1"),
        ],
    );
    let mut acked = 0;
    assert_eq!(post_events(&s, &["before".into()]), 200);
    acked += 1;
    // Fill the disk to 8 MB free: under the reserve.
    let free = free_bytes(&fs.0);
    let filler = fs.0.join("filler");
    std::fs::write(&filler, vec![0u8; (free - 8 * 1024 * 1024) as usize]).unwrap();
    // The server re-reads the free space at most every 250 ms: it is shown once it has.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.get_json("/api/admin/storage")["disk_full"] != true {
        assert!(
            std::time::Instant::now() < deadline,
            "the full disk was not noticed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = s.post(
        "/api/analytics/events",
        &json!({"event": "refused"}).to_string(),
    );
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let e = error_of(r, 503);
    assert_eq!(e["code"], "disk_full");
    // Reads keep working while it lasts.
    assert_eq!(s.get("/api/analytics/events?range=1h").status(), 200);
    assert_eq!(s.get_json("/api/admin/storage")["disk_full"], true);
    // The built-in rule tells whoever runs the server.
    wait_for_disk_alert(&s, "firing");
    // Space comes back: ingest resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if post_events(&s, &["after".into()]) == 200 {
            acked += 1;
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingest did not resume"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    wait_for_disk_alert(&s, "resolved");
    let names = jsonl_events(exported(&s, "stream=events&format=jsonl").bytes());
    assert_eq!(names.len(), acked);
    assert!(!names.contains(&"refused".to_string()));
    assert!(s.terminate().success());
    drop(fs);
}

/// Waits (alert rounds run every second here) for the `DiskFull` rule to reach `state`.
fn wait_for_disk_alert(s: &Server, state: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let all = s.get_json("/api/alerts");
        let now = all["rules"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == "storage_disk_full"))
            .and_then(|r| r["series"].as_array()?.first()?["state"].as_str())
            .map(str::to_string);
        if now.as_deref() == Some(state) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the disk-full alert did not become {state}: {now:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn cli_export_and_import_round_trip() {
    let src = tempfile::tempdir().unwrap();
    let s = Server::start_in(src.path(), &[], &[]);
    let names: Vec<String> = (0..300).map(|i| format!("r{i}")).collect();
    assert_eq!(post_events(&s, &names), 200);
    assert!(s.terminate().success());
    let py = python();
    for format in ["parquet", "csv", "jsonl"] {
        let file = src.path().join(format!("events.{format}"));
        succeeded(
            bin()
                .args(["export", "--stream", "events", "--out"])
                .arg(&file)
                .arg("--data-dir")
                .arg(src.path().join("data"))
                .output()
                .unwrap(),
        );
        if let Some(py) = &py {
            assert_eq!(read_back(py, format, &file).0, 300, "{format}");
        }
        // Into a new data dir, twice: the second import adds nothing.
        let dst = tempfile::tempdir().unwrap();
        for expected in ["imported 300", "imported 0"] {
            let out = bin()
                .args(["import", "--stream", "events"])
                .arg(&file)
                .arg("--data-dir")
                .arg(dst.path().join("data"))
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains(expected),
                "{format}: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let d = Server::start_in(dst.path(), &[], &[]);
        let mut got = jsonl_events(exported(&d, "stream=events&format=jsonl").bytes());
        got.sort();
        let mut want = names.clone();
        want.sort();
        assert_eq!(got, want, "{format}");
    }
}

/// AI calls imported into a data dir whose roll-ups have begun are numbered after every
/// stored row, so the overview's long windows (read from the roll-up) count them.
#[test]
fn imported_ai_calls_reach_the_overview_of_a_week() {
    let three_days_ago = chrono::Utc::now().timestamp_millis() - 3 * 86_400_000;
    let src = tempfile::tempdir().unwrap();
    let s = Server::start_in(src.path(), &[], &[]);
    let calls: Vec<Value> = (0..40)
        .map(|i| {
            json!({ "model": "m", "duration": 100 + i, "tokens": 10,
                    "timestamp": three_days_ago + i * 60_000 })
        })
        .collect();
    let r = s.post_json("/api/analytics/ai-performance", &Value::Array(calls));
    assert_eq!(r.status(), 200, "{:?}", r.text());
    assert!(s.terminate().success());
    let file = src.path().join("ai.jsonl");
    succeeded(
        bin()
            .args(["export", "--stream", "ai", "--out"])
            .arg(&file)
            .arg("--data-dir")
            .arg(src.path().join("data"))
            .output()
            .unwrap(),
    );
    // The destination has run once: its roll-ups have begun (at nothing).
    let dst = tempfile::tempdir().unwrap();
    let d = Server::start_in(dst.path(), &[], &[]);
    assert_eq!(d.get_json("/api/overview?range=7d")["ai"]["calls"], 0);
    assert!(d.terminate().success());
    succeeded(
        bin()
            .args(["import", "--stream", "ai"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dst.path().join("data"))
            .output()
            .unwrap(),
    );
    let d = Server::start_in(dst.path(), &[], &[]);
    let overview = d.get_json("/api/overview?range=7d");
    assert_eq!(overview["ai"]["calls"], 40, "{overview}");
    assert_eq!(overview["ai"]["tokens"], 400);
    let p75 = overview["ai"]["p75_duration"].as_f64().unwrap();
    assert!((p75 - 129.0).abs() / 129.0 <= 0.03, "p75 {p75}");
    let estimated = overview["estimated"].as_array().unwrap();
    assert!(estimated.contains(&json!("ai.p75_duration")), "{overview}");
}
