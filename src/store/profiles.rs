//! `user_profiles`, derived from the numbered events.
//!
//! The writer numbers every event it appends (`user_events.seq`, increasing in commit
//! order). `user_profiles` holds everything up to `user_profile_watermark.seq`; a profile
//! read adds that user's events above it. A profile is therefore current in the very
//! commit that stores its events, all or nothing, and the commit itself pays nothing for
//! it (an upsert in the events' transaction cost ≈ 4 ms per group commit, which capped
//! identified beacons at a quarter of anonymous ones). `fold` moves the newer events into
//! `user_profiles` in the background, in one transaction with the watermark, so the
//! events a read has to add stay few.

use duckdb::{params, Connection};

/// The highest number stored in any numbered table (events, AI calls, query timings).
pub fn next_seq(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row(&format!("SELECT {TOP_SEQ}"), [], |r| r.get(0))
}

/// SQL: the highest number stored in any numbered table or folded up to by any watermark,
/// for `next_seq` and for rows added outside the writer (import), which must number after
/// it: a row numbered at or below a watermark would never be folded.
pub const TOP_SEQ: &str = "greatest(coalesce((SELECT max(seq) FROM user_events), 0), \
     coalesce((SELECT max(seq) FROM user_profile_watermark), 0), \
     coalesce((SELECT max(seq) FROM ai_performance_metrics), 0), \
     coalesce((SELECT max(seq) FROM database_performance_metrics), 0), \
     coalesce((SELECT max(seq) FROM active_days_state), 0), \
     coalesce((SELECT max(seq) FROM growth_rollup_state), 0), \
     coalesce((SELECT max(seq) FROM timing_rollup_state), 0))";

