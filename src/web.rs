//! The dashboard's static files (`web/`), embedded in the binary with content types,
//! ETags and no-cache revalidation, and the tracker `gs.js` with this server's
//! `[performance]` settings written in. Debug builds read the files from disk for quick
//! editing (the tracker once, when the router is built).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::config::PerformanceConfig;
use crate::error::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// Pages may only talk to this origin; inline styles are allowed because charts set them.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The tracker script sites embed with `<script src=".../gs.js">`.
const TRACKER: &str = "gs.js";

/// Where `gs.js` takes its settings: an empty object in the file, this server's values
/// as served. The names are the tag's `data-` attributes, which override them per site.
const TRACKER_SETTINGS: &str = "/*settings*/{}";

/// `gs.js` as this server serves it: the file with the `[performance]` settings written
/// in, and the ETag of exactly those bytes (so a changed setting is a changed ETag).
/// Made once per router; its brotli copy once per process, like every embedded file's.
#[derive(Clone)]
pub struct Tracker {
    body: Bytes,
    etag: String,
}

impl Tracker {
    pub fn new(p: &PerformanceConfig) -> Tracker {
        let settings = serde_json::json!({
            "batch-size": p.batch_size,
            "flush-interval": p.flush_interval,
            "web-vitals": p.enable_web_vitals,
            "custom-metrics": p.enable_custom_metrics,
        });
        let file = Assets::get(TRACKER).map(|f| f.data).unwrap_or_default();
        // Whole-line `//` comments explain the source to its readers; browsers on every
        // page of every site would only download them (about 230 bytes compressed). The
        // file has no template literals, so no such line is inside a string.
        let mut text = String::with_capacity(file.len());
        for line in String::from_utf8_lossy(&file).lines() {
            if !line.trim_start().starts_with("//") {
                text.push_str(line);
                text.push('\n');
            }
        }
        debug_assert!(
            text.contains(TRACKER_SETTINGS),
            "gs.js lost its settings slot"
        );
        let body = text.replacen(TRACKER_SETTINGS, &settings.to_string(), 1);
        let etag = format!(
            "\"{}\"",
            hex::encode(&Sha256::digest(body.as_bytes())[..16])
        );
        Tracker {
            body: Bytes::from(body),
            etag,
        }
    }
}

/// Serves an embedded file for GET/HEAD, `/` as `index.html`; anything else is a JSON 404.
pub async fn fallback(tracker: Tracker, req: Request) -> Response {
    let path = req.uri().path();
    let not_found = || ApiError::NotFound(format!("{} {}", req.method(), path)).into_response();
    if !(req.method() == Method::GET || req.method() == Method::HEAD) || path.starts_with("/api/") {
        return not_found();
    }
    let name = match path.trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let Some(file) = Assets::get(name) else {
        return not_found();
    };
    let (data, etag) = if name == TRACKER {
        (tracker.body, tracker.etag)
    } else {
        let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
        let data = match file.data {
            Cow::Borrowed(b) => Bytes::from_static(b),
            Cow::Owned(v) => Bytes::from(v),
        };
        (data, etag)
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let br = if fresh || !accepts_brotli(req.headers()) {
        None
    } else {
        brotli_copy(&etag, &data)
    };
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some(br) = br {
        let mut r = Response::new(Body::from(br.to_vec()));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        r
    } else {
        Response::new(Body::from(data))
    };
    let headers = resp.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let mime = file.metadata.mimetype();
    if let Ok(v) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if name == TRACKER {
        // Every page of every site that embeds it loads it: let browsers keep it an hour
        // before revalidating, and let pages with COEP (or SRI's crossorigin) load it.
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        );
    } else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if mime.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    resp
}

fn accepts_brotli(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|c| {
            let mut parts = c.split(';').map(str::trim);
            parts.next() == Some("br") && !parts.any(|q| q == "q=0" || q == "q=0.0")
        })
}

/// Embedded files compressed once at brotli's highest quality: far smaller than the
/// response layer's fast on-the-fly level (gs.js ~2.4 KB instead of ~2.9 KB) and paid only
/// on a file's first request, since the files never change while the binary runs.
fn brotli_copy(etag: &str, data: &[u8]) -> Option<Arc<[u8]>> {
    static COPIES: OnceLock<Mutex<HashMap<String, Arc<[u8]>>>> = OnceLock::new();
    let copies = COPIES.get_or_init(Default::default);
    if let Some(c) = copies.lock().get(etag) {
        return Some(c.clone());
    }
    let mut out = Vec::with_capacity(data.len() / 3);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    // Writing to memory cannot fail; if it ever did, the plain file is still a right answer.
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
    let compressed: Arc<[u8]> = out.into();
    copies.lock().insert(etag.to_string(), compressed.clone());
    Some(compressed)
}

/// Every embedded file's path and size, for tests and the asset budget.
pub fn asset_sizes() -> Vec<(String, usize)> {
    Assets::iter()
        .filter_map(|name| Assets::get(&name).map(|f| (name.to_string(), f.data.len())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracker_carries_the_settings() {
        let file = Assets::get(TRACKER).unwrap().data;
        let text = String::from_utf8_lossy(&file);
        assert_eq!(
            text.matches(TRACKER_SETTINGS).count(),
            1,
            "one settings slot"
        );

        let default = Tracker::new(&PerformanceConfig::default());
        let body = String::from_utf8_lossy(&default.body).into_owned();
        assert!(!body.contains(TRACKER_SETTINGS), "slot filled");
        assert!(
            !text.contains('`'),
            "no template literal may hide a // line"
        );
        assert!(!body.contains("\n    // "), "comment lines left out");
        assert!(body.contains("sendBeacon") && body.contains("})(window, document, {"));
        for pair in [
            r#""batch-size":10"#,
            r#""flush-interval":5000"#,
            r#""web-vitals":true"#,
            r#""custom-metrics":true"#,
        ] {
            assert!(
                body.contains(pair),
                "{pair} in {}",
                &body[body.len() - 200..]
            );
        }

        let tuned = Tracker::new(&PerformanceConfig {
            batch_size: 3,
            enable_web_vitals: false,
            ..PerformanceConfig::default()
        });
        let tuned_body = String::from_utf8_lossy(&tuned.body);
        assert!(tuned_body.contains(r#""batch-size":3"#));
        assert!(tuned_body.contains(r#""web-vitals":false"#));
        assert_ne!(tuned.etag, default.etag, "other settings, other ETag");
    }
}
