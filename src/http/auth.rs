//! Who may call what: the admin token for reads and admin routes; origin allowlist,
//! optional ingest key and per-IP rate limit for the public ingest calls.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use subtle::ConstantTimeEq;

use super::limits::MAX_USER_AGENT;
use crate::error::ApiError;
use crate::state::AppState;

/// Proof that the caller holds the admin token, as a bearer token or through a dashboard
/// session cookie (or that `--no-auth` is on).
pub struct Admin {
    session: bool,
}

impl Admin {
    /// Dashboards share read answers for a few seconds; API clients (bearer token) always
    /// read fresh, so a script that writes then reads sees its write.
    pub fn cache_key(&self, uri: &axum::http::Uri) -> Option<String> {
        self.session.then(|| uri.to_string())
    }
}

/// The header the dashboard sends on every state-changing call. A cross-site form or
/// beacon cannot set it, so a cookie alone never authorises a change.
pub const CSRF_HEADER: &str = "x-requested-with";

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let session_id = super::session::from_headers(&parts.headers);
        if state.admin_token.is_none() {
            return Ok(Admin {
                session: session_id.is_some(),
            });
        }
        if let Some(t) = bearer(&parts.headers) {
            return if token_matches(state, t) {
                Ok(Admin { session: false })
            } else {
                Err(ApiError::Unauthorized)
            };
        }
        let Some(id) = session_id else {
            return Err(ApiError::Unauthorized);
        };
        if !state.sessions.is_valid(&id).await {
            return Err(ApiError::Unauthorized);
        }
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        let marked = parts
            .headers
            .get(CSRF_HEADER)
            .is_some_and(|v| v == "growth-stack");
        if !safe && !marked {
            return Err(ApiError::Forbidden(
                "state-changing calls from the dashboard need X-Requested-With: growth-stack"
                    .into(),
            ));
        }
        Ok(Admin { session: true })
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Whether `token` is the admin token (always true with `--no-auth`).
pub fn token_matches(state: &AppState, token: &str) -> bool {
    state
        .admin_token
        .as_deref()
        .is_none_or(|expected| secret_eq(token, expected))
}

fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// What an ingest call learns about its sender, after it passed the ingest checks.
pub struct Sender {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let cfg = &state.config.ingest;
        check_origin(&parts.headers, &cfg.cors_origins)?;
        if let Some(key) = &cfg.key {
            let given = parts
                .headers
                .get("x-growth-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| query_param(parts.uri.query(), "key"));
            if !given.is_some_and(|g| secret_eq(&g, key)) {
                return Err(ApiError::Forbidden(
                    "missing or wrong ingest key; send X-Growth-Key or ?key=".into(),
                ));
            }
        }
        let ip = client_ip(parts, state.config.server.trust_proxy);
        if let Some(limiter) = &state.ingest_limiter {
            if let Err(not_until) = limiter.check_key(&ip) {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                return Err(ApiError::RateLimited {
                    retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
        }
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(Sender { ip, user_agent })
    }
}

/// CORS headers only tell a browser whether it may read the answer; a `text/plain`
/// beacon is sent regardless. So a disallowed origin is refused here, before any write.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    if allowed.iter().any(|o| o == "*") {
        return Ok(());
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(origin) if allowed.iter().any(|o| o.trim_end_matches('/') == origin) => Ok(()),
        Some(origin) => Err(ApiError::Forbidden(format!(
            "origin {origin} is not in ingest.cors_origins"
        ))),
    }
}

pub fn client_ip(parts: &Parts, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example".to_string()];
        let mut h = HeaderMap::new();
        assert!(
            check_origin(&h, &allowed).is_ok(),
            "server-side senders have no Origin"
        );
        h.insert(header::ORIGIN, "https://app.example".parse().unwrap());
        assert!(check_origin(&h, &allowed).is_ok());
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_origin(&h, &allowed).is_err());
        assert!(check_origin(&h, &["*".to_string()]).is_ok());
    }

    proptest::proptest! {
        /// Arbitrary header values and query strings: the auth parsers answer or refuse,
        /// never panic.
        #[test]
        fn any_auth_input(v in "\\PC*", q in "\\PC*", bytes in proptest::prelude::any::<Vec<u8>>()) {
            let mut h = HeaderMap::new();
            for value in [axum::http::HeaderValue::from_str(&v).ok(), axum::http::HeaderValue::from_bytes(&bytes).ok()].into_iter().flatten() {
                h.insert(header::AUTHORIZATION, value.clone());
                let _ = bearer(&h);
                h.insert(header::ORIGIN, value.clone());
                let _ = check_origin(&h, &["https://app.example".to_string()]);
                h.insert("x-forwarded-for", value);
                let mut req = axum::http::Request::new(());
                *req.headers_mut() = h.clone();
                let (parts, ()) = req.into_parts();
                let _ = client_ip(&parts, true);
            }
            let _ = query_param(Some(&q), "key");
            let _ = secret_eq(&v, &q);
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(secret_eq("abcdef", "abcdef"));
        assert!(!secret_eq("abcdef", "abcdeg"));
        assert!(!secret_eq("abc", "abcdef"));
    }
}
