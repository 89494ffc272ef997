//! The response cache as a call meets it: the key when the call may read or write the
//! cache, a fresh answer on a hit, and single flight (one of many identical calls asks
//! the provider while the others wait for its answer).

use std::sync::Arc;

use axum::http::HeaderValue;

use super::record::{Ended, Meta};
use super::request::Call;
use super::Gateway;
use crate::ai::cache::{Answer, Directives, Flight, FlightGuard};
use crate::ai::wire;

/// How the answer was found, for `x-growth-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Bypass,
}

impl CacheStatus {
    pub(super) fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        })
    }
}

/// What the cache decided for a call.
pub(super) enum Lookup {
    /// A fresh answer, recorded already.
    Hit(Arc<Answer>),
    /// Ask the provider. `guard` leads the flight when the call reads the cache: callers
    /// of the same key wait for its answer instead of asking too.
    Miss {
        key: Option<u128>,
        guard: Option<FlightGuard>,
        status: CacheStatus,
    },
}

impl Gateway {
    /// Looks the call up in the cache, waiting while another call computes its answer.
    pub(super) async fn lookup(&self, call: &Call, meta: &Meta) -> Lookup {
        let d = call.directives;
        let key = (d.read || d.write).then(|| wire::cache_key(call.api, &call.body));
        let mut guard: Option<FlightGuard> = None;
        if let (Some(k), true) = (key, d.read) {
            loop {
                if let Some(answer) = self.cache.get(k, d.ttl) {
                    self.record(meta, Ended::answered(&answer, true));
                    return Lookup::Hit(answer);
                }
                match self.cache.flight(k) {
                    Flight::Lead(g) => {
                        guard = Some(g);
                        break;
                    }
                    Flight::Wait(mut rx) => {
                        let _ = rx.changed().await;
                    }
                }
            }
        }
        let status = if d.read {
            CacheStatus::Miss
        } else {
            CacheStatus::Bypass
        };
        Lookup::Miss { key, guard, status }
    }

    /// Keeps `answer` under `key` when the call may write the cache.
    pub(super) fn store(&self, key: Option<u128>, d: Directives, answer: &Arc<Answer>) {
        if let (Some(k), true) = (key, d.write) {
            self.cache.put(k, answer.clone(), d.ttl);
        }
    }
}
