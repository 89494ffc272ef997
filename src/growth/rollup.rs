//! The roll-up behind DAU/WAU/MAU: every person's active UTC days, one row per (day,
//! person), folded from events by their commit number (`seq`) in the background. A read
//! takes whole days from it, and from the events the last (partial) day and whatever the
//! fold has not reached yet: exact, and it no longer scans 30 days of events for a MAU.

use std::time::Duration;

use duckdb::{params, Connection};

use super::time::DAY_US;
use crate::store::profiles::unfolded;
use crate::store::{in_transaction, Store, StoreError};

const FOLD_EVERY: Duration = Duration::from_secs(30);

/// The commit number up to which events are folded, once the roll-up has begun.
pub fn done(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row("SELECT max(seq) FROM active_days_state", [], |r| r.get(0))?)
}

/// Folds every committed event past the watermark; returns the new (day, person) pairs.
pub fn fold(conn: &Connection) -> Result<usize, StoreError> {
    in_transaction(conn, fold_in)
}

fn fold_in(conn: &Connection) -> Result<usize, StoreError> {
    let Some((top, which, p)) = unfolded(conn, "user_events", done(conn)?)? else {
        return Ok(0);
    };
    let n = conn.execute(
        &format!(
            "INSERT INTO active_days SELECT DISTINCT n.day, n.v FROM ( \
               SELECT epoch_us(event_time::TIMESTAMP) // {DAY_US} AS day, hash(visitor_id) AS v \
               FROM user_events WHERE {which} AND visitor_id IS NOT NULL AND event_time IS NOT NULL) n \
             WHERE NOT EXISTS (SELECT 1 FROM active_days a WHERE a.day = n.day AND a.v = n.v)"
        ),
        duckdb::params_from_iter(p),
    )?;
    conn.execute("DELETE FROM active_days_state", [])?;
    conn.execute("INSERT INTO active_days_state VALUES (?)", params![top])?;
    Ok(n)
}

/// Folds now (start-up, the demo); returns the new pairs.
pub async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    store.maintain(fold).await
}

/// Keeps the roll-up current in the background.
pub fn spawn(store: Store) {
    store.every(FOLD_EVERY, "active days roll-up", |store| async move {
        catch_up(&store).await.map(drop)
    });
}
