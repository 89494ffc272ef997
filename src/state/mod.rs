//! `AppState`: what every handler may reach: config, store, auth secrets, limiters, and
//! the shared in-memory state (sessions, the read cache, recently seen metrics).

mod read_cache;
mod sessions;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Config, IpMode};
use crate::store::Store;

pub use read_cache::ReadCache;
pub use sessions::{Sessions, SESSION_TTL};

pub type IpLimiter = DefaultKeyedRateLimiter<IpAddr>;

/// Short enough that a refreshing dashboard sees new data; long enough that ten open
/// dashboards cost one query.
const READ_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Metric instances remembered for re-report detection: hours of traffic at 10/s.
const RECENT_METRICS: usize = 200_000;

/// A bounded set of recently seen key hashes (least recently seen forgotten first).
pub struct RecentKeys(Mutex<lru::LruCache<u64, ()>>);

impl RecentKeys {
    pub fn new(capacity: usize) -> Self {
        let cap = std::num::NonZeroUsize::new(capacity).unwrap_or(std::num::NonZeroUsize::MIN);
        RecentKeys(Mutex::new(lru::LruCache::new(cap)))
    }

    /// Records `key`; true when it was already there.
    pub fn seen(&self, key: u64) -> bool {
        let mut cache = self.0.lock();
        cache.put(key, ()).is_some()
    }
}

/// What every handler may reach. A handle: every request's extractors clone it, and one
/// shared count costs less than one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    /// `None` only with `--no-auth` (loopback only).
    pub admin_token: Option<Arc<str>>,
    pub privacy: IpPolicy,
    pub ingest_limiter: Option<Arc<IpLimiter>>,
    pub sessions: Arc<Sessions>,
    /// Read answers for a few seconds, shared by every open dashboard.
    pub read_cache: Arc<ReadCache>,
    /// Metric instances reported lately, so a repeated report is recognised at ingest.
    pub recent_metrics: Arc<RecentKeys>,
    ready: AtomicBool,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        admin_token: Option<String>,
        ip_salt: [u8; 32],
    ) -> Self {
        let sessions = Arc::new(Sessions::new(store.clone()));
        let ingest_limiter =
            std::num::NonZeroU32::new(config.ingest.rate_limit_per_ip).map(|rate| {
                let burst = match config.ingest.rate_limit_burst {
                    0 => rate.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(1)),
                    b => std::num::NonZeroU32::new(b.max(rate.get())).unwrap_or(rate),
                };
                Arc::new(RateLimiter::keyed(
                    Quota::per_second(rate).allow_burst(burst),
                ))
            });
        Self(Arc::new(Shared {
            privacy: IpPolicy {
                mode: config.privacy.ip,
                salt: Arc::new(ip_salt),
            },
            admin_token: admin_token.map(Arc::from),
            config: Arc::new(config),
            store,
            ingest_limiter,
            sessions,
            read_cache: Arc::new(ReadCache::new(READ_CACHE_TTL, 256)),
            recent_metrics: Arc::new(RecentKeys::new(RECENT_METRICS)),
            ready: AtomicBool::new(true),
        }))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

/// How an IP address is turned into what is stored.
#[derive(Clone)]
pub struct IpPolicy {
    pub mode: IpMode,
    pub salt: Arc<[u8; 32]>,
}

impl IpPolicy {
    pub fn apply(&self, ip: IpAddr) -> Option<String> {
        match self.mode {
            IpMode::None => None,
            IpMode::Full => Some(ip.to_string()),
            IpMode::Truncate => Some(truncate(ip).to_string()),
            IpMode::Hash => {
                use sha2::{Digest, Sha256};
                let mut h = Sha256::new();
                h.update(self.salt.as_slice());
                h.update(ip.to_string().as_bytes());
                Some(hex::encode(&h.finalize()[..16]))
            }
        }
    }
}

fn truncate(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => truncate(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: IpMode) -> IpPolicy {
        IpPolicy {
            mode,
            salt: Arc::new([7; 32]),
        }
    }

    #[test]
    fn ip_modes() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:abcd:12::1".parse().unwrap();
        assert_eq!(policy(IpMode::Truncate).apply(v4).unwrap(), "203.0.113.0");
        assert_eq!(
            policy(IpMode::Truncate).apply(v6).unwrap(),
            "2001:db8:abcd::"
        );
        assert_eq!(policy(IpMode::Full).apply(v4).unwrap(), "203.0.113.77");
        assert_eq!(policy(IpMode::None).apply(v4), None);
        let h = policy(IpMode::Hash).apply(v4).unwrap();
        assert_eq!(h.len(), 32);
        assert_eq!(Some(h.clone()), policy(IpMode::Hash).apply(v4), "stable");
        assert_ne!(Some(h), policy(IpMode::Hash).apply(v6));
        assert!(!policy(IpMode::Hash).apply(v4).unwrap().contains("203"));
    }
}
