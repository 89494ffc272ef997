//! HTTP handlers: export a stream, take and list backups, storage sizes, prune now.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use super::backup::{self, BackupError, BackupInfo};
use super::export::{Format, Span};
use super::query::{self, Storage};
use super::retention::{self, Pruned};
use crate::error::ApiError;
use crate::http::openapi::{errors, ReadErrors, CSRF, UNAUTHORIZED};
use crate::http::params::{enum_schema, Instant, Params, Range};
use crate::http::Admin;
use crate::state::AppState;
use crate::store::Stream;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(export, backup, backups, storage, prune))]
pub(super) struct Doc;

/// `?stream=`: which stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamParam(Stream);

impl std::str::FromStr for StreamParam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(StreamParam)
    }
}
crate::str_param!(StreamParam);

impl PartialSchema for StreamParam {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = Stream::ALL.iter().map(|s| s.name()).collect();
        enum_schema(&names, "The stream to export")
    }
}
impl ToSchema for StreamParam {}

crate::choice_param!(
    /// `?format=`: the file format; exactly the names the document lists.
    FormatParam(Format),
    "File format; default parquet",
    { "parquet" => Format::Parquet, "csv" => Format::Csv, "jsonl" => Format::Jsonl }
);

/// The query string of `GET /api/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The stream to export.
    #[param(inline)]
    stream: StreamParam,
    /// parquet (default), csv or jsonl.
    #[param(inline)]
    format: Option<FormatParam>,
    /// How far back from `to`; ignored when `from` is given. Default: everything.
    #[param(inline)]
    range: Option<Range>,
    /// Start (inclusive); overrides `range`.
    #[param(inline)]
    from: Option<Instant>,
    /// End (exclusive); default: no end.
    #[param(inline)]
    to: Option<Instant>,
}

impl ExportQuery {
    fn span(&self, now: chrono::DateTime<Utc>) -> Span {
        let to = self.to.map(|t| t.0);
        let from = match (self.from, self.range) {
            (Some(f), _) => Some(f.0),
            (None, Some(r)) => Some(to.unwrap_or(now) - r.0),
            (None, None) => None,
        };
        Span {
            from_us: from.map(|f| f.timestamp_micros()),
            to_us: to.map(|t| t.timestamp_micros()),
        }
    }
}

struct AdminErrors;

impl utoipa::IntoResponses for AdminErrors {
    fn responses(
    ) -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        errors(&[
            UNAUTHORIZED,
            CSRF,
            (503, "The disk is full or the server is shutting down"),
        ])
    }
}

/// `GET /api/export`: one stream's rows as a file.
#[utoipa::path(get, path = "/api/export", tag = "Admin",
    summary = "Export a stream's rows over a time range as Parquet, CSV or JSON Lines (a download)",
    params(ExportQuery), security(("admin" = [])),
    responses((status = 200, description = "The file; X-Export-Rows says how many rows it holds",
        content((String = "application/vnd.apache.parquet"), (String = "text/csv"), (String = "application/x-ndjson"))),
        ReadErrors))]
pub async fn export(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<ExportQuery>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let span = q.span(now);
    let stream = q.stream.0;
    let format = q.format.map_or(Format::Parquet, |f| f.0);
    let data_dir = &state.config.server.data_dir;
    let tmp = tempfile::Builder::new()
        .prefix(".export-")
        .tempdir_in(data_dir)
        .map_err(|e| ApiError::Internal(format!("cannot make a temporary folder: {e}")))?;
    let file = tmp.path().join(format!("export.{}", format.name()));
    let rows = super::export_to(&state.store, stream, format, span, &file).await?;
    // Opened, then unlinked with its folder: the download streams from the open file.
    let f = tokio::fs::File::open(&file)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the export: {e}")))?;
    drop(tmp);
    let name = format!(
        "growth-stack-{}-{}.{}",
        stream.name(),
        now.format("%Y%m%dT%H%M%SZ"),
        format.name()
    );
    // Fused: the compression layer may poll once more after the end.
    let mut resp = Body::from_stream(futures_util::StreamExt::fuse(chunks(f))).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-export-rows", HeaderValue::from(rows));
    Ok(resp)
}

/// A file as a stream of 64 KiB chunks.
fn chunks(
    f: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(f), |f| async move {
        use tokio::io::AsyncReadExt;
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

fn backup_error(e: BackupError) -> ApiError {
    match e {
        BackupError::Store(e) => e.into(),
        BackupError::Refused(m) => ApiError::Conflict(m),
        e @ BackupError::Io { .. } => ApiError::Internal(e.to_string()),
    }
}

/// `POST /api/admin/backup`: a consistent snapshot while ingest continues.
#[utoipa::path(post, path = "/api/admin/backup", tag = "Admin",
    summary = "Take an online backup: a consistent snapshot of every table (Parquet) with a manifest of row counts",
    description = "On storage.engine = \"clickhouse\" the snapshot is of this node's own file, and every server of \
        clickhouse.url also freezes its tables (ALTER TABLE ... FREEZE WITH NAME, hard links under the server's \
        shadow/<name>/); `clickhouse` says what each server froze, or why it did not.",
    security(("admin" = [])),
    responses((status = 200, description = "The backup's folder and counts", body = BackupInfo), AdminErrors))]
pub async fn backup(State(state): State<AppState>, _: Admin) -> Result<Json<BackupInfo>, ApiError> {
    let dir = super::backup_dir(&state.config);
    backup::backup(&state.store, &dir, &state.config.server.data_dir, false)
        .await
        .map(Json)
        .map_err(backup_error)
}

/// `GET /api/admin/backups`: the finished backups, newest first.
#[utoipa::path(get, path = "/api/admin/backups", tag = "Admin",
    summary = "The finished backups, newest first",
    description = "The backups taken through this node (its backup.dir), each with what ClickHouse froze for it; \
        a node does not see the servers' disks nor the backups other nodes took.",
    security(("admin" = [])),
    responses((status = 200, description = "Backups", body = Vec<BackupInfo>), ReadErrors))]
pub async fn backups(State(state): State<AppState>, _: Admin) -> Json<Vec<BackupInfo>> {
    let dir = super::backup_dir(&state.config);
    let list = tokio::task::spawn_blocking(move || backup::list(&dir))
        .await
        .unwrap_or_default();
    Json(list)
}

/// `GET /api/admin/storage`: sizes and retention.
#[utoipa::path(get, path = "/api/admin/storage", tag = "Admin",
    summary = "The database file, each stream's rows, size and oldest row, the retention in force and free disk space",
    security(("admin" = [])),
    responses((status = 200, description = "Storage", body = Storage), ReadErrors))]
pub async fn storage(State(state): State<AppState>, _: Admin) -> Result<Json<Storage>, ApiError> {
    Ok(Json(
        query::storage(&state.store, &state.config.retention).await?,
    ))
}

/// `POST /api/admin/prune`: apply the retention now.
#[utoipa::path(post, path = "/api/admin/prune", tag = "Admin",
    summary = "Apply the retention now (it also runs at start-up and daily)",
    security(("admin" = [])),
    responses((status = 200, description = "Rows deleted", body = Pruned), AdminErrors))]
pub async fn prune(State(state): State<AppState>, _: Admin) -> Result<Json<Pruned>, ApiError> {
    let now = Utc::now().timestamp_micros();
    Ok(Json(
        retention::prune(&state.store, &state.config.retention, now).await?,
    ))
}
