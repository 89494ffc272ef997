//! Read answers served from the `ReadCache` (a few seconds of memory, so many open
//! dashboards asking the same question cost DuckDB one query). Ingestion never touches it.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::Admin;
use crate::error::ApiError;
use crate::state::{AppState, ReadCache};

// `ReadCache` is held by `AppState`, below this layer; answering from it is web plumbing,
// so that half of its methods lives here.
impl ReadCache {
    /// The JSON answer for `key`, computed by `f` only when not cached within the TTL;
    /// without a key it is always computed.
    pub async fn json<T, F>(&self, key: Option<String>, f: F) -> Result<Response, ApiError>
    where
        T: Serialize,
        F: Future<Output = Result<T, ApiError>>,
    {
        let cached = key.as_deref().and_then(|k| self.get(k));
        let body = match cached {
            Some(body) => body,
            None => {
                let value = f.await?;
                let body = Bytes::from(
                    serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.to_string()))?,
                );
                if let Some(key) = key {
                    self.put(key, body.clone());
                }
                body
            }
        };
        let mut resp = body.into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}

/// The one way a read handler answers: the admin check, then the JSON of `f`, shared for
/// a few seconds between dashboards (session cookie) and always fresh for API clients
/// (bearer token), so a script that writes then reads sees its write.
///
/// ```ignore
/// pub async fn get(State(state): State<AppState>, read: CachedRead, window: Window)
///     -> Result<Response, ApiError> {
///     read.json(query::summary(&state.store, window)).await
/// }
/// ```
pub struct CachedRead {
    cache: std::sync::Arc<ReadCache>,
    key: Option<String>,
}

impl CachedRead {
    /// Answers with `f`'s value as JSON, computed only when not cached.
    pub async fn json<T, E, F>(self, f: F) -> Result<Response, ApiError>
    where
        T: Serialize,
        E: Into<ApiError>,
        F: Future<Output = Result<T, E>>,
    {
        self.cache
            .json(self.key, async { f.await.map_err(Into::into) })
            .await
    }
}

impl FromRequestParts<AppState> for CachedRead {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |u| &u.0);
        Ok(CachedRead {
            key: admin.cache_key(uri),
            cache: state.read_cache.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn computes_once_within_ttl() {
        let cache = ReadCache::new(Duration::from_secs(60), 8);
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            cache
                .json(Some("k".into()), async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ApiError>(1)
                })
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let expired = ReadCache::new(Duration::ZERO, 8);
        for _ in 0..2 {
            expired
                .json(Some("k".into()), async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, ApiError>(1)
                })
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
