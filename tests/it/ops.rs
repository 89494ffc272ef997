//! Liveness, readiness and the OpenAPI document.

use serde_json::Value;

use crate::helpers::{client, Server};

#[test]
fn health_and_readiness_are_public() {
    let s = Server::start();
    let h: Value = s.public_json("/healthz");
    assert_eq!(h["status"], "ok");
    let r = client().get(format!("{}/readyz", s.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = r.json().unwrap();
    assert_eq!(r["database"], "ok");
}

#[test]
fn openapi_describes_every_endpoint() {
    let s = Server::start();
    let doc: Value = s.public_json("/api/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/analytics/performance",
        "/api/analytics/performance/routes",
        "/api/analytics/performance/histogram",
        "/api/analytics/ai-performance",
        "/api/analytics/database-performance",
        "/api/analytics/events",
        "/api/analytics/conversions",
        "/api/overview",
        "/api/session",
        "/healthz",
        "/readyz",
        "/api/openapi.json",
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/models",
        "/api/ai/generate",
        "/api/analytics/errors",
        "/api/alerts",
        "/api/alerts/rules/{id}",
        "/api/alerts/silences",
    ] {
        assert!(paths.contains_key(p), "{p} undocumented");
    }
    // Every documented operation exists: none answers 404 or 405.
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let req = match method.as_str() {
                "get" => s.get(path),
                "post" => s.post(path, "{}"),
                "delete" => client()
                    .delete(format!("{}{path}", s.url))
                    .bearer_auth(crate::helpers::TOKEN)
                    .send()
                    .unwrap(),
                "put" => client()
                    .request("PUT", format!("{}{path}", s.url))
                    .bearer_auth(crate::helpers::TOKEN)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .unwrap(),
                other => panic!("unexpected method {other}"),
            };
            let status = req.status().as_u16();
            // A templated path (`/users/{id}`) may answer 404 for the missing resource,
            // never the router's own 404.
            let body: serde_json::Value = req.json().unwrap_or_default();
            let resource_404 = path.contains('{')
                && !body["error"]["message"]
                    .as_str()
                    .unwrap_or("no route")
                    .starts_with("no route");
            assert!(
                status != 405 && (status != 404 || resource_404),
                "{method} {path}: {status} {body}"
            );
        }
    }
}
