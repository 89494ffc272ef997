//! One gateway call from start to finish: key, limits, cache (with single flight), the
//! provider call with retries and fallbacks, the stream forwarded event by event, the
//! answer in the caller's shape, and the metric row. This file runs a call; each step
//! has its own file.

mod cached;
mod errors;
mod record;
mod relay;
mod request;
mod routing;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::Value;
use uuid::Uuid;

pub use cached::CacheStatus;
pub use request::Call;

use super::cache::{Answer, Cache, Directives, FlightGuard};
use super::canned;
use super::keys::{Keys, Origin as KeyOrigin};
use super::limits::{Limits, Remaining};
use super::price::Prices;
use super::providers::{Providers, Route};
use super::recorder::Recorder;
use super::upstream::Upstream;
use super::wire::{self, GatewayError};
use crate::config::{parse_bytes, Config};
use crate::state::IpPolicy;
use crate::store::Store;
use cached::Lookup;
use record::{Ended, Meta, Unfinished};
use relay::{decorate, json_response, replay};

/// Largest request body: prompts with images are big.
pub const BODY_LIMIT: usize = 32 << 20;
/// Tokens assumed for the answer when the request sets no maximum.
const DEFAULT_COMPLETION_ESTIMATE: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot write the gateway key to {path}: {source}")]
    Key {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub struct Gateway {
    pub(super) keys: Keys,
    pub(super) providers: Providers,
    upstream: Upstream,
    cache: Arc<Cache>,
    cache_enabled: bool,
    limits: Limits,
    recorder: Recorder,
    prices: Prices,
    normalize: bool,
    fallbacks: Vec<String>,
    privacy: IpPolicy,
}

/// A call's result before it becomes a response.
pub enum Outcome {
    Answer {
        answer: Arc<Answer>,
        cache: CacheStatus,
    },
    /// A live stream, already forwarding.
    Stream(Response),
}

impl Gateway {
    pub fn start(
        config: &Config,
        store: Store,
        privacy: IpPolicy,
    ) -> Result<Arc<Gateway>, StartError> {
        let keys = Keys::load(config).map_err(|source| StartError::Key {
            path: config.server.data_dir.join("gateway_key"),
            source,
        })?;
        let ai = &config.ai;
        let max_bytes = parse_bytes(&ai.cache_max_bytes).unwrap_or(64 << 20) as usize;
        let gw = Arc::new(Gateway {
            keys,
            providers: Providers::new(ai),
            upstream: Upstream::new(ai),
            cache: Arc::new(Cache::new(
                ai.max_cache_size,
                max_bytes,
                Duration::from_secs(ai.default_ttl),
            )),
            cache_enabled: ai.cache_enabled && ai.max_cache_size > 0,
            limits: Limits::new(ai),
            recorder: Recorder::start(store, config.storage.queue_rows),
            prices: Prices::new(&ai.prices),
            normalize: ai.normalize_whitespace,
            fallbacks: ai.fallback_models.clone(),
            privacy,
        });
        let weak = Arc::downgrade(&gw);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(gw) => gw.limits.cleanup(),
                    None => break,
                }
            }
        });
        Ok(gw)
    }

    /// Writes every metric row still queued; call before closing the store.
    pub async fn shutdown(&self) {
        self.recorder.close().await;
    }

    /// What start-up prints about the gateway: where its key is, and which providers answer.
    pub fn banner(&self) -> Vec<String> {
        let mut lines = vec![match &self.keys.origin {
            KeyOrigin::Generated(path) => format!(
                "AI gateway key (shown once; also saved in {}): {}",
                path.display(),
                self.keys.first()
            ),
            KeyOrigin::File(path) => format!("AI gateway key: in {}", path.display()),
            KeyOrigin::Configured => "AI gateway keys: the ones you configured".to_string(),
        }];
        if self.providers.demo_only() {
            lines.push("AI providers: none configured, the demo provider answers (set OPENAI_API_KEY, ANTHROPIC_API_KEY or [[ai.providers]])".to_string());
        }
        lines
    }

    pub fn cache_stats(&self) -> (usize, usize) {
        self.cache.stats()
    }

    /// Every model the gateway can route, with its provider: configured names, then what
    /// each open-ended provider lists itself, asked in parallel, each for at most 5 s.
    pub async fn models(&self) -> Vec<(String, Arc<str>)> {
        let mut names = self.providers.model_names();
        let providers = self.providers.open_ended();
        let lists = futures_util::future::join_all(
            providers
                .iter()
                .map(|p| self.upstream.list_models(p, Duration::from_secs(5))),
        )
        .await;
        for (p, ids) in providers.iter().zip(lists) {
            names.extend(ids.into_iter().map(|id| (id, p.name.clone())));
        }
        let mut seen = std::collections::HashSet::new();
        names.retain(|(id, _)| seen.insert(id.clone()));
        names
    }

    pub fn client_ip(&self, ip: std::net::IpAddr) -> Option<String> {
        self.privacy.apply(ip)
    }

    /// A whole `/v1/...` call: outcome as a response, errors in the API's shape, one row.
    pub async fn respond(self: &Arc<Self>, call: Call) -> Response {
        let api = call.api;
        let (stream, include_usage) = (call.stream, call.include_usage);
        let Ran {
            result,
            request_id,
            remaining,
        } = self.run(call).await;
        let mut resp = match result {
            Ok(Outcome::Answer { answer, cache }) => {
                let mut r = if stream {
                    replay(&answer, include_usage)
                } else {
                    json_response(answer.json())
                };
                decorate(r.headers_mut(), cache, &answer.provider, answer.demo);
                r
            }
            Ok(Outcome::Stream(r)) => r,
            Err(e) => {
                let mut r = e.render(api);
                r.headers_mut()
                    .insert("x-growth-cache", CacheStatus::Bypass.header());
                r
            }
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().entry("x-request-id").or_insert(v);
        }
        if let Some(rem) = remaining {
            let h = resp.headers_mut();
            h.entry("x-ratelimit-limit-requests")
                .or_insert(HeaderValue::from(rem.limit));
            h.entry("x-ratelimit-remaining-requests")
                .or_insert(HeaderValue::from(rem.remaining));
        }
        resp
    }

    /// Runs a call; every path records its metric row (a live stream when it ends).
    pub async fn run(self: &Arc<Self>, mut call: Call) -> Ran {
        let model = call
            .body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let tokens_saved = self.normalize.then(|| {
            let removed = wire::normalize_whitespace(&mut call.body);
            i32::try_from(wire::estimate_tokens(removed)).unwrap_or(i32::MAX)
        });
        let meta = Meta {
            id: Uuid::new_v4(),
            started: Instant::now(),
            created_at: chrono::Utc::now().timestamp_micros(),
            endpoint: call.endpoint,
            model,
            user: call.user.clone(),
            ip: call.ip.take(),
            stream: call.stream,
            tokens_saved,
        };
        // A client that hangs up drops this future mid-call: the guard records that.
        let mut unfinished = Unfinished {
            gw: self.clone(),
            meta: Some(meta.clone()),
        };
        let mut remaining = None;
        let result = self.run_inner(&mut call, &meta, &mut remaining).await;
        unfinished.meta = None;
        let result = result.map_err(|(e, provider)| {
            self.record(&meta, Ended::failed(provider.as_deref(), e.to_string()));
            e
        });
        Ran {
            result,
            request_id: meta.request_id(),
            remaining,
        }
    }

    async fn run_inner(
        self: &Arc<Self>,
        call: &mut Call,
        meta: &Meta,
        remaining: &mut Option<Remaining>,
    ) -> Result<Outcome, (GatewayError, Option<String>)> {
        let no_provider = |e| (e, None);
        let route = self
            .providers
            .route(&meta.model, call.api)
            .map_err(no_provider)?;
        let provider_name = Some(route.provider.name.to_string());
        let with_provider = |e| (e, provider_name.clone());
        *remaining = self
            .limits
            .request(call.key, call.user.as_deref())
            .map_err(with_provider)?;

        let d = call.directives;
        let (key, guard, status) = match self.lookup(call, meta).await {
            Lookup::Hit(answer) => {
                return Ok(Outcome::Answer {
                    answer,
                    cache: CacheStatus::Hit,
                })
            }
            Lookup::Miss { key, guard, status } => (key, guard, status),
        };

        let prompt = wire::estimate_tokens(wire::prompt_chars(&call.body));
        let max_out = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| call.body.get(*k).and_then(Value::as_u64))
            .map_or(DEFAULT_COMPLETION_ESTIMATE, |n| {
                n.min(u64::from(u32::MAX)) as u32
            });
        let estimate = prompt.saturating_add(max_out);
        self.limits
            .reserve_tokens(call.user.as_deref(), estimate)
            .map_err(with_provider)?;

        if route.provider.is_demo() {
            let answer = Arc::new(canned::answer(call.api, &call.body, &route.model));
            let done = Miss {
                key,
                guard,
                status,
                estimate,
            };
            return Ok(self.answered(call, meta, done, answer));
        }

        let deadline = Instant::now() + self.upstream.total;
        let (route, resp) = self
            .call_upstream(call, &route, deadline)
            .await
            .map_err(|e| {
                self.limits
                    .correct_tokens(call.user.as_deref(), estimate, prompt);
                (e, provider_name.clone())
            })?;
        let ctx = Ctx {
            key,
            directives: d,
            status,
            estimate,
            route,
            deadline,
        };
        if call.stream {
            let fail = |e| {
                self.limits
                    .correct_tokens(call.user.as_deref(), estimate, prompt);
                (e, Some(ctx.route.provider.name.to_string()))
            };
            if !resp.status().is_success() {
                return Err(fail(self.upstream_error(&ctx.route, resp, deadline).await));
            }
            let is_sse = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_sse {
                return Err(fail(GatewayError::Upstream {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!(
                        "provider {} did not answer with a stream",
                        ctx.route.provider.name
                    ),
                    body: None,
                }));
            }
            let resp = self.clone().forward_stream(call, meta, ctx, guard, resp);
            return Ok(Outcome::Stream(resp));
        }
        let answer = self.read_answer(call, resp, &ctx).await.map_err(|e| {
            self.limits
                .correct_tokens(call.user.as_deref(), estimate, prompt);
            (e, Some(ctx.route.provider.name.to_string()))
        })?;
        let done = Miss {
            key,
            guard,
            status,
            estimate,
        };
        Ok(self.answered(call, meta, done, answer))
    }

    /// A whole answer to a miss: cached when the call may write, the waiting callers
    /// released, the token estimate corrected, the row recorded.
    fn answered(&self, call: &Call, meta: &Meta, done: Miss, answer: Arc<Answer>) -> Outcome {
        self.store(done.key, call.directives, &answer);
        drop(done.guard);
        self.limits
            .correct_tokens(call.user.as_deref(), done.estimate, answer.usage.total());
        self.record(meta, Ended::answered(&answer, false));
        Outcome::Answer {
            answer,
            cache: done.status,
        }
    }
}

/// What a miss holds until its answer is in: the cache key, the flight it leads, how the
/// answer was found, and the tokens reserved for it.
struct Miss {
    key: Option<u128>,
    guard: Option<FlightGuard>,
    status: CacheStatus,
    estimate: u32,
}

/// A call's outcome with its request id and the caller's remaining request budget.
pub struct Ran {
    pub result: Result<Outcome, GatewayError>,
    pub request_id: String,
    pub remaining: Option<Remaining>,
}

/// What a miss carries from the upstream call to where its answer is stored.
struct Ctx {
    key: Option<u128>,
    directives: Directives,
    status: CacheStatus,
    estimate: u32,
    route: Route,
    deadline: Instant,
}
