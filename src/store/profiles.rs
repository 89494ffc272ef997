//! `user_profiles` kept current from the events of each group commit, in the same transaction.

use std::collections::{BTreeSet, HashMap};

use duckdb::{params, Appender, Connection};

use super::rows::{Batch, EventRow, Row};

/// Per-connection staging table: the group's changes are appended here, then merged into
/// `user_profiles` by one statement, which is far cheaper than one upsert per user.
const STAGING: &str = "user_profile_changes";

const CREATE_STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS user_profile_changes (
    user_id VARCHAR, first_seen TIMESTAMP, last_activity TIMESTAMP, total_events INTEGER)";

/// Scalar columns only: rewriting the `features_used` list of every touched profile
/// costs more than the rest of the merge, and features rarely change.
const MERGE: &str =
    "INSERT INTO user_profiles (user_id, first_seen, last_activity, total_events, updated_at)
    SELECT user_id, first_seen, last_activity, total_events, current_timestamp
    FROM temp.main.user_profile_changes
    ON CONFLICT (user_id) DO UPDATE SET
        first_seen = least(user_profiles.first_seen, excluded.first_seen),
        last_activity = greatest(user_profiles.last_activity, excluded.last_activity),
        total_events = user_profiles.total_events + excluded.total_events,
        updated_at = excluded.updated_at";

/// Adds features (joined by the unit separator, which ids never contain) to one profile.
const ADD_FEATURES: &str =
    "UPDATE user_profiles SET features_used = list_sort(list_distinct(list_concat(
        coalesce(features_used, []::VARCHAR[]), string_split(?, chr(31))))) WHERE user_id = ?";

/// Users' features already stored, as far as this writer knows: only a feature missing
/// here is written. Filled after each commit, so a rolled-back commit leaves no trace.
pub struct KnownFeatures(lru::LruCache<String, BTreeSet<String>>);

impl KnownFeatures {
    pub fn new(users: usize) -> Self {
        KnownFeatures(lru::LruCache::new(
            std::num::NonZeroUsize::new(users).unwrap_or(std::num::NonZeroUsize::MIN),
        ))
    }

    /// Per user, the features of `changes` not known to be stored yet.
    pub fn missing(&mut self, changes: &HashMap<String, Change>) -> Vec<(String, Vec<String>)> {
        changes
            .iter()
            .filter_map(|(user, c)| {
                let known = self.0.get(user);
                let new: Vec<String> = c
                    .features
                    .iter()
                    .filter(|f| known.is_none_or(|k| !k.contains(*f)))
                    .cloned()
                    .collect();
                (!new.is_empty()).then(|| (user.clone(), new))
            })
            .collect()
    }

    /// After the commit: these features are stored now.
    pub fn committed(&mut self, added: Vec<(String, Vec<String>)>) {
        for (user, features) in added {
            match self.0.get_mut(&user) {
                Some(set) => set.extend(features),
                None => {
                    self.0.put(user, features.into_iter().collect());
                }
            }
        }
    }
}

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

/// Merges `changes` into `user_profiles`, and `features` into their lists; the caller
/// holds the transaction.
pub fn merge<'c>(
    conn: &'c Connection,
    staging: &mut Option<Appender<'c>>,
    changes: &HashMap<String, Change>,
    features: &[(String, Vec<String>)],
) -> duckdb::Result<()> {
    let app = match staging {
        Some(a) => a,
        None => staging.insert(conn.appender_to_catalog_and_db(STAGING, "temp", "main")?),
    };
    for (user, c) in changes {
        app.append_row(params![
            user,
            super::json::ts_param(c.first_seen),
            super::json::ts_param(c.last_activity),
            c.events,
        ])?;
    }
    app.flush()?;
    conn.prepare_cached(MERGE)?.execute([])?;
    conn.prepare_cached("DELETE FROM temp.main.user_profile_changes")?
        .execute([])?;
    if !features.is_empty() {
        let mut add = conn.prepare_cached(ADD_FEATURES)?;
        for (user, list) in features {
            add.execute(params![list.join("\u{1f}"), user])?;
        }
    }
    Ok(())
}

/// Creates the staging table on the writer's connection (temporary: never in the file).
pub fn prepare(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(CREATE_STAGING)
}
