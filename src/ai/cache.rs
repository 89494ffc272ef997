//! The response cache: an LRU with a TTL per entry, an entry count and a byte budget, and
//! single flight so concurrent identical misses make one upstream call.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use bytes::Bytes;
use lru::LruCache;
use tokio::sync::watch;

use super::sse;
use super::wire::{Api, Usage};

/// One complete answer, kept in whichever form it arrived; the other form is made on
/// first use, so a stream can answer a JSON call and the other way round.
pub struct Answer {
    pub api: Api,
    pub provider: Arc<str>,
    pub model: String,
    pub demo: bool,
    pub usage: Usage,
    json: OnceLock<Bytes>,
    events: OnceLock<Arc<Events>>,
}

/// A stream's events; `usage_at` is OpenAI's usage-only chunk, sent only to clients
/// that asked for `stream_options.include_usage`.
pub struct Events {
    pub list: Vec<Bytes>,
    pub usage_at: Option<usize>,
}

impl Answer {
    pub fn from_json(
        api: Api,
        provider: Arc<str>,
        model: String,
        demo: bool,
        usage: Usage,
        json: Bytes,
    ) -> Answer {
        let a = Answer::empty(api, provider, model, demo, usage);
        let _ = a.json.set(json);
        a
    }

    pub fn from_events(
        api: Api,
        provider: Arc<str>,
        model: String,
        usage: Usage,
        events: Events,
    ) -> Answer {
        let a = Answer::empty(api, provider, model, false, usage);
        let _ = a.events.set(Arc::new(events));
        a
    }

    fn empty(api: Api, provider: Arc<str>, model: String, demo: bool, usage: Usage) -> Answer {
        Answer {
            api,
            provider,
            model,
            demo,
            usage,
            json: OnceLock::new(),
            events: OnceLock::new(),
        }
    }

    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let events = self.events.get().map(|e| e.list.as_slice()).unwrap_or(&[]);
                Bytes::from(sse::events_to_json(self.api, events).to_string())
            })
            .clone()
    }

    pub fn events(&self) -> Arc<Events> {
        self.events
            .get_or_init(|| {
                let json = self.json.get().cloned().unwrap_or_default();
                let value = serde_json::from_slice(&json).unwrap_or_default();
                let (list, usage_at) = sse::json_to_events(self.api, &value);
                Arc::new(Events { list, usage_at })
            })
            .clone()
    }

    /// Bytes held, counting the form it was stored in twice for the one made later.
    fn size(&self) -> usize {
        let json = self.json.get().map_or(0, Bytes::len);
        let events = self
            .events
            .get()
            .map_or(0, |e| e.list.iter().map(Bytes::len).sum());
        2 * (json + events) + self.model.len() + 128
    }
}

/// What a request allows: `Cache-Control: no-cache|no-store|max-age=N`,
/// `cf-aig-skip-cache: true`, `cf-aig-cache-ttl: N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directives {
    pub read: bool,
    pub write: bool,
    pub ttl: Option<Duration>,
}

impl Directives {
    pub fn from_headers(h: &HeaderMap) -> Directives {
        let mut d = Directives {
            read: true,
            write: true,
            ttl: None,
        };
        let value = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        if let Some(cc) = value("cache-control") {
            for part in cc.split(',').map(|p| p.trim().to_ascii_lowercase()) {
                match part.as_str() {
                    "no-cache" => d.read = false,
                    "no-store" => d.write = false,
                    p => {
                        if let Some(n) = p.strip_prefix("max-age=").and_then(|n| n.parse().ok()) {
                            d.ttl = Some(ttl_secs(n));
                        }
                    }
                }
            }
        }
        if value("cf-aig-skip-cache").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            d.read = false;
            d.write = false;
        }
        if let Some(n) = value("cf-aig-cache-ttl").and_then(|n| n.parse().ok()) {
            d.ttl = Some(ttl_secs(n));
        }
        d
    }

    /// No entry outlives a year: a header asking for more (up to u64::MAX seconds) would
    /// overflow `Instant + ttl` and panic the request's task.
    pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

    pub fn none() -> Directives {
        Directives {
            read: false,
            write: false,
            ttl: None,
        }
    }
}

fn ttl_secs(n: u64) -> Duration {
    Duration::from_secs(n).min(Directives::MAX_TTL)
}

struct Entry {
    answer: Arc<Answer>,
    stored: Instant,
    expires: Instant,
    size: usize,
}

struct Inner {
    lru: LruCache<u128, Entry>,
    bytes: usize,
}

pub struct Cache {
    inner: Mutex<Inner>,
    max_bytes: usize,
    default_ttl: Duration,
    flights: Mutex<HashMap<u128, watch::Receiver<()>>>,
}

/// The result of asking for a key that is not cached.
pub enum Flight {
    /// This call goes upstream; others with the same key wait until the guard drops.
    Lead(FlightGuard),
    /// Another call is already fetching it: wait, then look again.
    Wait(watch::Receiver<()>),
}

pub struct FlightGuard {
    cache: Arc<Cache>,
    key: u128,
    _done: watch::Sender<()>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        // Leave the map before the sender drops, so no waiter can join a finished flight.
        self.cache.flights.lock().remove(&self.key);
    }
}

