//! One person: their profile and their newest events.

use std::time::Duration;

use duckdb::{params, Connection};
use serde::Serialize;

use crate::store::{query_json, JsonRow, StoreError};

pub const RECENT_EVENTS: u32 = 50;

#[derive(Debug, Serialize)]
pub struct Person {
    pub id: String,
    /// None for anonymous visitors and users with no stored profile yet.
    pub profile: Option<JsonRow>,
    pub events: Vec<JsonRow>,
}

impl Person {
    /// The person, or `None` when nothing is known about `id`; both engines answer so.
    pub fn found(id: &str, profile: Option<JsonRow>, events: Vec<JsonRow>) -> Option<Person> {
        (profile.is_some() || !events.is_empty()).then(|| Person {
            id: id.to_string(),
            profile,
            events,
        })
    }
}

/// `None` when nothing is known about `id`.
pub fn run_sync(conn: &Connection, id: &str, limit: u32) -> Result<Option<Person>, StoreError> {
    // Watermark and profile from one snapshot: a fold committing in between would
    // otherwise count its events twice.
    conn.execute_batch("BEGIN TRANSACTION")?;
    let profile = current_profile(conn, id);
    let _ = conn.execute_batch(if profile.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    });
    let profile = profile?;
    let events = query_json(
        conn,
        "SELECT id::VARCHAR AS id, event, properties, route, referrer, session_id, feature, browser, os, device, created_at, event_time \
         FROM user_events WHERE visitor_id = ? ORDER BY event_time DESC, seq DESC NULLS LAST, id LIMIT ?",
        params![id, limit],
        &["properties"],
    )?;
    Ok(Person::found(id, profile, events))
}

fn current_profile(conn: &Connection, id: &str) -> Result<Option<JsonRow>, StoreError> {
    Ok(query_json(
        conn,
        crate::store::profiles::CURRENT_PROFILE,
        params![crate::store::profiles::watermark(conn)?, id, id],
        &["features_used"],
    )?
    .into_iter()
    .next())
}

/// Folds new events into `user_profiles` every few seconds, so a profile read has few
/// events to add (a profile is current without it, see `store::profiles`).
pub fn spawn_fold(store: crate::store::Store) {
    store.every(FOLD_EVERY, "profile fold", |store| async move {
        fold(&store).await.map(drop)
    });
}

const FOLD_EVERY: Duration = Duration::from_secs(5);

/// Folds every event above the watermark now; returns how many.
pub async fn fold(store: &crate::store::Store) -> Result<u64, StoreError> {
    store
        .maintain(|conn| Ok(crate::store::profiles::fold(conn)?))
        .await
}
