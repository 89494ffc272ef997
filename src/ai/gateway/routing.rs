//! Routing and fallbacks: the requested model's provider, then each fallback model the
//! same API can serve, until one answers; the body sent upstream; a whole (not streamed)
//! answer read back.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::errors::transport_error;
use super::request::Call;
use super::{Ctx, Gateway};
use crate::ai::cache::Answer;
use crate::ai::providers::Route;
use crate::ai::wire::{Api, GatewayError, Usage};

impl Gateway {
    /// The requested model, then each fallback the same API can serve, until one answers
    /// with something other than 429/5xx or a transport failure.
    pub(super) async fn call_upstream(
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

    pub(super) async fn read_answer(
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
}
