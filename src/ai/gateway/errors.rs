//! Failures as the caller sees them: a provider's error status in the provider's own
//! words (its key scrubbed out), or a transport failure as a timeout or unreachable.

use std::time::Instant;

use axum::http::StatusCode;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use super::Gateway;
use crate::ai::providers::Route;
use crate::ai::upstream::UpstreamError;
use crate::ai::wire::GatewayError;

/// Largest upstream error body read into a message.
const ERROR_BODY_LIMIT: usize = 64 << 10;

impl Gateway {
    /// An upstream error status as a `GatewayError` in the provider's words, with the
    /// provider's key scrubbed out should it echo it.
    pub(super) async fn upstream_error(
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
}

pub(super) fn transport_error(e: UpstreamError) -> GatewayError {
    match e {
        UpstreamError::Timeout { .. } => GatewayError::Timeout(e.to_string()),
        UpstreamError::Connect { .. } => GatewayError::Unreachable(e.to_string()),
    }
}
