//! HTTP handlers for query-timing reads, and the OpenAPI operations of this capability
//! (ingest is `http::ingest::handler::<QueryTimingIn>`).

use axum::extract::State;
use axum::response::Response;
use utoipa::OpenApi;

use super::ingest::QueryTimingIn;
use super::query;
use crate::error::ApiError;
use crate::http::ingest::Accepted;
use crate::http::openapi::{IngestErrors, OneOrMany, ReadErrors};
use crate::http::{CachedRead, Window, WindowQuery};
use crate::state::AppState;

/// The body of `POST /api/analytics/database-performance`.
type QueryTimingsBody = OneOrMany<QueryTimingIn>;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(post, get))]
pub(super) struct Doc;

/// Carries the OpenAPI description of `POST /api/analytics/database-performance`.
#[utoipa::path(post, path = "/api/analytics/database-performance", tag = "Database",
    summary = "Record one query timing or a batch of them",
    description = "Answers 200 only after the rows are committed. A batch with one invalid item writes nothing. \
        `text/plain` bodies (navigator.sendBeacon) are parsed as JSON too.",
    request_body(content = QueryTimingsBody, content_type = "application/json"),
    params(crate::http::event_time::SentAtQuery),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post() {}

/// `GET /api/analytics/database-performance`.
#[utoipa::path(get, path = "/api/analytics/database-performance", tag = "Database",
    summary = "Query latency, slow-query rate, cache hits, slowest queries, newest timings",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The report", body = Object), ReadErrors))]
pub async fn get(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    let slow = state.config.database.slow_query_threshold;
    read.json(query::summary(&state.store, window, slow)).await
}
