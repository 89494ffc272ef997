//! Read answers served from the `ReadCache` (a few seconds of memory, so many open
//! dashboards asking the same question cost DuckDB one query). Ingestion never touches it.

use std::future::Future;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::ReadCache;

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
