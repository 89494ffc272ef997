//! HTTP handlers for query-timing reads and the select cache, and the OpenAPI operations
//! of this capability (ingest is `http::ingest::handler::<QueryTimingIn>`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{RefOr, Response as OaResponse};
use utoipa::{IntoParams, IntoResponses, OpenApi, PartialSchema, ToSchema};

use super::ingest::QueryTimingIn;
use super::query::SortBy;
use super::reads;
use super::select::{self, CacheStats, SelectError, SelectIn};
use super::{indexes, DbPerf};
use crate::error::ApiError;
use crate::http::auth::{bearer, token_matches, Admin};
use crate::http::body::{self, parse_value};
use crate::http::ingest::Accepted;
use crate::http::openapi::{errors, IngestErrors, OneOrMany, ReadErrors, UNAUTHORIZED};
use crate::http::params::{enum_schema, Params};
use crate::http::{CachedRead, Window, WindowQuery};
use crate::state::AppState;
use crate::store::{Batch, DatabaseRow};

/// The body of `POST /api/analytics/database-performance`.
type QueryTimingsBody = OneOrMany<QueryTimingIn>;

type Db = Extension<Arc<DbPerf>>;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    paths(
        post,
        get,
        queries,
        n_plus_one,
        index_advice,
        select,
        cache,
        clear_cache
    ),
    components(schemas(SelectIn, super::select::OrderIn, CacheStats))
)]
pub(super) struct Doc;

/// Carries the OpenAPI description of `POST /api/analytics/database-performance`.
#[utoipa::path(post, path = "/api/analytics/database-performance", tag = "Database",
    summary = "Record one query timing or a batch of them",
    description = "Answers 200 only after the rows are committed. A batch with one invalid item writes nothing. \
        `text/plain` bodies (navigator.sendBeacon) are parsed as JSON too. Each query is fingerprinted: literals \
        become $n placeholders, so every spelling of one query is counted together.",
    request_body(content = QueryTimingsBody, content_type = "application/json"),
    params(crate::http::event_time::SentAtQuery),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post() {}

/// `GET /api/analytics/database-performance`.
#[utoipa::path(get, path = "/api/analytics/database-performance", tag = "Database",
    summary = "Query latency, slow-query rate, cache hits, slowest fingerprints, newest timings",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The report", body = Object), ReadErrors))]
pub async fn get(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    let slow = state.config.database.slow_query_threshold;
    read.json(reads::summary(&state.store, window, slow)).await
}

/// `?sort=` of the fingerprints table.
#[derive(Debug, Clone, Copy)]
pub struct SortParam(SortBy);

impl std::str::FromStr for SortParam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SortBy::parse(s)
            .map(SortParam)
            .ok_or_else(|| format!("{s:?} is not one of {}", SortBy::NAMES.join(", ")))
    }
}
crate::str_param!(SortParam);

impl PartialSchema for SortParam {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            &SortBy::NAMES,
            "Order of the fingerprints, highest first; default total (time: what to fix first)",
        )
    }
}
impl ToSchema for SortParam {}

/// The fingerprints table's own parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueriesQuery {
    #[param(inline)]
    sort: Option<SortParam>,
}

/// `GET /api/analytics/database-performance/queries`.
#[utoipa::path(get, path = "/api/analytics/database-performance/queries", tag = "Database",
    summary = "Fingerprints and their statistics (pg_stat_statements style): calls, total, mean, min, max, \
        stddev, p50/p95/p99, rows, cache-hit share, share of all query time, first and last seen, a series, \
        slow by the threshold and by PgHero's rule; with database.url, pg_stat_statements beside them",
    params(WindowQuery, QueriesQuery), security(("admin" = [])),
    responses((status = 200, description = "The fingerprints; `limit`/`offset` page them", body = Object), ReadErrors))]
