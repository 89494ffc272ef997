//! Start-up as a person meets it: help, config errors, first-start token, demo data.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::{bin, client, demo_into, Server};

#[test]
fn help_documents_every_flag() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--config",
        "--admin-token",
        "--no-auth",
        "--ingest-key",
        "--cors-origin",
        "--ip",
        "--log-format",
        "--rate-limit",
        "demo",
        "bench",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn invalid_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("growth-stack.toml"),
        "[database]\nslow_query_threshold = \"slow\"\n",
    )
    .unwrap();
    let out = bin().current_dir(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("database.slow_query_threshold"), "{err}");

    let out = bin()
        .current_dir(dir.path())
        .env("GROWTH_STORAGE_THREADS", "lots")
        .arg("--config")
        .arg("/dev/null")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GROWTH_STORAGE_THREADS"));
}

#[test]
fn no_auth_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["--no-auth", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.no_auth"));
}

#[test]
fn first_start_generates_a_private_token_and_prints_it_once() {
    let temp = tempfile::tempdir().unwrap();
    let s = Server::start_in(temp.path(), &[], &[("GROWTH_ADMIN_TOKEN", "")]);
    let token_file = temp.path().join("data/admin_token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let printed = s.stdout_once("AI gateway key");
    assert!(printed.contains(token.trim()), "{printed}");
    assert!(
        printed.contains(&temp.path().join("data").display().to_string()),
        "says where data lives"
    );
    let read = |t: &str| {
        client()
            .get(format!("{}/api/analytics/events", s.url))
            .bearer_auth(t)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(read(token.trim()), 200);
    assert!(s.terminate().success());

    let s = Server::start_in(temp.path(), &[], &[("GROWTH_ADMIN_TOKEN", "")]);
    let printed = s.stdout_once("AI gateway key");
    assert!(
        !printed.contains(token.trim()),
        "printed only on first start"
    );
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap(),
        token,
        "kept across restarts"
    );
}

#[test]
fn demo_fills_every_stream() {
    let temp = tempfile::tempdir().unwrap();
    demo_into(temp.path(), 3000, 7);
    let s = Server::start_in(temp.path(), &[], &[]);
    let events = s.get_json("/api/analytics/events?range=7d");
    assert_eq!(events["totals"]["events"], 3000);
    assert!(events["totals"]["conversions"].as_u64().unwrap() > 0);
    for (path, total) in [
        ("/api/analytics/performance?range=7d", "samples"),
        ("/api/analytics/ai-performance?range=7d", "calls"),
        ("/api/analytics/database-performance?range=7d", "queries"),
    ] {
        assert!(
            s.get_json(path)["totals"][total].as_u64().unwrap() > 0,
            "{path}"
        );
    }
    assert!(
        s.get_json("/api/analytics/events?range=1h")["totals"]["events"]
            .as_u64()
            .unwrap()
            < 3000
    );
}
