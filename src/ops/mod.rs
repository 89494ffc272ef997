//! Operating the server: liveness, readiness and the OpenAPI document.

pub mod openapi;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

/// The ops routes; `doc` is the whole OpenAPI document (`app::openapi`), served as is.
pub fn routes(doc: &utoipa::openapi::OpenApi) -> Router<AppState> {
    let served = openapi::Served::new(doc);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/api/openapi.json",
            get(move || {
                let served = served.clone();
                async move { served }
            }),
        )
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while not shutting down and a read connection answers.
async fn readyz(State(state): State<AppState>) -> Response {
    let db = state
        .store
        .query(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i32>(0))?))
        .await;
    let (rows, commits) = state.store.stats();
    let body = json!({
        "status": if state.is_ready() && db.is_ok() { "ready" } else { "not_ready" },
        "shutting_down": !state.is_ready(),
        "database": db.as_ref().map_or_else(|e| e.to_string(), |_| "ok".to_string()),
        "queued_rows": state.store.queued_rows(),
        "disk_full": state.store.disk_full(),
        "rows_written": rows,
        "commits": commits,
    });
    let status = if state.is_ready() && db.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
