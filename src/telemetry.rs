//! Process-wide counters that hot paths bump with a relaxed atomic add (no lock, no
//! allocation): HTTP requests and latency per route, ingest rows, group-commit sizes, AI
//! gateway calls. `/metrics` and the host sampler read them; nothing here imports the rest.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use parking_lot::RwLock;

/// Upper bounds of the request latency buckets, in seconds (the last bucket is +Inf).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the rows-per-group-commit buckets.
pub const COMMIT_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0,
];
/// Routes are a fixed set (axum's matched path), so this never fills in practice; a
/// request that finds no free slot is counted under the `other` route.
const ROUTE_SLOTS: usize = 128;
const STREAM_SLOTS: usize = 16;

pub static HTTP: HttpStats = HttpStats::new();
pub static INGEST: Named = Named::new();
pub static COMMITS: Histogram<12> = Histogram::new();
pub static AI: AiStats = AiStats::new();
static PROBES: RwLock<Vec<Probe>> = parking_lot::const_rwlock(Vec::new());

/// A histogram whose buckets are plain atomics (each holds its own count, not cumulative).
pub struct Histogram<const N: usize> {
    pub buckets: [AtomicU64; N],
    /// In the unit the caller observes times 1e6 (microseconds for seconds).
    sum_micro: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    pub const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; N],
            sum_micro: AtomicU64::new(0),
        }
    }

    /// Records `v` against `bounds` (N-1 upper bounds; the last bucket is +Inf).
    pub fn observe(&self, bounds: &[f64], v: f64) {
        let i = bounds.iter().position(|b| v <= *b).unwrap_or(N - 1);
        self.buckets[i.min(N - 1)].fetch_add(1, Relaxed);
        self.sum_micro.fetch_add((v * 1e6) as u64, Relaxed);
    }

    /// (per-bucket counts, sum).
    pub fn snapshot(&self) -> ([u64; N], f64) {
        let counts = std::array::from_fn(|i| self.buckets[i].load(Relaxed));
        (counts, self.sum_micro.load(Relaxed) as f64 / 1e6)
    }
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// One (method, route) of the HTTP layer.
pub struct RouteStats {
    key: OnceLock<(&'static str, Box<str>)>,
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub status: [AtomicU64; 5],
    pub latency: Histogram<15>,
}

impl RouteStats {
    const fn new() -> Self {
        RouteStats {
            key: OnceLock::new(),
            status: [const { AtomicU64::new(0) }; 5],
            latency: Histogram::new(),
        }
    }

    /// (method, route) once the slot is in use.
    pub fn key(&self) -> Option<(&'static str, &str)> {
        self.key.get().map(|(m, p)| (*m, &**p))
    }
}

pub struct HttpStats {
    slots: [RouteStats; ROUTE_SLOTS],
    other: RouteStats,
    /// Accepted TCP connections not yet closed.
    pub open_connections: AtomicI64,
    pub in_flight: AtomicI64,
}

impl HttpStats {
    const fn new() -> Self {
        HttpStats {
            slots: [const { RouteStats::new() }; ROUTE_SLOTS],
            other: RouteStats::new(),
            open_connections: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
        }
    }

    /// Counts one finished request. The route's slot is found by hashing; the first
    /// request of a route copies its name once, every later one only adds to atomics.
    pub fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let s = self.slot(method, route);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        s.status[class].fetch_add(1, Relaxed);
        s.latency.observe(&LATENCY_BUCKETS, seconds);
    }

    fn slot(&self, method: &'static str, route: &str) -> &RouteStats {
        let start = fnv(method, route) as usize;
        for i in 0..ROUTE_SLOTS {
            let slot = &self.slots[(start + i) % ROUTE_SLOTS];
            let key = match slot.key.get() {
                Some(k) => k,
                None => slot.key.get_or_init(|| (method, route.into())),
            };
            if key.0 == method && &*key.1 == route {
                return slot;
            }
        }
        &self.other
    }

    /// Every route seen so far (and `other` when it was used).
    pub fn routes(&self) -> impl Iterator<Item = (&'static str, &str, &RouteStats)> {
        self.slots
            .iter()
            .filter_map(|s| s.key().map(|(m, p)| (m, p, s)))
            .chain(
                (self.other.status.iter().any(|c| c.load(Relaxed) > 0)).then_some((
                    "OTHER",
                    "other",
                    &self.other,
                )),
            )
    }

    /// All routes together: (requests, 5xx responses, latency bucket counts).
    pub fn totals(&self) -> (u64, u64, [u64; 15]) {
        let mut requests = 0;
        let mut errors = 0;
        let mut buckets = [0u64; 15];
        for (_, _, s) in self.routes() {
            requests += s.status.iter().map(|c| c.load(Relaxed)).sum::<u64>();
            errors += s.status[4].load(Relaxed);
            for (b, c) in buckets.iter_mut().zip(&s.latency.buckets) {
                *b += c.load(Relaxed);
            }
        }
        (requests, errors, buckets)
    }
}