/// The newest commit number of a numbered table, a filter over it and its bounds.
pub type Unfolded = (i64, &'static str, Vec<i64>);

/// The rows of `table` a roll-up folded up to commit number `since` has not seen: the
/// newest commit number, and the filter over `table` with its bounds; `None` when there
/// are none. Call it inside the fold's transaction: the writer numbers rows in commit
/// order, so every row up to the largest number seen here is committed and seen.
pub fn unfolded(
    conn: &Connection,
    table: &str,
    since: Option<i64>,
) -> duckdb::Result<Option<Unfolded>> {
    let top: i64 = conn.query_row(
        &format!("SELECT coalesce(max(seq), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )?;
    Ok(match since {
        Some(s) if s >= top => None,
        Some(s) => Some((top, "seq > ? AND seq <= ?", vec![s, top])),
        // The first fold takes the rows written before numbering too.
        None => Some((top, "(seq IS NULL OR seq <= ?)", vec![top])),
    })
}

/// One user's profile, folded part and newer events merged. Parameters: the watermark
/// (`watermark`, passed as a value so the scan skips older row groups by their `seq`
/// zone maps), then the user id twice.
/// Columns: user_id, first_seen, last_activity, total_events, features_used (JSON), updated_at.
pub const CURRENT_PROFILE: &str = "WITH recent AS (SELECT user_id, min(created_at) AS first_seen, max(created_at) AS last_activity, \
        count(*)::INTEGER AS n, list(DISTINCT feature) FILTER (WHERE feature IS NOT NULL) AS features \
        FROM user_events WHERE seq > ? AND user_id = ? GROUP BY user_id), \
     folded AS (SELECT * FROM user_profiles WHERE user_id = ?) \
     SELECT coalesce(f.user_id, r.user_id) AS user_id, \
        CASE WHEN f.first_seen IS NULL THEN r.first_seen WHEN r.first_seen IS NULL THEN f.first_seen \
             ELSE least(f.first_seen, r.first_seen) END AS first_seen, \
        CASE WHEN f.last_activity IS NULL THEN r.last_activity WHEN r.last_activity IS NULL THEN f.last_activity \
             ELSE greatest(f.last_activity, r.last_activity) END AS last_activity, \
        coalesce(f.total_events, 0) + coalesce(r.n, 0) AS total_events, \
        to_json(list_sort(list_distinct(list_concat(coalesce(f.features_used, []::VARCHAR[]), \
            coalesce(r.features, []::VARCHAR[])))))::VARCHAR AS features_used, \
        CASE WHEN r.user_id IS NULL THEN f.updated_at ELSE r.last_activity END AS updated_at \
     FROM folded f FULL JOIN recent r ON f.user_id = r.user_id";

/// Events up to this number are folded into `user_profiles`.
pub fn watermark(conn: &Connection) -> duckdb::Result<i64> {
    conn.query_row(
        "SELECT coalesce(max(seq), 0) FROM user_profile_watermark",
        [],
        |r| r.get(0),
    )
}

/// Folds the events above the watermark into `user_profiles` and moves the watermark, in
/// one transaction (the caller's connection must not be in one). Returns the events folded.
pub fn fold(conn: &Connection) -> duckdb::Result<u64> {
    super::in_transaction(conn, fold_in_transaction)
}

fn fold_in_transaction(conn: &Connection) -> duckdb::Result<u64> {
    let from = watermark(conn)?;
    // A value, not a join: the filter then skips older row groups by zone map.
    let (to, n): (Option<i64>, i64) = conn.query_row(
        "SELECT max(seq), count(*) FROM user_events WHERE seq > ?",
        params![from],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some(to) = to else { return Ok(0) };
    conn.execute(
        "INSERT INTO user_profiles (user_id, first_seen, last_activity, total_events, features_used, updated_at) \
         SELECT user_id, min(created_at), max(created_at), count(*)::INTEGER, \
            list_sort(list(DISTINCT feature) FILTER (WHERE feature IS NOT NULL)), max(created_at) \
         FROM user_events WHERE seq > ? AND seq <= ? AND user_id IS NOT NULL GROUP BY user_id \
         ON CONFLICT (user_id) DO UPDATE SET \
            first_seen = least(coalesce(user_profiles.first_seen, excluded.first_seen), excluded.first_seen), \
            last_activity = greatest(coalesce(user_profiles.last_activity, excluded.last_activity), excluded.last_activity), \
            total_events = coalesce(user_profiles.total_events, 0) + excluded.total_events, \
            features_used = list_sort(list_distinct(list_concat(coalesce(user_profiles.features_used, []::VARCHAR[]), \
                coalesce(excluded.features_used, []::VARCHAR[])))), \
            updated_at = excluded.updated_at",
        params![from, to],
    )?;
    conn.execute("UPDATE user_profile_watermark SET seq = ?", params![to])?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(conn: &Connection, id: &str) -> Option<(String, String, i32, String)> {
        let hour = |v: duckdb::types::Value| match v {
            duckdb::types::Value::Timestamp(_, us) => us / 3_600_000_000 % 24,
            other => panic!("{other:?}"),
        };
        conn.query_row(
            &format!("SELECT user_id, first_seen, last_activity, total_events, features_used FROM ({CURRENT_PROFILE})"),
            params![watermark(conn).unwrap(), id, id],
            |r| {
                let span = format!("{}-{}", hour(r.get(1)?), hour(r.get(2)?));
                Ok((r.get(0)?, span, r.get(3)?, r.get(4)?))
            },
        )
        .map_err(|e| assert!(matches!(e, duckdb::Error::QueryReturnedNoRows), "{e}"))
        .ok()
    }

    fn event(conn: &Connection, seq: i64, user: Option<&str>, at: &str, feature: Option<&str>) {
        conn.execute(
            "INSERT INTO user_events (event, user_id, visitor_id, created_at, feature, seq) \
             VALUES ('e', ?, coalesce(?, 'anon'), ?::TIMESTAMPTZ, ?, ?)",
            params![user, user, format!("2026-01-01 {at}:00+00"), feature, seq],
        )
        .unwrap();
    }

    #[test]
    fn a_profile_reads_the_same_before_and_after_folding() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::migrate::migrate(&conn).unwrap();
        assert_eq!(next_seq(&conn).unwrap(), 0);
        assert_eq!(profile(&conn, "u1"), None);
        event(&conn, 1, Some("u1"), "10:00", Some("search"));
        event(&conn, 2, None, "10:01", Some("planner"));
        event(&conn, 3, Some("u1"), "09:00", None);
        let unfolded = profile(&conn, "u1");
        let want = Some((
            "u1".to_string(),
            "9-10".to_string(),
            2,
            r#"["search"]"#.to_string(),
        ));
        assert_eq!(unfolded, want);
        assert_eq!(fold(&conn).unwrap(), 3);
        assert_eq!(fold(&conn).unwrap(), 0, "nothing left above the watermark");
        assert_eq!(profile(&conn, "u1"), want);
        // Newer events add to the folded profile, whether read or folded again.
        event(&conn, 4, Some("u1"), "11:00", Some("planner"));
        event(&conn, 5, Some("u1"), "08:00", Some("search"));
        let want = Some((
            "u1".to_string(),
            "8-11".to_string(),
            4,
            r#"["planner","search"]"#.to_string(),
        ));
        assert_eq!(profile(&conn, "u1"), want);
        assert_eq!(fold(&conn).unwrap(), 2);
        assert_eq!(profile(&conn, "u1"), want);
        assert_eq!(
            profile(&conn, "anon"),
            None,
            "anonymous visitors have no profile"
        );
        assert_eq!(next_seq(&conn).unwrap(), 5);
    }
}
