//! On `storage.engine = "clickhouse"`, the endpoints whose data is not served from
//! ClickHouse yet answer 501 `not_on_clickhouse`, naming the endpoint: a node must never
//! answer from its own DuckDB file what the cluster holds, nor store a stream no node can
//! read back. The lists shrink as capabilities are ported (README "Scale-out on ClickHouse").

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Read and ingest endpoints served on ClickHouse: (path, methods; empty = all).
const PORTED: &[(&str, &[Method])] = &[
    ("/api/analytics/events", &[]),
    ("/api/analytics/conversions", &[]),
    ("/api/analytics/funnels", &[]),
    ("/api/analytics/funnels/", &[Method::GET]),
    ("/api/analytics/users/", &[Method::GET]),
    ("/api/analytics/retention", &[]),
    ("/api/analytics/features", &[]),
    ("/api/analytics/growth", &[]),
    ("/api/analytics/performance", &[]),
    ("/api/analytics/performance/routes", &[Method::GET]),
    ("/api/analytics/performance/histogram", &[Method::GET]),
    ("/api/admin/prune", &[]),
    ("/api/overview", &[]),
    // The streams ClickHouse holds; the others answer 501 from the handler.
    ("/api/export", &[Method::GET]),
    ("/api/analytics/ai-performance", &[]),
    ("/api/analytics/database-performance", &[]),
    (
        "/api/analytics/database-performance/queries",
        &[Method::GET],
    ),
    (
        "/api/analytics/database-performance/n-plus-one",
        &[Method::GET],
    ),
    (
        "/api/analytics/database-performance/index-advice",
        &[Method::GET],
    ),
    ("/api/analytics/errors", &[]),
    ("/api/analytics/system", &[]),
    ("/api/scaling/", &[Method::GET]),
    ("/api/admin/backup", &[]),
    ("/api/admin/backups", &[]),
];

/// Prefixes of endpoints that read or keep event data outside the ported list.
const GATED: &[&str] = &[
    "/api/analytics/",
    "/api/overview",
    "/api/export",
    "/api/scaling",
    "/api/admin/backup",
    "/api/admin/prune",
];

/// Whether `method path` is served on the ClickHouse engine.
pub fn ported(method: &Method, path: &str) -> bool {
    if method == Method::OPTIONS || !GATED.iter().any(|g| path.starts_with(g)) {
        return true;
    }
    PORTED.iter().any(|(p, methods)| {
        let matches = if p.ends_with('/') {
            path.strip_prefix(p)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        } else {
            path == *p
        };
        matches && (methods.is_empty() || methods.contains(method))
    })
}

/// Marks the 501 `gate` answers, so the edge does not record it as a fault of this server.
#[derive(Debug, Clone, Copy)]
pub struct NotServedHere;

/// The middleware on ClickHouse nodes (only there): 501 for what is not served from
/// ClickHouse yet.
pub async fn gate(req: Request, next: Next) -> Response {
    if !ported(req.method(), req.uri().path()) {
        let what = format!("{} {}", req.method(), req.uri().path());
        let mut resp = ApiError::NotOnClickHouse(what).into_response();
        resp.extensions_mut().insert(NotServedHere);
        return resp;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ported_and_gated_paths() {
        assert!(ported(&Method::GET, "/api/analytics/events"));
        assert!(ported(&Method::POST, "/api/analytics/conversions"));
        assert!(ported(&Method::GET, "/api/analytics/conversions"));
        assert!(ported(&Method::GET, "/api/analytics/users/u1"));
        assert!(!ported(&Method::GET, "/api/analytics/users/u1/x"));
        assert!(!ported(&Method::DELETE, "/api/analytics/users/u1"));
        assert!(ported(&Method::GET, "/api/export"));
        assert!(ported(&Method::GET, "/api/analytics/funnels/signup"));
        assert!(!ported(&Method::GET, "/api/analytics/funnels/a/b"));
        assert!(ported(&Method::GET, "/api/analytics/performance"));
        assert!(ported(&Method::POST, "/api/analytics/performance"));
        assert!(ported(&Method::GET, "/api/analytics/performance/routes"));
        assert!(ported(&Method::GET, "/api/analytics/performance/histogram"));
        assert!(!ported(&Method::GET, "/api/analytics/performance/other"));
        assert!(ported(&Method::GET, "/api/overview"));
        assert!(ported(&Method::OPTIONS, "/api/analytics/performance"));
        assert!(ported(&Method::GET, "/healthz"));
        assert!(ported(&Method::POST, "/api/admin/prune"));
        assert!(ported(&Method::POST, "/api/admin/backup"));
        assert!(ported(&Method::GET, "/api/admin/backups"));
        for m in [Method::GET, Method::POST] {
            assert!(ported(&m, "/api/analytics/system"));
        }
        for p in ["recommendation", "forecast", "history", "manifests"] {
            assert!(ported(&Method::GET, &format!("/api/scaling/{p}")));
        }
        assert!(!ported(&Method::GET, "/api/scaling/a/b"));
        assert!(ported(&Method::POST, "/v1/chat/completions"));
        for m in [Method::GET, Method::POST] {
            assert!(ported(&m, "/api/analytics/ai-performance"));
            assert!(ported(&m, "/api/analytics/database-performance"));
        }
        assert!(ported(
            &Method::GET,
            "/api/analytics/database-performance/queries"
        ));
        assert!(ported(
            &Method::GET,
            "/api/analytics/database-performance/n-plus-one"
        ));
        assert!(ported(
            &Method::GET,
            "/api/analytics/database-performance/index-advice"
        ));
        assert!(!ported(
            &Method::GET,
            "/api/analytics/database-performance/x"
        ));
        assert!(ported(&Method::POST, "/api/db/select"));
        // Alerts keep their state in ClickHouse; the errors stream is stored there.
        for m in [Method::GET, Method::POST] {
            assert!(ported(&m, "/api/analytics/errors"));
        }
        assert!(ported(&Method::GET, "/api/alerts"));
        assert!(ported(&Method::POST, "/api/alerts/rules"));
        assert!(ported(&Method::DELETE, "/api/alerts/silences/s1"));
        assert!(!ported(&Method::GET, "/api/analytics/errors/x"));
    }
}
