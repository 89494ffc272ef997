//! Gateway rate limits: requests per minute per user, per gateway key and overall
//! (`governor`), and tokens per minute per user, estimated before a call and corrected
//! after it (a bucket of our own, because a GCRA cannot give back an over-estimate).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Instant;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::wire::{GatewayError, LimitScope};
use crate::config::AiConfig;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;
type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// Calls without a user share this key, so anonymous traffic is limited too.
const ANONYMOUS: &str = "";

pub struct Limits {
    user: Option<(u32, Keyed<String>)>,
    key: Option<(u32, Keyed<usize>)>,
    global: Option<(u32, Direct)>,
    tokens: Option<Tokens>,
}

/// What the caller may still do this minute, for the `x-ratelimit-*` reply headers.
#[derive(Debug, Clone, Copy)]
pub struct Remaining {
    pub limit: u32,
    pub remaining: u32,
}

fn quota(per_minute: u32) -> Option<(u32, Quota)> {
    NonZeroU32::new(per_minute).map(|n| (per_minute, Quota::per_minute(n)))
}

fn retry_after(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl Limits {
    pub fn new(c: &AiConfig) -> Limits {
        Limits {
            user: quota(c.rate_limit_per_minute)
                .map(|(n, q)| (n, RateLimiter::keyed(q).with_middleware())),
            key: quota(c.key_rate_limit_per_minute)
                .map(|(n, q)| (n, RateLimiter::keyed(q).with_middleware())),
            global: quota(c.global_rate_limit_per_minute)
                .map(|(n, q)| (n, RateLimiter::direct(q).with_middleware())),
            tokens: (c.tokens_per_minute > 0).then(|| Tokens::new(c.tokens_per_minute)),
        }
    }

    /// Counts one request against every request limit (cache hits included).
    pub fn request(
        &self,
        key: usize,
        user: Option<&str>,
    ) -> Result<Option<Remaining>, GatewayError> {
        let refuse = |scope, limit, nu: &governor::NotUntil<_>| GatewayError::RateLimited {
            scope,
            limit,
            retry_after: retry_after(nu),
        };
        if let Some((n, l)) = &self.global {
            l.check().map_err(|e| refuse(LimitScope::Global, *n, &e))?;
        }
        if let Some((n, l)) = &self.key {
            l.check_key(&key)
                .map_err(|e| refuse(LimitScope::Key, *n, &e))?;
        }
        match &self.user {
            Some((n, l)) => {
                let user = user.unwrap_or(ANONYMOUS).to_string();
                let snap = l
                    .check_key(&user)
                    .map_err(|e| refuse(LimitScope::User, *n, &e))?;
                Ok(Some(Remaining {
                    limit: *n,
                    remaining: snap.remaining_burst_capacity(),
                }))
            }
            None => Ok(None),
        }
    }

    /// Takes `estimate` tokens from the user's minute, before the call.
    pub fn reserve_tokens(&self, user: Option<&str>, estimate: u32) -> Result<(), GatewayError> {
        match &self.tokens {
            Some(t) => t.reserve(user.unwrap_or(ANONYMOUS), estimate),
            None => Ok(()),
        }
    }

    /// After the call: gives back an over-estimate or takes the rest of an under-estimate.
    pub fn correct_tokens(&self, user: Option<&str>, estimate: u32, actual: u32) {
        if let Some(t) = &self.tokens {
            t.correct(user.unwrap_or(ANONYMOUS), estimate, actual);
        }
    }

    /// Forgets idle users so the maps do not grow without bound.
    pub fn cleanup(&self) {
        if let Some((_, l)) = &self.user {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some((_, l)) = &self.key {
            l.retain_recent();
        }
        if let Some(t) = &self.tokens {
            t.cleanup();
        }
    }
}

/// A token bucket per user that refills continuously to `per_minute` and may go into
/// debt when a call used more than estimated.
struct Tokens {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Tokens {
    fn new(per_minute: u32) -> Tokens {
        Tokens {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn refill(&self, level: f64, at: Instant, now: Instant) -> f64 {
        (level + now.duration_since(at).as_secs_f64() * self.rate_per_sec())
            .min(f64::from(self.per_minute))
    }

    fn reserve(&self, user: &str, estimate: u32) -> Result<(), GatewayError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        let cap = f64::from(self.per_minute);
        let (level, at) = buckets.get(user).copied().unwrap_or((cap, now));
        let level = self.refill(level, at, now);
        // A call larger than the whole minute may go when the bucket is full.
        let need = f64::from(estimate).min(cap);
        if level + 1e-9 < need {
            let wait = ((need - level) / self.rate_per_sec()).ceil().max(1.0) as u64;
            buckets.insert(user.to_string(), (level, now));
            return Err(GatewayError::RateLimited {
                scope: LimitScope::Tokens,
                limit: self.per_minute,
                retry_after: wait,
            });
        }
        buckets.insert(user.to_string(), (level - f64::from(estimate), now));
        Ok(())
    }

    fn correct(&self, user: &str, estimate: u32, actual: u32) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if let Some((level, at)) = buckets.get(user).copied() {
            let level = self.refill(level, at, now) + f64::from(estimate) - f64::from(actual);
            buckets.insert(
                user.to_string(),
                (level.min(f64::from(self.per_minute)), now),
            );
        }
    }

    fn cleanup(&self) {
        let now = Instant::now();
        let cap = f64::from(self.per_minute);
        let mut buckets = self.buckets.lock();
        buckets.retain(|_, (level, at)| self.refill(*level, *at, now) < cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user: u32, key: u32, global: u32, tokens: u32) -> AiConfig {
        AiConfig {
            rate_limit_per_minute: user,
            key_rate_limit_per_minute: key,
            global_rate_limit_per_minute: global,
            tokens_per_minute: tokens,
            ..AiConfig::default()
        }
    }

    #[test]
    fn per_user_requests() {
        let l = Limits::new(&config(2, 0, 0, 0));
        assert_eq!(l.request(0, Some("a")).unwrap().unwrap().remaining, 1);
        assert!(l.request(0, Some("a")).is_ok());
        let e = l.request(0, Some("a")).unwrap_err();
        assert!(
            matches!(e, GatewayError::RateLimited { scope: LimitScope::User, limit: 2, retry_after } if retry_after >= 1)
        );
        assert!(
            l.request(0, Some("b")).is_ok(),
            "other users are not affected"
        );
    }

    #[test]
    fn per_key_and_global() {
        // A call refused by one limit still counted against the limits checked before it.
        let l = Limits::new(&config(0, 1, 4, 0));
        assert!(l.request(0, None).is_ok());
        assert!(matches!(
            l.request(0, None),
            Err(GatewayError::RateLimited {
                scope: LimitScope::Key,
                ..
            })
        ));
        assert!(l.request(1, None).is_ok());
        assert!(l.request(2, None).is_ok());
        assert!(matches!(
            l.request(3, None),
            Err(GatewayError::RateLimited {
                scope: LimitScope::Global,
                ..
            })
        ));
        assert!(matches!(
            l.request(4, None),
            Err(GatewayError::RateLimited {
                scope: LimitScope::Global,
                ..
            })
        ));
    }

    #[test]
    fn tokens_are_estimated_then_corrected() {
        let l = Limits::new(&config(0, 0, 0, 1000));
        l.reserve_tokens(Some("u"), 600).unwrap();
        assert!(l.reserve_tokens(Some("u"), 600).is_err(), "400 left");
        // The call used only 100: 500 come back.
        l.correct_tokens(Some("u"), 600, 100);
        l.reserve_tokens(Some("u"), 600).unwrap();
        // This one used 900: the user is in debt and waits.
        l.correct_tokens(Some("u"), 600, 900);
        assert!(matches!(
            l.reserve_tokens(Some("u"), 10),
            Err(GatewayError::RateLimited {
                scope: LimitScope::Tokens,
                ..
            })
        ));
        assert!(
            l.reserve_tokens(Some("v"), 5000).is_ok(),
            "larger than a minute goes when full"
        );
    }
}
