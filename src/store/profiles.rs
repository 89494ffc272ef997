//! `user_profiles` kept current from the events of each group commit, in the same transaction.

use std::collections::{BTreeSet, HashMap};

use duckdb::{params, Appender, Connection};

use super::rows::{Batch, EventRow, Row};

/// Per-connection staging table: the group's changes are appended here, then merged into
/// `user_profiles` by one statement, which is far cheaper than one upsert per user.
const STAGING: &str = "user_profile_changes";

const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS user_profile_changes (
    user_id VARCHAR, first_seen TIMESTAMP, last_activity TIMESTAMP, total_events INTEGER, features VARCHAR)";

/// Features travel as one string joined by the unit separator, which ids never contain.
const MERGE: &str = "INSERT INTO user_profiles (user_id, first_seen, last_activity, total_events, features_used, updated_at)
    SELECT user_id, first_seen, last_activity, total_events,
           CASE WHEN features = '' THEN NULL ELSE string_split(features, chr(31)) END,
           current_timestamp
    FROM temp.main.user_profile_changes
    ON CONFLICT (user_id) DO UPDATE SET
        first_seen = least(user_profiles.first_seen, excluded.first_seen),
        last_activity = greatest(user_profiles.last_activity, excluded.last_activity),
        total_events = user_profiles.total_events + excluded.total_events,
        features_used = CASE
            WHEN excluded.features_used IS NULL THEN user_profiles.features_used
            ELSE list_sort(list_distinct(list_concat(coalesce(user_profiles.features_used, []::VARCHAR[]), excluded.features_used)))
        END,
        updated_at = excluded.updated_at";

/// What one commit changes in one user's profile.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub first_seen: i64,
    pub last_activity: i64,
    pub events: i32,
    pub features: BTreeSet<String>,
}

/// Profile changes of the identified users (events with a `user_id`) in these batches.
pub fn changes(batches: &[&Batch]) -> HashMap<String, Change> {
    let mut out: HashMap<String, Change> = HashMap::new();
    for rows in batches.iter().filter_map(|b| EventRow::rows(b)) {
        for row in rows {
            let Some(user) = &row.user_id else { continue };
            let c = out.entry(user.clone()).or_insert_with(|| Change {
                first_seen: row.created_at,
                last_activity: row.created_at,
                ..Change::default()
            });
            c.first_seen = c.first_seen.min(row.created_at);
            c.last_activity = c.last_activity.max(row.created_at);
            c.events = c.events.saturating_add(1);
            if let Some(f) = &row.feature {
                c.features.insert(f.clone());
            }
        }
    }
    out
}

/// Merges `changes` into `user_profiles`; the caller holds the transaction.
pub fn merge<'c>(
    conn: &'c Connection,
    staging: &mut Option<Appender<'c>>,
    changes: &HashMap<String, Change>,
) -> duckdb::Result<()> {
    let app = match staging {
        Some(a) => a,
        None => staging.insert(conn.appender_to_catalog_and_db(STAGING, "temp", "main")?),
    };
    for (user, c) in changes {
        let features = c
            .features
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{1f}");
        app.append_row(params![
            user,
            super::json::ts_param(c.first_seen),
            super::json::ts_param(c.last_activity),
            c.events,
            features,
        ])?;
    }
    app.flush()?;
    conn.prepare_cached(MERGE)?.execute([])?;
    conn.prepare_cached("DELETE FROM temp.main.user_profile_changes")?
        .execute([])?;
    Ok(())
}

/// Creates the staging table on the writer's connection (temporary: never in the file).
pub fn prepare(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(CREATE_STAGING)
}
