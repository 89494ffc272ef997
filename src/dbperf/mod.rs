//! Database optimisation: apps report query timings, which are fingerprinted at ingest;
//! reads show per-fingerprint statistics, slow queries and N+1 loops. With the user's
//! PostgreSQL (`database.url`) it also polls `pg_stat_statements`, advises indexes, lists
//! unused and duplicate ones, and serves the guide's `db.select` through a cache.

mod advice;
mod api;
mod clickhouse;
mod fingerprint;
mod indexes;
mod ingest;
mod pg;
mod query;
mod reads;
mod select;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::{Extension, Router};

pub use fingerprint::{fingerprint, memo, Fingerprint, Fingerprinter};
pub use ingest::QueryTimingIn;
pub use query::Headline;

use crate::http::ingest::handler;
use crate::http::Window;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// This capability's own state: the PostgreSQL pool (when configured), the select cache
/// and the keys apps may call `POST /api/db/select` with.
pub struct DbPerf {
    pg: Option<pg::Pg>,
    cache: select::SelectCache,
    gateway_keys: Vec<String>,
}

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Opens the pool (lazily: nothing connects until first used) and the cache. A bad
/// `database.url` is logged and leaves the database features off, not the server down.
pub fn open(state: &AppState) -> Arc<DbPerf> {
    let d = &state.config.database;
    let pg = d.url.as_deref().and_then(|url| match pg::Pg::new(url, d.pool_size) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "database.url is not usable; database features are off");
            None
        }
    });
    Arc::new(DbPerf {
        pg,
        cache: select::SelectCache::new(d.max_cache_size, d.enable_cache),
        gateway_keys: gateway_keys(state),
    })
}

/// The AI gateway's keys (configured, or the file it keeps in the data dir): apps call
/// the select cache server-side with the key they already hold.
fn gateway_keys(state: &AppState) -> Vec<String> {
    let c = &state.config;
    if !c.ai.gateway_keys.is_empty() {
        return c.ai.gateway_keys.clone();
    }
    std::fs::read_to_string(c.server.data_dir.join("gateway_key"))
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Its HTTP surface: query-timing ingest and reads, the select cache.
pub fn routes(db: Arc<DbPerf>) -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/database-performance",
            post(handler::<QueryTimingIn>).get(api::get),
        )
        .route(
            "/api/analytics/database-performance/queries",
            get(api::queries),
        )
        .route(
            "/api/analytics/database-performance/n-plus-one",
            get(api::n_plus_one),
        )
        .route(
            "/api/analytics/database-performance/index-advice",
            get(api::index_advice),
        )
        .route("/api/db/select", post(api::select))
        .route("/api/db/cache", delete(api::clear_cache).get(api::cache))
        .layer(Extension(db))
}

/// Its background tasks: the timings' roll-up, and with `database.url` a poll of
/// `pg_stat_statements` every `database.poll_interval` seconds, kept as snapshots beside
/// the reported timings.
pub fn start(state: &AppState, db: &Arc<DbPerf>) {
    query::TIMINGS.spawn(&state.store);
    let every = state.config.database.poll_interval;
    // On ClickHouse no read looks at the snapshots (`reads::pg_stats`): no poll.
    if db.pg.is_none() || every == 0 || state.store.clickhouse().is_some() {
        return;
    }
    let db = db.clone();
    state.store.every(
        Duration::from_secs(every),
        "pg_stat_statements poll",
        move |store| {
            let db = db.clone();
            async move {
                let Some(pg) = db.pg.as_ref() else {
                    return Ok(());
                };
                poll(&store, pg).await
            }
        },
    );
}

async fn poll(store: &Store, pg: &pg::Pg) -> Result<(), StoreError> {
    // The catalog too, so advice sees an index made a moment ago.
    if let Err(e) = pg.catalog(Duration::ZERO).await {
        tracing::warn!(error = %e, "cannot read database.url's catalog");
        return Ok(());
    }
    let statements = match pg::statements(pg).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::debug!("pg_stat_statements is not installed in database.url's database");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read pg_stat_statements");
            return Ok(());
        }
    };
    let memo = fingerprint::memo();
    let rows: Vec<(pg::Statement, String)> = statements
        .into_iter()
        .filter(|s| !is_own(&s.query))
        .map(|s| {
            let f = memo.get(&s.query);
            (s, f.id)
        })
        .collect();
    let now = chrono::Utc::now().timestamp_micros();
    query::save_snapshot(store, now, rows).await
}

/// Our own catalog reads and session settings, and utility statements: not the app's.
fn is_own(query: &str) -> bool {
    let q = query.trim_start().to_ascii_lowercase();
    [
        "set ",
        "show ",
        "begin",
        "commit",
        "rollback",
        "explain ",
        "reset ",
        "discard ",
        "create ",
        "alter ",
        "drop ",
        "grant ",
        "revoke ",
        "analyze",
        "vacuum",
        "truncate ",
        "copy ",
    ]
    .iter()
    .any(|p| q.starts_with(p))
        || [
            "pg_catalog.",
            "pg_class",
            "pg_attribute",
            "pg_stat_",
            "pg_index",
            "pg_extension",
            "pg_database",
            "current_schemas",
            "hypopg_",
            "current_setting(",
        ]
        .iter()
        .any(|p| q.contains(p))
}

/// Folds new timings into the roll-up now (the demo, after writing); returns the buckets written.
pub async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    query::TIMINGS.catch_up(store).await
}

/// What the dashboard's overview shows of query timings over `window`.
pub async fn headline(state: &AppState, window: Window) -> Result<Headline, StoreError> {
    let slow = state.config.database.slow_query_threshold;
    reads::headline(&state.store, window, slow).await
}
