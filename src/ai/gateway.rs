//! One gateway call from start to finish: key, limits, cache (with single flight), the
//! provider call with retries and fallbacks, the stream forwarded event by event, the
//! answer in the caller's shape, and the metric row.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::cache::{Answer, Cache, Directives, Events, Flight, FlightGuard};
use super::canned;
use super::keys::Keys;
use super::limits::{Limits, Remaining};
use super::price::Prices;
use super::providers::{Providers, Route};
use super::recorder::Recorder;
use super::sse::{self, Splitter};
use super::upstream::{Forward, Upstream, UpstreamError};
use super::wire::{self, Api, GatewayError, Usage};
use crate::config::{parse_bytes, Config};
use crate::state::IpPolicy;
use crate::store::{AiRow, Store};

/// Largest request body: prompts with images are big.
pub const BODY_LIMIT: usize = 32 << 20;
/// Largest upstream error body read into a message.
const ERROR_BODY_LIMIT: usize = 64 << 10;
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
    pub keys: Keys,
    pub providers: Providers,
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

/// How the answer was found, for `x-growth-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Bypass,
}

impl CacheStatus {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Bypass => "BYPASS",
        })
    }
}

/// One parsed client request.
pub struct Call {
    pub api: Api,
    pub endpoint: &'static str,
    pub body: Map<String, Value>,
    /// The body as received, sent on unchanged when nothing had to change.
    pub raw: Bytes,
    pub key: usize,
    pub user: Option<String>,
    pub directives: Directives,
    pub forward: Forward,
    pub ip: Option<String>,
    pub stream: bool,
    /// The client asked for OpenAI's usage chunk itself.
    pub include_usage: bool,
}

/// What goes into the metric row besides the outcome.
#[derive(Clone)]
struct Meta {
    id: Uuid,
    started: Instant,
    created_at: i64,
    endpoint: &'static str,
    model: String,
    user: Option<String>,
    ip: Option<String>,
    stream: bool,
    tokens_saved: Option<i32>,
}

impl Meta {
    fn request_id(&self) -> String {
        format!("req_{}", self.id.simple())
    }
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

