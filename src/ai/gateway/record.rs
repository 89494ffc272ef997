//! Recording: every call becomes one row of `ai_performance_metrics`, with what it
//! cost; also calls refused before they ran and calls the client walked away from.

use std::sync::Arc;
use std::time::Instant;

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Gateway;
use crate::ai::cache::Answer;
use crate::ai::wire::{self, GatewayError, Usage};
use crate::store::AiRow;

/// What goes into the metric row besides the outcome.
#[derive(Clone)]
pub(super) struct Meta {
    pub(super) id: Uuid,
    pub(super) started: Instant,
    pub(super) created_at: i64,
    pub(super) endpoint: &'static str,
    pub(super) model: String,
    pub(super) user: Option<String>,
    pub(super) ip: Option<String>,
    pub(super) stream: bool,
    pub(super) tokens_saved: Option<i32>,
}

impl Meta {
    pub(super) fn request_id(&self) -> String {
        format!("req_{}", self.id.simple())
    }
}

impl Gateway {
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
        self.record(&meta, Ended::failed(None, error.to_string()));
    }

    /// Writes the call's row: what it cost, how long it took and how it ended.
    pub(super) fn record(&self, meta: &Meta, end: Ended) {
        let model = end.model.as_deref().unwrap_or(&meta.model);
        let as_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let usage = end.usage;
        let cost = match usage {
            _ if end.cache_hit || end.demo => Some(0.0),
            Some(u) => self.prices.cost(model, u.prompt, u.completion),
            None => None,
        };
        // A whole answer arrives at once: its first token came when it ended.
        let ttft = match end.ttft {
            Some(t) => t,
            None => end
                .error
                .is_none()
                .then(|| meta.started.elapsed().as_secs_f64() * 1000.0),
        };
        self.recorder.record(AiRow {
            id: meta.id,
            request_id: Some(meta.request_id()),
            endpoint: Some(meta.endpoint.to_string()),
            model: Some(model.to_string()),
            tokens: Some(usage.map_or(0, |u| as_i32(u.total()))),
            duration: meta.started.elapsed().as_secs_f64() * 1000.0,
            success: end.error.is_none(),
            error: end.error,
            cache_hit: end.cache_hit,
            user_id: meta.user.clone(),
            ip: meta.ip.clone(),
            timestamp: meta.created_at / 1000,
            created_at: meta.created_at,
            provider: end.provider,
            prompt_tokens: usage.map(|u| as_i32(u.prompt)),
            completion_tokens: usage.map(|u| as_i32(u.completion)),
            ttft,
            cost,
            stream: Some(meta.stream),
            demo: Some(end.demo),
            tokens_saved: meta.tokens_saved,
        });
    }
}

/// How a call ended, for its row.
#[derive(Default)]
pub(super) struct Ended {
    pub(super) provider: Option<String>,
    /// The model that answered; the requested one when `None`.
    pub(super) model: Option<String>,
    pub(super) usage: Option<Usage>,
    pub(super) cache_hit: bool,
    pub(super) error: Option<String>,
    pub(super) demo: bool,
    /// A stream's time to its first token; `None`: taken at the end (or none on error).
    pub(super) ttft: Option<Option<f64>>,
}

impl Ended {
    pub(super) fn failed(provider: Option<&str>, error: String) -> Ended {
        Ended {
            provider: provider.map(str::to_string),
            error: Some(error),
            ..Ended::default()
        }
    }

    /// An answer served from the cache (`cache_hit`) or just received.
    pub(super) fn answered(answer: &Answer, cache_hit: bool) -> Ended {
        Ended {
            provider: Some(answer.provider.to_string()),
            model: Some(answer.model.clone()),
            usage: (!cache_hit).then_some(answer.usage),
            cache_hit,
            demo: answer.demo,
            ..Ended::default()
        }
    }
}

/// Records a call whose future was dropped before it finished (the client went away).
pub(super) struct Unfinished {
    pub(super) gw: Arc<Gateway>,
    pub(super) meta: Option<Meta>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(meta) = self.meta.take() {
            let error = "client closed the connection before the answer".to_string();
            self.gw.record(&meta, Ended::failed(None, error));
        }
    }
}