impl Cache {
    pub fn new(entries: usize, max_bytes: usize, default_ttl: Duration) -> Cache {
        Cache {
            inner: Mutex::new(Inner {
                lru: LruCache::new(NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN)),
                bytes: 0,
            }),
            max_bytes,
            default_ttl,
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh entry, if any; `max_age` (from the request) can make an entry too old.
    pub fn get(&self, key: u128, max_age: Option<Duration>) -> Option<Arc<Answer>> {
        let mut inner = self.inner.lock();
        let now = Instant::now();
        let entry = inner.lru.get(&key)?;
        let fresh = entry.expires > now
            && max_age.is_none_or(|age| now.duration_since(entry.stored) <= age);
        if fresh {
            return Some(entry.answer.clone());
        }
        if entry.expires <= now {
            if let Some(old) = inner.lru.pop(&key) {
                inner.bytes -= old.size;
            }
        }
        None
    }

    pub fn put(&self, key: u128, answer: Arc<Answer>, ttl: Option<Duration>) {
        let ttl = ttl.unwrap_or(self.default_ttl);
        let size = answer.size();
        if ttl.is_zero() || size > self.max_bytes {
            return;
        }
        let now = Instant::now();
        let entry = Entry {
            answer,
            stored: now,
            expires: now + ttl,
            size,
        };
        let mut inner = self.inner.lock();
        inner.bytes += size;
        if let Some((_, old)) = inner.lru.push(key, entry) {
            inner.bytes -= old.size;
        }
        while inner.bytes > self.max_bytes {
            match inner.lru.pop_lru() {
                Some((_, old)) => inner.bytes -= old.size,
                None => break,
            }
        }
    }

    pub fn flight(self: &Arc<Self>, key: u128) -> Flight {
        let mut flights = self.flights.lock();
        if let Some(rx) = flights.get(&key) {
            return Flight::Wait(rx.clone());
        }
        let (tx, rx) = watch::channel(());
        flights.insert(key, rx);
        Flight::Lead(FlightGuard {
            cache: self.clone(),
            key,
            _done: tx,
        })
    }

    /// (entries, bytes)
    pub fn stats(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.lru.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Arc<Answer> {
        Arc::new(Answer::from_json(
            Api::OpenAi,
            Arc::from("p"),
            "m".into(),
            false,
            Usage::default(),
            Bytes::from(vec![b'x'; n]),
        ))
    }

    #[test]
    fn ttl_count_and_byte_budget() {
        let c = Cache::new(3, 10_000, Duration::from_secs(60));
        c.put(1, answer(10), None);
        c.put(2, answer(10), Some(Duration::ZERO));
        assert!(c.get(1, None).is_some());
        assert!(c.get(2, None).is_none(), "ttl 0 is not stored");
        c.put(3, answer(10), None);
        c.put(4, answer(10), None);
        c.put(5, answer(10), None);
        assert!(c.get(1, None).is_none(), "count bound evicts the oldest");
        assert_eq!(c.stats().0, 3);
        c.put(6, answer(4_000), None);
        assert!(c.stats().1 <= 10_000, "byte budget holds");
        assert!(c.get(6, None).is_some());
        assert!(
            c.get(6, Some(Duration::ZERO)).is_none()
                || c.get(6, Some(Duration::from_secs(5))).is_some()
        );
        c.put(7, answer(20_000), None);
        assert!(
            c.get(7, None).is_none(),
            "larger than the budget: not stored"
        );
    }

    #[test]
    fn expired_entries_are_not_served() {
        let c = Cache::new(3, 10_000, Duration::from_millis(1));
        c.put(1, answer(10), None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(c.get(1, None).is_none());
        assert_eq!(c.stats(), (0, 0));
    }

    #[tokio::test]
    async fn single_flight_releases_waiters() {
        let c = Arc::new(Cache::new(3, 10_000, Duration::from_secs(60)));
        let Flight::Lead(guard) = c.flight(9) else {
            panic!("first leads")
        };
        let Flight::Wait(mut rx) = c.flight(9) else {
            panic!("second waits")
        };
        c.put(9, answer(5), None);
        drop(guard);
        assert!(rx.changed().await.is_err(), "leader gone");
        assert!(c.get(9, None).is_some());
        assert!(matches!(c.flight(9), Flight::Lead(_)));
    }

    #[test]
    fn directives_from_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(
            Directives::from_headers(&h),
            Directives {
                read: true,
                write: true,
                ttl: None
            }
        );
        h.insert("cache-control", "no-cache, max-age=30".parse().unwrap());
        assert_eq!(
            Directives::from_headers(&h),
            Directives {
                read: false,
                write: true,
                ttl: Some(Duration::from_secs(30))
            }
        );
        h.insert("cache-control", "no-store".parse().unwrap());
        assert!(!Directives::from_headers(&h).write);
        let mut h = HeaderMap::new();
        h.insert("cf-aig-skip-cache", "true".parse().unwrap());
        h.insert("cf-aig-cache-ttl", "5".parse().unwrap());
        assert_eq!(
            Directives::from_headers(&h),
            Directives {
                read: false,
                write: false,
                ttl: Some(Duration::from_secs(5))
            }
        );
    }

    proptest::proptest! {
        /// Arbitrary cache headers: directives, never a panic, and a stored answer's
        /// expiry that fits (a huge max-age used to overflow `Instant + ttl`).
        #[test]
        fn any_cache_headers(cc in "\\PC*", skip in "\\PC*", ttl in "\\PC*", n in proptest::prelude::any::<u64>()) {
            let mut h = HeaderMap::new();
            for (name, v) in [("cache-control", cc), ("cf-aig-skip-cache", skip), ("cf-aig-cache-ttl", ttl)] {
                if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
                    h.insert(name, v);
                }
            }
            let d = Directives::from_headers(&h);
            let c = Cache::new(4, 1 << 20, Duration::from_secs(60));
            c.put(1, answer(10), d.ttl);
            h.insert("cache-control", format!("max-age={n}").parse().unwrap());
            let d = Directives::from_headers(&h);
            proptest::prop_assert!(d.ttl.unwrap_or_default() <= Directives::MAX_TTL);
            c.put(2, answer(10), d.ttl);
        }
    }
}