    /// Reads the parts of a request every call needs. The key is checked first.
    pub fn parse(
        &self,
        api: Api,
        headers: &HeaderMap,
        raw: Bytes,
        ip: Option<String>,
    ) -> Result<Call, GatewayError> {
        let key = self.keys.check(headers).ok_or(GatewayError::Unauthorized)?;
        let body: Map<String, Value> = match serde_json::from_slice::<Value>(&raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(GatewayError::BadRequest(
                    "the request body must be a JSON object".into(),
                ))
            }
            Err(e) => {
                return Err(GatewayError::BadRequest(format!(
                    "the request body is not valid JSON: {e}"
                )))
            }
        };
        match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => {}
            _ => {
                return Err(GatewayError::BadRequest(
                    "`model` is required and must be a string".into(),
                ))
            }
        }
        if !body.get("messages").is_some_and(Value::is_array) {
            return Err(GatewayError::BadRequest(
                "`messages` is required and must be an array".into(),
            ));
        }
        // A whole number, written 1024 or 1024.0 (JSON Schema's `integer` is both).
        let whole = |v: &Value| {
            v.is_u64()
                || v.as_f64().is_some_and(|f| {
                    f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0
                })
        };
        if api == Api::Anthropic && !body.get("max_tokens").is_some_and(whole) {
            return Err(GatewayError::BadRequest(
                "max_tokens: Field required (a positive integer)".into(),
            ));
        }
        let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Call {
            api,
            endpoint: api.endpoint(),
            user: wire::user_of(headers, &body),
            directives: if self.cache_enabled {
                Directives::from_headers(headers)
            } else {
                Directives::none()
            },
            forward: Forward {
                anthropic_version: headers.get("anthropic-version").cloned(),
                anthropic_beta: headers.get("anthropic-beta").cloned(),
            },
            body,
            raw,
            key,
            ip,
            stream,
            include_usage,
        })
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
            self.record(
                &meta,
                provider.as_deref(),
                None,
                None,
                false,
                Some(e.to_string()),
                false,
            );
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
        let key = (d.read || d.write).then(|| wire::cache_key(call.api, &call.body));
        let mut guard: Option<FlightGuard> = None;
        if let (Some(k), true) = (key, d.read) {
            loop {
                if let Some(answer) = self.cache.get(k, d.ttl) {
                    let outcome = Outcome::Answer {
                        answer: answer.clone(),
                        cache: CacheStatus::Hit,
                    };
                    self.record(
                        meta,
                        Some(&answer.provider),
                        Some(&answer.model),
                        None,
                        true,
                        None,
                        answer.demo,
                    );
                    return Ok(outcome);
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
            self.store(key, d, &answer);
            drop(guard);
            self.limits
                .correct_tokens(call.user.as_deref(), estimate, answer.usage.total());
            self.record(
                meta,
                Some(&answer.provider),
                Some(&answer.model),
                Some(answer.usage),
                false,
                None,
                true,
            );
            return Ok(Outcome::Answer {
                answer,
                cache: status,
            });
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
        self.store(key, d, &answer);
        drop(guard);
        self.limits
            .correct_tokens(call.user.as_deref(), estimate, answer.usage.total());
        self.record(
            meta,
            Some(&answer.provider),
            Some(&answer.model),
            Some(answer.usage),
            false,
            None,
            false,
        );
        Ok(Outcome::Answer {
            answer,
            cache: status,
        })
    }

    fn store(&self, key: Option<u128>, d: Directives, answer: &Arc<Answer>) {
        if let (Some(k), true) = (key, d.write) {
            self.cache.put(k, answer.clone(), d.ttl);
        }
    }

    /// The requested model, then each fallback the same API can serve, until one answers
    /// with something other than 429/5xx or a transport failure.
    async fn call_upstream(
        &self,
        call: &Call,
        first: &Route,
        deadline: Instant,
    ) -> Result<(Route, hyper::Response<hyper::body::Incoming>), GatewayError> {
        let requested = call.body.get("model").and_then(Value::as_str).unwrap_or("");
        let mut candidates = vec![first.clone()];
        for m in &self.fallbacks {
            if m == requested {
                continue;
            }
            if let Ok(r) = self.providers.route(m, call.api) {
                if !r.provider.is_demo() {
                    candidates.push(r);
                }
            }
        }
        let mut last_err = None;
        let count = candidates.len();
        for (i, route) in candidates.into_iter().enumerate() {
            let body = self.upstream_body(call, &route, requested);
            match self
                .upstream
                .send(&route.provider, call.api, &body, &call.forward, deadline)
                .await
            {
                Ok(resp) => {
                    let status = resp.status();
                    let failed =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !failed || i + 1 == count {
                        return Ok((route, resp));
                    }
                    last_err = Some(self.upstream_error(&route, resp, deadline).await);
                }
                Err(e) => last_err = Some(transport_error(e)),
            }
            if i + 1 < count {
                tracing::warn!(model = %route.model, provider = %route.provider.name, "upstream failed; trying the next fallback model");
            }
        }
        Err(last_err.unwrap_or_else(|| GatewayError::Unreachable("no provider to call".into())))
    }

    /// The body sent upstream: the client's bytes when nothing changes, else re-encoded
    /// with the provider's model name and the usage chunk requested for streams.
    fn upstream_body(&self, call: &Call, route: &Route, requested: &str) -> Bytes {
        let add_usage = call.stream && call.api == Api::OpenAi && !call.include_usage;
        if !add_usage && route.model == requested && !self.normalize {
            return call.raw.clone();
        }
        let mut body = call.body.clone();
        body.insert("model".into(), Value::String(route.model.clone()));
        if add_usage {
            let opts = body.entry("stream_options").or_insert_with(|| json!({}));
            if let Some(o) = opts.as_object_mut() {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    /// An upstream error status as a `GatewayError` in the provider's words, with the
    /// provider's key scrubbed out should it echo it.
    async fn upstream_error(
        &self,
        route: &Route,
        resp: hyper::Response<hyper::body::Incoming>,
        deadline: Instant,
    ) -> GatewayError {
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), ERROR_BODY_LIMIT);
        let bytes = match tokio::time::timeout_at(deadline.into(), body.collect()).await {
            Ok(Ok(c)) => c.to_bytes(),
            _ => Bytes::new(),
        };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(k) = route.provider.api_key.as_deref().filter(|k| !k.is_empty()) {
            text = text.replace(k, "***");
        }
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let detail = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(|e| e.get("message").or(Some(e)))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
            .unwrap_or_else(|| text.chars().take(300).collect());
        let name = &route.provider.name;
        // A provider refusing our key is our fault, not the caller's: 502, not 401.
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return GatewayError::Upstream {
                status: StatusCode::BAD_GATEWAY,
                message: format!(
                    "provider {name} refused the gateway's provider key ({status}): {detail}"
                ),
                body: None,
            };
        }
        GatewayError::Upstream {
            status,
            message: format!("provider {name} answered {status}: {detail}"),
            body: parsed,
        }
    }

    async fn read_answer(
        &self,
        call: &Call,
        resp: hyper::Response<hyper::body::Incoming>,
        ctx: &Ctx,
    ) -> Result<Arc<Answer>, GatewayError> {
        if !resp.status().is_success() {
            return Err(self.upstream_error(&ctx.route, resp, ctx.deadline).await);
        }
        let name = ctx.route.provider.name.clone();
        let bytes =
            match tokio::time::timeout_at(ctx.deadline.into(), resp.into_body().collect()).await {
                Ok(Ok(c)) => c.to_bytes(),
                Ok(Err(e)) => {
                    return Err(GatewayError::Unreachable(format!(
                        "provider {name} broke off its answer: {e}"
                    )))
                }
                Err(_) => {
                    return Err(GatewayError::Timeout(format!(
                        "provider {name} did not finish its answer in time"
                    )))
                }
            };
        #[derive(serde::Deserialize)]
        struct Head {
            usage: Option<Value>,
        }
        let head: Head = serde_json::from_slice(&bytes).map_err(|e| GatewayError::Upstream {
            status: StatusCode::BAD_GATEWAY,
            message: format!("provider {name} answered something that is not JSON: {e}"),
            body: None,
        })?;
        let usage = head
            .usage
            .as_ref()
            .and_then(|u| Usage::from_json(call.api, u))
            .unwrap_or_default();
        // The model we called, not the dated name the provider echoes, so hits, misses
        // and streams of one model group together in the metrics.
        Ok(Arc::new(Answer::from_json(
            call.api,
            name,
            ctx.route.model.clone(),
            false,
            usage,
            bytes,
        )))
    }

    /// Forwards the provider's stream event by event as it arrives. A task owns the
    /// upstream body, so the stream completes (and is cached and recorded) even when
    /// the client goes away.
    fn forward_stream(
        self: Arc<Self>,
        call: &Call,
        meta: &Meta,
        ctx: Ctx,
        guard: Option<FlightGuard>,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Response {
        let api = call.api;
        let provider = ctx.route.provider.name.clone();
        let meta = meta.clone();
        let user = call.user.clone();
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let strip = api == Api::OpenAi && !call.include_usage;
        let request_id = meta.request_id();
        tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut splitter = Splitter::default();
            let mut captured = Vec::new();
            let mut usage_at = None;
            let mut usage: Option<Usage> = None;
            let mut done = false;
            let mut error: Option<String> = None;
            let mut ttft = None;
            let mut client_gone = false;
            loop {
                let frame = match tokio::time::timeout_at(ctx.deadline.into(), body.frame()).await {
                    Err(_) => {
                        error = Some(format!(
                            "provider {provider} did not finish its stream in time"
                        ));
                        break;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        error = Some(format!("provider {provider} broke off its stream: {e}"));
                        break;
                    }
                    Ok(Some(Ok(f))) => f,
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let mut events = splitter.push(&data);
                if events.is_empty() {
                    continue;
                }
                for ev in events.drain(..) {
                    let seen = sse::inspect(api, &ev);
                    if let Some(u) = seen.usage {
                        usage = Some(sse::merge_usage(api, usage, u));
                    }
                    if let Some(e) = seen.error {
                        error = Some(format!("provider {provider} failed mid-stream: {e}"));
                    }
                    done |= seen.done;
                    let out = match (strip, seen.usage_only) {
                        (true, true) => None,
                        (true, false) => Some(sse::strip_null_usage(&ev)),
                        (false, _) => Some(ev.clone()),
                    };
                    if seen.usage_only {
                        usage_at = Some(captured.len());
                    }
                    captured.push(ev);
                    if let (Some(out), false) = (out, client_gone) {
                        if ttft.is_none() {
                            ttft = Some(meta.started.elapsed().as_secs_f64() * 1000.0);
                        }
                        client_gone = tx.send(out).await.is_err();
                    }
                }
            }
            if let Some(rest) = splitter.rest() {
                if !client_gone {
                    let _ = tx.send(rest).await;
                }
            }
            drop(tx);
            let usage_total = usage.unwrap_or_default();
            let answer_model = ctx.route.model.clone();
            if done && error.is_none() {
                let answer = Arc::new(Answer::from_events(
                    api,
                    provider.clone(),
                    answer_model.clone(),
                    usage_total,
                    Events {
                        list: captured,
                        usage_at,
                    },
                ));
                self.store(ctx.key, ctx.directives, &answer);
            } else if error.is_none() {
                error = Some(format!("provider {provider} ended its stream early"));
            }
            drop(guard);
            self.limits
                .correct_tokens(user.as_deref(), ctx.estimate, usage_total.total());
            self.record_full(
                &meta,
                Some(&provider),
                Some(&answer_model),
                usage,
                false,
                error,
                false,
                ttft,
            );
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        let mut r = Response::new(Body::from_stream(stream));
        *r.status_mut() = StatusCode::OK;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-request-id", v);
        }
        decorate(h, ctx.status, &ctx.route.provider.name, false);
        r
    }

    /// A call refused before it could run (bad body, wrong API for the model): still a row.
    pub fn record_refused(
        &self,
        endpoint: &'static str,
        raw: &[u8],
        ip: Option<String>,
        error: &GatewayError,
    ) {
        let body: Map<String, Value> = serde_json::from_slice(raw).unwrap_or_default();
        let meta = Meta {
            id: Uuid::new_v4(),
            started: Instant::now(),
            created_at: chrono::Utc::now().timestamp_micros(),
            endpoint,
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(256)
                .collect(),
            user: wire::user_of(&HeaderMap::new(), &body),
            ip,
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            tokens_saved: None,
        };
        self.record(
            &meta,
            None,
            None,
            None,
            false,
            Some(error.to_string()),
            false,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        meta: &Meta,
        provider: Option<&str>,
        model: Option<&str>,
        usage: Option<Usage>,
        cache_hit: bool,
        error: Option<String>,
        demo: bool,
    ) {
        let ttft = (error.is_none()).then(|| meta.started.elapsed().as_secs_f64() * 1000.0);
        self.record_full(meta, provider, model, usage, cache_hit, error, demo, ttft);
    }

    #[allow(clippy::too_many_arguments)]
    fn record_full(
        &self,
        meta: &Meta,
        provider: Option<&str>,
        model: Option<&str>,
        usage: Option<Usage>,
        cache_hit: bool,
        error: Option<String>,
        demo: bool,
        ttft: Option<f64>,
    ) {
        let model = model.unwrap_or(&meta.model);
        let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let cost = match usage {
            _ if cache_hit || demo => Some(0.0),
            Some(u) => self.prices.cost(model, u.prompt, u.completion),
            None => None,
        };
        self.recorder.record(AiRow {
            id: meta.id,
            request_id: Some(meta.request_id()),
            endpoint: Some(meta.endpoint.to_string()),
            model: Some(model.to_string()),
            tokens: Some(usage.map_or(0, |u| as_i32(u.total()))),
            duration: meta.started.elapsed().as_secs_f64() * 1000.0,
            success: error.is_none(),
            error,
            cache_hit,
            user_id: meta.user.clone(),
            ip: meta.ip.clone(),
            timestamp: meta.created_at / 1000,
            created_at: meta.created_at,
            provider: provider.map(str::to_string),
            prompt_tokens: usage.map(|u| as_i32(u.prompt)),
            completion_tokens: usage.map(|u| as_i32(u.completion)),
            ttft,
            cost,
            stream: Some(meta.stream),
            demo: Some(demo),
            tokens_saved: meta.tokens_saved,
        });
    }
}

/// A call's outcome with its request id and the caller's remaining request budget.
pub struct Ran {
    pub result: Result<Outcome, GatewayError>,
    pub request_id: String,
    pub remaining: Option<Remaining>,
}

/// Records a call whose future was dropped before it finished (the client went away).
struct Unfinished {
    gw: Arc<Gateway>,
    meta: Option<Meta>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(meta) = self.meta.take() {
            let error = "client closed the connection before the answer".to_string();
            self.gw
                .record(&meta, None, None, None, false, Some(error), false);
        }
    }
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

fn transport_error(e: UpstreamError) -> GatewayError {
    match e {
        UpstreamError::Timeout { .. } => GatewayError::Timeout(e.to_string()),
        UpstreamError::Connect { .. } => GatewayError::Unreachable(e.to_string()),
    }
}

fn json_response(body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A complete answer as a stream, event by event as the provider sent it (or as it
/// would have).
fn replay(answer: &Answer, include_usage: bool) -> Response {
    let events = answer.events();
    let strip = answer.api == Api::OpenAi && !include_usage;
    let list: Vec<Bytes> = events
        .list
        .iter()
        .enumerate()
        .filter(|(i, _)| !(strip && Some(*i) == events.usage_at))
        .map(|(_, e)| {
            if strip {
                sse::strip_null_usage(e)
            } else {
                e.clone()
            }
        })
        .collect();
    let stream = futures_util::stream::iter(list.into_iter().map(Ok::<_, Infallible>));
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn decorate(h: &mut HeaderMap, cache: CacheStatus, provider: &str, demo: bool) {
    h.insert("x-growth-cache", cache.header());
    if let Ok(v) = HeaderValue::from_str(provider) {
        h.insert("x-growth-provider", v);
    }
    if demo {
        h.insert("x-growth-demo", HeaderValue::from_static("true"));
    }
}
