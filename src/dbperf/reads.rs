//! The query-timing reads the handlers and the overview run, on whichever engine the
//! store runs: `query`'s DuckDB SQL or its ClickHouse twin in `clickhouse`. The choice is
//! made here, above both, so neither engine's module imports the other.
//!
//! `pg_stat_statements` snapshots stay in each node's DuckDB file (see `pg_stats`): on
//! ClickHouse, index advice starts from the reported timings alone.

use super::clickhouse;
use super::query::{self, Candidate, Fingerprints, Headline, NPlusOne, PgStats, SortBy, Summary};
use crate::http::Window;
use crate::store::{Store, StoreError};

pub async fn summary(store: &Store, window: Window, slow: f64) -> Result<Summary, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::summary(ch, &window, slow).await,
        None => query::summary(store, window, slow).await,
    }
}

pub async fn headline(store: &Store, window: Window, slow: f64) -> Result<Headline, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::headline(ch, &window, slow).await,
        None => query::headline(store, window, slow).await,
    }
}

pub async fn fingerprints(
    store: &Store,
    window: Window,
    slow: f64,
    sort: SortBy,
) -> Result<Fingerprints, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::fingerprints(ch, &window, slow, sort).await,
        None => query::fingerprints(store, window, slow, sort).await,
    }
}

pub async fn n_plus_one(store: &Store, window: Window) -> Result<NPlusOne, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::n_plus_one(ch, &window).await,
        None => query::n_plus_one(store, window).await,
    }
}

/// `pg_stat_statements` over the window. None on ClickHouse: the snapshots are one
/// node's polls of the user's PostgreSQL, kept in that node's file, and an answer from
/// them would differ from node to node; the nodes there do not poll (`super::start`).
pub async fn pg_stats(store: &Store, window: Window, max: u32) -> Result<Vec<PgStats>, StoreError> {
    match store.clickhouse() {
        Some(_) => Ok(Vec::new()),
        None => query::pg_stats(store, window, max).await,
    }
}

/// The fingerprints index advice looks at (`query::candidates`).
pub async fn candidates(
    store: &Store,
    window: Window,
    slow: f64,
    max: u32,
) -> Result<Vec<Candidate>, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::candidates(ch, &window, slow, max).await,
        None => query::candidates(store, window, slow, max).await,
    }
}
