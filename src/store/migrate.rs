//! Schema migrations: embedded numbered SQL files, applied in order, recorded in `schema_migrations`.

use duckdb::{params, Connection};

use super::StoreError;

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../migrations/", $name, ".sql")),
        }
    };
}

/// In order; a landed file is never edited, a change is a new file.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_init"),
    migration!(2, "0002_conversion_properties"),
    migration!(3, "0003_performance_inp"),
    migration!(4, "0004_growth_analytics"),
    migration!(5, "0005_web_vitals"),
    migration!(6, "0006_ai_gateway"),
    migration!(7, "0007_text_user_ids"),
    migration!(8, "0008_profile_watermark"),
    migration!(10, "0010_scaling"),
    migration!(11, "0011_alerts"),
    migration!(12, "0012_dbperf"),
    migration!(13, "0013_event_time"),
    migration!(14, "0014_lifecycle"),
    migration!(15, "0015_growth_rollup"),
    migration!(16, "0016_vitals_event_time"),
    migration!(17, "0017_timing_rollup"),
    migration!(18, "0018_ingest_log"),
];

pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the schema up to date; returns the versions it applied.
pub fn migrate(conn: &Connection) -> Result<Vec<i64>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name VARCHAR NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
        )",
    )?;
    let current: i64 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > latest() {
        return Err(StoreError::TooNew {
            found: current,
            known: latest(),
        });
    }
    // Numbers are reserved per branch, so one may land after a higher one was applied:
    // apply every listed migration this file has not seen, not only those above the top.
    let done: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<duckdb::Result<_>>()?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        conn.execute_batch("BEGIN TRANSACTION")?;
        let result = conn.execute_batch(m.sql).and_then(|_| {
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                params![m.version, m.name],
            )
        });
        match result {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(source) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(StoreError::Migration {
                    name: m.name,
                    source,
                });
            }
        }
        applied.push(m.version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, listed);
        // Numbers are handed out per branch, so a gap may exist until they all merge.
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        for m in MIGRATIONS {
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn applies_once_and_refuses_newer() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(
            migrate(&conn).unwrap(),
            MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>()
        );
        assert!(migrate(&conn).unwrap().is_empty());
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')",
            [],
        )
        .unwrap();
        let err = migrate(&conn).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    /// The schema an older binary left: every migration before `version`, recorded.
    fn schema_before(conn: &Connection, version: i64) {
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name VARCHAR NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)",
        )
        .unwrap();
        for m in MIGRATIONS.iter().filter(|m| m.version < version) {
            conn.execute_batch(m.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                params![m.version, m.name],
            )
            .unwrap();
        }
    }

    #[test]
    fn growth_migration_keeps_existing_rows() {
        // A file written before 0004: UUID user ids, a profile keyed by UUID.
        let conn = Connection::open_in_memory().unwrap();
        schema_before(&conn, 4);
        let user = "0b6c3c1e-2f4a-4c55-8a77-3d1f9e2b4c60";
        conn.execute_batch(&format!(
            "INSERT INTO user_events (user_id, session_id, event) VALUES ('{user}', 's1', 'a'), (NULL, 's2', 'b');
             INSERT INTO conversions (user_id, session_id, funnel, step) VALUES ('{user}', 's1', 'f', 'x');
             INSERT INTO user_profiles (user_id, total_events, last_activity) VALUES ('{user}', 3, '2026-01-01 00:00:00+00')"
        ))
        .unwrap();
        assert!(migrate(&conn).unwrap().contains(&4));
        let visitors: Vec<String> = conn
            .prepare("SELECT visitor_id FROM user_events ORDER BY event")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(visitors, [user.to_string(), "session:s2".to_string()]);
        let (id, total): (String, i32) = conn
            .query_row("SELECT user_id, total_events FROM user_profiles", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((id.as_str(), total), (user, 3));
        // App ids fit now, and the profile key is still unique.
        conn.execute("INSERT INTO user_profiles (user_id) VALUES ('user-42')", [])
            .unwrap();
        assert!(conn
            .execute("INSERT INTO user_profiles (user_id) VALUES ('user-42')", [])
            .is_err());
    }

    #[test]
    fn event_time_migration_fills_old_rows() {
        // A file written by the schema before 0013, closed, then opened by this binary.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.duckdb");
        {
            let conn = Connection::open(&path).unwrap();
            schema_before(&conn, 13);
            // Received 2026-01-01T00:00:00Z. a: acted 5 s before (sane); b: a clock 3 h
            // fast (not sane); c: no client time; d: two days before (not sane).
            let at = "'2026-01-01 00:00:00+00'";
            let ms = 1_767_225_600_000i64;
            conn.execute_batch(&format!(
                "INSERT INTO user_events (event, timestamp, created_at) VALUES
                   ('a', {}, {at}), ('b', {}, {at}), ('c', NULL, {at}), ('d', {}, {at});
                 INSERT INTO conversions (funnel, step, timestamp, created_at) VALUES ('f', 'a', {}, {at});
                 INSERT INTO performance_metrics (lcp, timestamp, created_at) VALUES (1, {}, {at});
                 INSERT INTO ai_performance_metrics (duration, timestamp, created_at) VALUES (1, NULL, {at});
                 INSERT INTO database_performance_metrics (query, timestamp, created_at) VALUES ('q', {}, {at});",
                ms - 5000,
                ms + 3 * 3_600_000,
                ms - 2 * 86_400_000,
                ms - 5000,
                ms - 5000,
                ms - 5000,
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let later: Vec<i64> = MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| *v >= 13)
            .collect();
        assert_eq!(migrate(&conn).unwrap(), later);
        let times: Vec<(String, i64)> = conn
            .prepare(
                "SELECT event, epoch_ms(event_time::TIMESTAMP) FROM user_events ORDER BY event",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let ms = 1_767_225_600_000i64;
        assert_eq!(
            times,
            [
                ("a".to_string(), ms - 5000),
                ("b".to_string(), ms),
                ("c".to_string(), ms),
                ("d".to_string(), ms),
            ]
        );
        for (table, want) in [
            ("conversions", ms - 5000),
            ("performance_metrics", ms - 5000),
            ("ai_performance_metrics", ms),
            ("database_performance_metrics", ms - 5000),
        ] {
            let got: i64 = conn
                .query_row(
                    &format!("SELECT epoch_ms(event_time::TIMESTAMP) FROM {table}"),
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(got, want, "{table}");
        }
    }

    /// `just bench-migrate`: migration 0013 in place on a file of `GS_MIGRATE_EVENTS`
    /// (default 10M) events written by the schema before it. Prints the seconds it took.
    #[test]
    #[ignore]
    fn bench_event_time_migration() {
        let n: i64 = std::env::var("GS_MIGRATE_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.duckdb");
        {
            let conn = Connection::open(&path).unwrap();
            schema_before(&conn, 13);
            // 30 days of events, like `demo`: names, people, pages, a client timestamp.
            conn.execute_batch(&format!(
                "INSERT INTO user_events (user_id, session_id, event, properties, route, user_agent, ip,
                    timestamp, created_at, visitor_id, browser, os, device, seq)
                 SELECT 'user-' || (i % 200000), 's' || (i // 7), 'event_' || (i % 20), '{{\"i\":1}}',
                    '/recipes/' || (i % 500), 'Mozilla/5.0', '198.51.100.0',
                    1764547200000 + i * (2592000000 // {n}) - (i % 3000),
                    make_timestamp((1764547200000 + i * (2592000000 // {n})) * 1000),
                    'user-' || (i % 200000), 'Chrome', 'Windows', 'pc', i
                 FROM range({n}) t(i); CHECKPOINT;"
            ))
            .unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let started = std::time::Instant::now();
        assert!(migrate(&conn).unwrap().contains(&13));
        let secs = started.elapsed().as_secs_f64();
        let filled: i64 = conn
            .query_row(
                "SELECT count(*) FROM user_events WHERE event_time IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(filled, n);
        println!("migration 0013 on {n} events: {secs:.1} s");
    }
}
