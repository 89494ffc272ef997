//! Dashboard sessions: the admin token is exchanged once for a random session id kept in
//! an HttpOnly, SameSite=Strict cookie. Sessions live in memory: a restart logs out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};

pub const COOKIE: &str = "gs_session";
const TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// Starts a session and returns its id.
    pub fn create(&self) -> String {
        let bytes: [u8; 32] = rand::random();
        let id = hex::encode(bytes);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        live.retain(|_, expires| *expires > now);
        live.insert(id.clone(), now + TTL);
        id
    }

    pub fn is_valid(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(id)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub fn remove(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// The session id from the request's cookies, if any.
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then(|| v.to_string())
        })
}

pub fn set_cookie(id: &str) -> HeaderValue {
    let v = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        TTL.as_secs()
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("gs_session=; Path=/"))
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("gs_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_remove() {
        let s = Sessions::default();
        let id = s.create();
        assert_eq!(id.len(), 64);
        assert!(s.is_valid(&id));
        assert!(!s.is_valid("nope"));
        s.remove(&id);
        assert!(!s.is_valid(&id));
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; gs_session=abc123; x=1"),
        );
        assert_eq!(from_headers(&h).as_deref(), Some("abc123"));
        h.insert(header::COOKIE, HeaderValue::from_static("gs_session="));
        assert_eq!(from_headers(&h), None);
    }

    proptest::proptest! {
        /// Arbitrary Cookie headers: a session id or none, never a panic.
        #[test]
        fn any_cookie_header(v in "\\PC*", bytes in proptest::prelude::any::<Vec<u8>>()) {
            let mut h = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&v) {
                h.append(header::COOKIE, value);
            }
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                h.append(header::COOKIE, value);
            }
            if let Some(id) = from_headers(&h) {
                proptest::prop_assert!(!id.is_empty());
            }
        }
    }
}
