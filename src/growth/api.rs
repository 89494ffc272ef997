//! HTTP handlers for event and conversion reads.

use axum::extract::{OriginalUri, State};
use axum::response::Response;

use super::query;
use crate::error::ApiError;
use crate::http::{Admin, Window};
use crate::state::AppState;

pub async fn events(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::events(&state.store, window).await?)
        })
        .await
}

pub async fn conversions(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::conversions(&state.store, window).await?)
        })
        .await
}
