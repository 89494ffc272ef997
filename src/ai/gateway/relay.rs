//! The streaming relay: the provider's stream forwarded event by event as it arrives
//! (cached and recorded when it ends), a cached answer replayed as a stream, and the
//! headers every answer carries.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::cached::CacheStatus;
use super::record::{Ended, Meta};
use super::request::Call;
use super::{Ctx, Gateway};
use crate::ai::cache::{Answer, Events, FlightGuard};
use crate::ai::sse::{self, Splitter};
use crate::ai::wire::{Api, Usage};

impl Gateway {
    /// Forwards the provider's stream event by event as it arrives. A task owns the
    /// upstream body, so the stream completes (and is cached and recorded) even when
    /// the client goes away.
    pub(super) fn forward_stream(
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
            let end = Ended {
                provider: Some(provider.to_string()),
                model: Some(answer_model),
                usage,
                error,
                ttft: Some(ttft),
                ..Ended::default()
            };
            self.record(&meta, end);
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        let mut r = event_stream(Body::from_stream(stream));
        *r.status_mut() = StatusCode::OK;
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-request-id", v);
        }
        decorate(h, ctx.status, &ctx.route.provider.name, false);
        r
    }
}

pub(super) fn json_response(body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A complete answer as a stream, event by event as the provider sent it (or as it
/// would have).
pub(super) fn replay(answer: &Answer, include_usage: bool) -> Response {
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
    event_stream(Body::from_stream(stream))
}

/// A server-sent-events response around `body`.
fn event_stream(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(super) fn decorate(h: &mut HeaderMap, cache: CacheStatus, provider: &str, demo: bool) {
    h.insert("x-growth-cache", cache.header());
    if let Ok(v) = HeaderValue::from_str(provider) {
        h.insert("x-growth-provider", v);
    }
    if demo {
        h.insert("x-growth-demo", HeaderValue::from_static("true"));
    }
}