fn fnv(method: &str, route: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in method.bytes().chain(route.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Counters keyed by a static name (an ingest stream's table).
pub struct Named {
    slots: [(OnceLock<&'static str>, AtomicU64, AtomicU64); STREAM_SLOTS],
}

impl Named {
    const fn new() -> Self {
        Named {
            slots: [const { (OnceLock::new(), AtomicU64::new(0), AtomicU64::new(0)) };
                STREAM_SLOTS],
        }
    }

    /// One accepted ingest call of `rows` rows into `name`.
    pub fn add(&self, name: &'static str, rows: u64) {
        for (key, calls, total) in &self.slots {
            let k = match key.get() {
                Some(k) => *k,
                None => *key.get_or_init(|| name),
            };
            if k == name {
                calls.fetch_add(1, Relaxed);
                total.fetch_add(rows, Relaxed);
                return;
            }
        }
    }

    /// (name, calls, rows) for every name seen.
    pub fn snapshot(&self) -> Vec<(&'static str, u64, u64)> {
        self.slots
            .iter()
            .filter_map(|(k, c, r)| k.get().map(|k| (*k, c.load(Relaxed), r.load(Relaxed))))
            .collect()
    }
}

/// Calls the AI gateway served.
pub struct AiStats {
    pub calls: AtomicU64,
    pub cache_hits: AtomicU64,
    pub errors: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
}

impl AiStats {
    const fn new() -> Self {
        AiStats {
            calls: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
        }
    }

    pub fn record(
        &self,
        cache_hit: bool,
        success: bool,
        prompt: Option<i32>,
        completion: Option<i32>,
    ) {
        self.calls.fetch_add(1, Relaxed);
        if cache_hit {
            self.cache_hits.fetch_add(1, Relaxed);
        }
        if !success {
            self.errors.fetch_add(1, Relaxed);
        }
        let n = |v: Option<i32>| v.map_or(0, |v| u64::try_from(v).unwrap_or(0));
        self.prompt_tokens.fetch_add(n(prompt), Relaxed);
        self.completion_tokens.fetch_add(n(completion), Relaxed);
    }
}

/// A gauge read at scrape time from whoever owns the value (a cache's size).
pub struct Probe {
    pub name: &'static str,
    pub help: &'static str,
    pub read: Box<dyn Fn() -> f64 + Send + Sync>,
}

/// Adds a gauge to `/metrics`; the composition root registers the caches' sizes.
pub fn probe(
    name: &'static str,
    help: &'static str,
    read: impl Fn() -> f64 + Send + Sync + 'static,
) {
    let mut probes = PROBES.write();
    probes.retain(|p| p.name != name);
    probes.push(Probe {
        name,
        help,
        read: Box::new(read),
    });
}

/// (name, help, value) of every registered probe.
pub fn probes() -> Vec<(&'static str, &'static str, f64)> {
    let probes = PROBES.read();
    probes
        .iter()
        .map(|p| (p.name, p.help, (p.read)()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_keep_their_own_counts() {
        let h = HttpStats::new();
        h.record("GET", "/a", 200, 0.0004);
        h.record("GET", "/a", 503, 0.2);
        h.record("POST", "/a", 200, 20.0);
        let a: Vec<_> = h.routes().filter(|(_, p, _)| *p == "/a").collect();
        assert_eq!(a.len(), 2);
        let (_, _, get) = a.iter().find(|(m, _, _)| *m == "GET").unwrap();
        assert_eq!(get.status[1].load(Relaxed), 1);
        assert_eq!(get.status[4].load(Relaxed), 1);
        let (counts, sum) = get.latency.snapshot();
        assert_eq!(counts[0], 1, "0.4 ms in the first bucket");
        assert_eq!(counts[8], 1, "200 ms in the 250 ms bucket");
        assert!((sum - 0.2004).abs() < 1e-6);
        let (requests, errors, buckets) = h.totals();
        assert_eq!((requests, errors), (3, 1));
        assert_eq!(buckets[14], 1, "20 s lands in +Inf");
    }

    #[test]
    fn full_table_falls_back_to_other() {
        let h = HttpStats::new();
        for i in 0..ROUTE_SLOTS + 3 {
            h.record("GET", &format!("/r{i}"), 200, 0.001);
        }
        assert_eq!(h.totals().0, (ROUTE_SLOTS + 3) as u64);
        assert!(h.routes().any(|(_, p, _)| p == "other"));
    }
}