pub async fn queries(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
    Params(q): Params<QueriesQuery>,
) -> Result<Response, ApiError> {
    let slow = state.config.database.slow_query_threshold;
    let sort = q.sort.map_or(SortBy::Total, |s| s.0);
    let store = state.store.clone();
    read.json(async move {
        let mut report = reads::fingerprints(&store, window, slow, sort).await?;
        let pg = reads::pg_stats(&store, window, 200).await?;
        for q in &mut report.queries {
            q.postgres = pg.iter().find(|p| p.fingerprint == q.fingerprint).cloned();
        }
        report.postgres = pg;
        Ok::<_, ApiError>(report)
    })
    .await
}

/// `GET /api/analytics/database-performance/n-plus-one`.
#[utoipa::path(get, path = "/api/analytics/database-performance/n-plus-one", tag = "Database",
    summary = "N+1 findings (Sentry's rule): one fingerprint at least 5 times in one request_id and over \
        50 ms in all, or without request_id in one user's (or IP's) second; per query and per request",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The findings; `limit`/`offset` page them", body = Object), ReadErrors))]
pub async fn n_plus_one(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(reads::n_plus_one(&state.store, window)).await
}

/// `GET /api/analytics/database-performance/index-advice`.
#[utoipa::path(get, path = "/api/analytics/database-performance/index-advice", tag = "Database",
    summary = "Index advice for slow and frequent fingerprints (PgHero's heuristic, with reasons, the \
        CREATE INDEX CONCURRENTLY statement and EXPLAIN), unused and duplicate indexes, tables read by \
        sequential scans; needs database.url for all but the list of candidates",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The advice", body = Object), ReadErrors))]
pub async fn index_advice(
    State(state): State<AppState>,
    Extension(db): Db,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    let slow = state.config.database.slow_query_threshold;
    read.json(async move { indexes::report(&state.store, db.pg.as_ref(), window, slow).await })
        .await
}

fn err(list: &[(u16, &'static str)]) -> BTreeMap<String, RefOr<OaResponse>> {
    errors(list)
}

struct SelectErrors;
impl IntoResponses for SelectErrors {
    fn responses() -> BTreeMap<String, RefOr<OaResponse>> {
        err(&[
            (400, "The body is not a JSON object, names a table or column the catalog does not know, or a value \
                PostgreSQL cannot read as its column's type"),
            (401, "Missing or wrong admin token or gateway key"),
            (404, "No database is configured (database.url)"),
            (413, "The body is larger than ingest.body_limit"),
            (415, "Content-Type is neither application/json nor text/plain"),
            (422, "A field breaks a rule; `field` names it"),
            (502, "PostgreSQL failed or cannot be reached"),
            (503, "Every pooled connection is busy"),
        ])
    }
}

struct CacheErrors;
impl IntoResponses for CacheErrors {
    fn responses() -> BTreeMap<String, RefOr<OaResponse>> {
        err(&[UNAUTHORIZED])
    }
}

impl From<SelectError> for ApiError {
    fn from(e: SelectError) -> Self {
        match e {
            SelectError::NoDatabase => ApiError::Missing(e.to_string()),
            SelectError::UnknownName(m) | SelectError::BadValue(m) => ApiError::UnknownName(m),
            SelectError::Invalid(field, message) => ApiError::invalid(None, field, message),
            SelectError::Pg(super::pg::PgError::Busy) => ApiError::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
            },
            SelectError::Pg(p) => ApiError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: p.to_string(),
            },
        }
    }
}

