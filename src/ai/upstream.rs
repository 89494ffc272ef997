//! Calls to providers: one pooled HTTP/1.1 client (`http::client`: rustls for https, plain
//! http for loopback servers such as Ollama), connect / first-byte / total timeouts, and
//! retries with exponential backoff and jitter on 429 and 5xx that honour `Retry-After`.

use std::time::{Duration, Instant};

use axum::http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;

use super::providers::Provider;
use super::wire::Api;
use crate::config::AiConfig;
use crate::http::client::HttpClient;

/// Longest `Retry-After` we wait out ourselves; longer ones go back to the client.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(20);
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{provider} did not answer within {ms} ms")]
    Timeout { provider: String, ms: u128 },
    #[error("cannot reach {provider}: {message}")]
    Connect { provider: String, message: String },
}

pub struct Upstream {
    client: HttpClient,
    first_byte: Duration,
    pub total: Duration,
    retries: u32,
}

/// Headers of the client's request passed on to the provider.
pub struct Forward {
    pub anthropic_version: Option<HeaderValue>,
    pub anthropic_beta: Option<HeaderValue>,
}

impl Upstream {
    pub fn new(c: &AiConfig) -> Upstream {
        let client =
            crate::http::client::build(Duration::from_millis(c.connect_timeout.max(1)), 256);
        Upstream {
            client,
            first_byte: Duration::from_millis(c.first_byte_timeout.max(1)),
            total: Duration::from_millis(c.request_timeout.max(1)),
            retries: c.max_retries,
        }
    }

    /// The model ids a provider lists (`GET {base}/models`, or `/v1/models` for
    /// Anthropic); empty when it cannot say within `wait`.
    pub async fn list_models(&self, p: &Provider, wait: Duration) -> Vec<String> {
        let Some(base) = &p.base_url else {
            return Vec::new();
        };
        let url = match p.api {
            Api::OpenAi => format!("{base}/models"),
            Api::Anthropic => format!("{base}/v1/models?limit=1000"),
        };
        let mut req = Request::get(url);
        if let Some(k) = &p.api_key {
            req = match p.api {
                Api::OpenAi => req.header(header::AUTHORIZATION, format!("Bearer {k}")),
                Api::Anthropic => req.header(HeaderName::from_static("x-api-key"), k.as_str()),
            };
        }
        if p.api == Api::Anthropic {
            req = req.header(
                HeaderName::from_static("anthropic-version"),
                ANTHROPIC_VERSION,
            );
        }
        let Ok(req) = req.body(Full::new(Bytes::new())) else {
            return Vec::new();
        };
        let fetch = async {
            let resp = self.client.request(req).await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let body = http_body_util::Limited::new(resp.into_body(), 4 << 20);
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .ok()?
                .to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            Some(
                v["data"]
                    .as_array()?
                    .iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_string))
                    .collect::<Vec<_>>(),
            )
        };
        match tokio::time::timeout(wait, fetch).await {
            Ok(Some(ids)) => ids,
            _ => {
                tracing::warn!(provider = %p.name, "could not list the provider's models");
                Vec::new()
            }
        }
    }

    fn request(
        &self,
        p: &Provider,
        api: Api,
        body: &Bytes,
        fwd: &Forward,
    ) -> Option<Request<Full<Bytes>>> {
        let mut req = Request::post(p.url(api)?)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json, text/event-stream");
        match api {
            Api::OpenAi => {
                if let Some(k) = &p.api_key {
                    req = req.header(header::AUTHORIZATION, format!("Bearer {k}"));
                }
            }
            Api::Anthropic => {
                if let Some(k) = &p.api_key {
                    req = req.header(HeaderName::from_static("x-api-key"), k.as_str());
                }
                req = req.header(
                    HeaderName::from_static("anthropic-version"),
                    fwd.anthropic_version
                        .clone()
                        .unwrap_or(HeaderValue::from_static(ANTHROPIC_VERSION)),
                );
                if let Some(b) = &fwd.anthropic_beta {
                    req = req.header(HeaderName::from_static("anthropic-beta"), b.clone());
                }
            }
        }
        req.body(Full::new(body.clone())).ok()
    }

    /// Sends `body`, retrying 429/5xx and transport failures; returns the last answer
    /// (possibly an error status) once its headers arrived. The caller reads the body
    /// before `deadline`.
    pub async fn send(
        &self,
        p: &Provider,
        api: Api,
        body: &Bytes,
        fwd: &Forward,
        deadline: Instant,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut attempt = 0u32;
        loop {
            let req = self
                .request(p, api, body, fwd)
                .ok_or_else(|| UpstreamError::Connect {
                    provider: p.name.to_string(),
                    message: "its base_url does not make a valid URL".into(),
                })?;
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = self.first_byte.min(left);
            let result = tokio::time::timeout(wait, self.client.request(req)).await;
            let retry_in = match &result {
                Ok(Ok(resp)) if retryable(resp.status()) => retry_after(resp.headers()),
                Ok(Ok(_)) => None,
                Ok(Err(_)) | Err(_) => Some(None),
            };
            let give_up = attempt >= self.retries
                || match retry_in {
                    None => true,
                    Some(Some(after)) => after > MAX_RETRY_WAIT,
                    Some(None) => false,
                };
            if give_up {
                return match result {
                    Ok(Ok(resp)) => Ok(resp),
                    Ok(Err(e)) => Err(UpstreamError::Connect {
                        provider: p.name.to_string(),
                        message: describe(&e),
                    }),
                    Err(_) => Err(UpstreamError::Timeout {
                        provider: p.name.to_string(),
                        ms: wait.as_millis(),
                    }),
                };
            }
            let delay = retry_in.flatten().unwrap_or_else(|| backoff(attempt));
            if Instant::now() + delay >= deadline {
                return match result {
                    Ok(Ok(resp)) => Ok(resp),
                    _ => Err(UpstreamError::Timeout {
                        provider: p.name.to_string(),
                        ms: self.total.as_millis(),
                    }),
                };
            }
            drop(result);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// `Some(Some(d))` when the provider said how long to wait, `Some(None)` when it did not.
fn retry_after(h: &axum::http::HeaderMap) -> Option<Option<Duration>> {
    let secs = h
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    Some(secs.map(Duration::from_secs_f64))
}

/// 200 ms, 400 ms, 800 ms ... up to 5 s, each plus up to half again at random, so many
/// clients retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(8))
        .min(BACKOFF_CAP);
    let jitter = rand::random::<f64>() * 0.5;
    base.mul_f64(1.0 + jitter)
}

/// The error chain as one line, without anything from the request.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for attempt in 0..12 {
            let d = backoff(attempt);
            let base = BACKOFF_BASE
                .saturating_mul(1 << attempt.min(8))
                .min(BACKOFF_CAP);
            assert!(d >= base && d <= base.mul_f64(1.5), "{attempt}: {d:?}");
        }
    }
}
