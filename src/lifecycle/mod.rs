//! The data's life: retention (pruning old rows), export and import of a stream, online
//! backups and restore, and what the data takes on disk.

mod api;
pub mod backup;
mod clickhouse;
pub mod export;
mod query;
pub mod retention;

use std::path::{Path, PathBuf};

use axum::routing::{get, post};
use axum::Router;

use crate::config::Config;
use crate::state::AppState;
use crate::store::{Store, StoreError, Stream};

pub use backup::{BackupError, BackupInfo, Restored};
pub use export::{Format, Span};

/// Writes the stream's rows in `span` to `out` (replacing it); returns the rows written.
/// On the ClickHouse engine the rows come from ClickHouse, written by the same DuckDB
/// `COPY` (`clickhouse::export_to`); on DuckDB it is one `COPY` of the file's rows.
pub async fn export_to(
    store: &Store,
    stream: Stream,
    format: Format,
    span: Span,
    out: &Path,
) -> Result<u64, StoreError> {
    match store.clickhouse() {
        Some(ch) => clickhouse::export_to(store, ch, stream, format, span, out).await,
        None => export::export_duckdb(store, stream, format, span, out).await,
    }
}

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface, every route behind the admin token.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/export", get(api::export))
        .route("/api/admin/backup", post(api::backup))
        .route("/api/admin/backups", get(api::backups))
        .route("/api/admin/storage", get(api::storage))
        .route("/api/admin/prune", post(api::prune))
}

/// Background work: the retention prune (at start-up, then daily) and scheduled backups.
pub fn start(state: &AppState) {
    let config = &state.config;
    retention::spawn(&state.store, config.retention.clone());
    backup::spawn(
        &state.store,
        backup_dir(config),
        config.server.data_dir.clone(),
        config.backup.interval_hours,
        config.backup.keep,
    );
}

/// Where backups go: `backup.dir`, or `backups` in the data dir.
pub fn backup_dir(config: &Config) -> PathBuf {
    config
        .backup
        .dir
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("backups"))
}
