//! A few seconds of memory for read answers, so many open dashboards asking the same
//! question cost DuckDB one query. How an answer is served from it: `http::cache`.

use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

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
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer stored under `key`, if it is younger than the TTL.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let mut entries = self.entries.lock();
        match entries.get(key) {
            Some((at, body)) if at.elapsed() < self.ttl => Some(body.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: String, body: Bytes) {
        let mut entries = self.entries.lock();
        entries.put(key, (Instant::now(), body));
    }
}
