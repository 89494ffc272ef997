//! One person: their `user_profiles` row and their newest events.

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

/// `None` when nothing is known about `id`.
pub fn run_sync(conn: &Connection, id: &str, limit: u32) -> Result<Option<Person>, StoreError> {
    let profile = query_json(
        conn,
        "SELECT user_id, first_seen, last_activity, total_events, to_json(coalesce(features_used, []::VARCHAR[]))::VARCHAR AS features_used, updated_at \
         FROM user_profiles WHERE user_id = ?",
        params![id],
        &["features_used"],
    )?
    .into_iter()
    .next();
    let events = query_json(
        conn,
        "SELECT id::VARCHAR AS id, event, properties, route, referrer, session_id, feature, browser, os, device, created_at \
         FROM user_events WHERE visitor_id = ? ORDER BY created_at DESC, id LIMIT ?",
        params![id, limit],
        &["properties"],
    )?;
    if profile.is_none() && events.is_empty() {
        return Ok(None);
    }
    Ok(Some(Person {
        id: id.to_string(),
        profile,
        events,
    }))
}