/// The admin token, or one of the gateway keys (`Authorization: Bearer` or `x-api-key`):
/// apps call the select cache from their servers with the key they already hold.
fn authorize(state: &AppState, db: &DbPerf, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = bearer(headers).or_else(|| {
        headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    });
    match given {
        None if state.admin_token.is_none() => Ok(()),
        None => Err(ApiError::Unauthorized),
        Some(t) if token_matches(state, t) => Ok(()),
        Some(t) => {
            let mut ok = false;
            for k in &db.gateway_keys {
                ok |= k.len() == t.len() && bool::from(k.as_bytes().ct_eq(t.as_bytes()));
            }
            if ok {
                Ok(())
            } else {
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// `POST /api/db/select`.
#[utoipa::path(post, path = "/api/db/select", tag = "Database",
    summary = "The guide's db.select: a parameterised SELECT on database.url, cached in memory",
    description = "Table and column names are checked against the catalog (an unknown one is 400, never \
        interpolated); filter values are bound. The answer is `{\"rows\": [...]}`, and `x-growth-cache` says \
        MISS or HIT; a hit is byte-for-byte the stored answer. Each call records its own timing row (cached \
        true on a hit). `ttl` 0 skips the cache.",
    request_body(content = SelectIn, content_type = "application/json"),
    security(("admin" = []), ("gatewayKey" = []), ("gatewayApiKey" = [])),
    responses((status = 200, description = "The rows", body = Object,
        headers(("x-growth-cache" = String, description = "MISS or HIT"))), SelectErrors))]
pub async fn select(
    State(state): State<AppState>,
    Extension(db): Db,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &db, &headers)?;
    let started = Instant::now();
    let bytes = body::read(&headers, body, state.config.ingest.body_limit).await?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Malformed(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Malformed("expected a JSON object".into()));
    }
    let req: SelectIn = parse_value(value, None)?;
    let Some(pg) = db.pg.as_ref() else {
        return Err(SelectError::NoDatabase.into());
    };
    let plan = select::plan_fresh(pg, &req, state.config.database.default_ttl).await?;
    let (body, hit) = match db.cache.get(&plan.key) {
        Some(b) => (b, true),
        None => {
            let b = select::run(pg, &plan).await?;
            db.cache.put(&plan, b.clone());
            (b, false)
        }
    };
    record(&state, &plan.sql, started, hit);
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-growth-cache",
        HeaderValue::from_static(if hit { "HIT" } else { "MISS" }),
    );
    Ok(resp)
}

/// Files the call's own timing row, so the cache hit rate on the Database page is real.
/// Written in the background: the caller does not wait for a commit it did not ask for.
fn record(state: &AppState, sql: &str, started: Instant, hit: bool) {
    let f = super::fingerprint::memo().get(sql);
    let now = chrono::Utc::now();
    let row = DatabaseRow {
        id: uuid::Uuid::new_v4(),
        query: sql.to_string(),
        duration: started.elapsed().as_secs_f64() * 1000.0,
        rows: None,
        cached: hit,
        user_id: None,
        ip: None,
        timestamp: now.timestamp_millis(),
        created_at: now.timestamp_micros(),
        fingerprint: Some(f.id),
        normalized_query: Some(f.text),
        request_id: None,
        route: Some("/api/db/select".into()),
        source: Some("growth-stack db.select".into()),
        event_time: None,
    };
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.append(Batch::Database(vec![row])).await {
            tracing::debug!(error = %e, "select timing not recorded");
        }
    });
}

/// `GET /api/db/cache`.
#[utoipa::path(get, path = "/api/db/cache", tag = "Database",
    summary = "The select cache: entries, capacity, hits and misses since start",
    security(("admin" = [])),
    responses((status = 200, description = "The statistics", body = CacheStats), CacheErrors))]
pub async fn cache(_: Admin, Extension(db): Db) -> Json<CacheStats> {
    Json(db.cache.stats())
}

/// `DELETE /api/db/cache` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClearQuery {
    /// Only this table's answers (`name` or `schema.name`); default all.
    #[param(nullable = false)]
    table: Option<String>,
}

/// `DELETE /api/db/cache`.
#[utoipa::path(delete, path = "/api/db/cache", tag = "Database",
    summary = "Drop cached select answers: all, or one table's (`?table=`)",
    params(ClearQuery), security(("admin" = []), ("gatewayKey" = []), ("gatewayApiKey" = [])),
    responses((status = 200, description = "How many answers were dropped", body = Object), CacheErrors))]
pub async fn clear_cache(
    State(state): State<AppState>,
    Extension(db): Db,
    headers: HeaderMap,
    Params(q): Params<ClearQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state, &db, &headers)?;
    let table = q.table.filter(|t| !t.is_empty());
    let removed = db.cache.invalidate(table.as_deref());
    Ok(Json(serde_json::json!({ "removed": removed })))
}
