//! A few seconds of memory for read responses, so many open dashboards asking the same
//! question cost DuckDB one query. Ingestion never touches it.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use lru::LruCache;
use serde::Serialize;

use crate::error::ApiError;

pub struct ReadCache {
    ttl: Duration,
    entries: Mutex<LruCache<String, (Instant, Bytes)>>,
}

impl ReadCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        ReadCache {
            ttl,
            entries: Mutex::new(LruCache::new(cap)),
        }
    }

    /// Entries held now (some may have expired and wait to be dropped).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((at, body)) if at.elapsed() < self.ttl => Some(body.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: String, body: Bytes) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.put(key, (Instant::now(), body));
    }

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
