//! The session cookie: the admin token is exchanged once for a random session id (kept in
//! `state::Sessions`) sent back in an HttpOnly, SameSite=Strict cookie.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::state::SESSION_TTL as TTL;

pub const COOKIE: &str = "gs_session";

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
