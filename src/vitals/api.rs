//! HTTP handlers for performance reads.

use axum::extract::{OriginalUri, State};
use axum::response::Response;

use super::query;
use crate::error::ApiError;
use crate::http::{Admin, Window};
use crate::state::AppState;

pub async fn get(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::summary(&state.store, window).await?)
        })
        .await
}
