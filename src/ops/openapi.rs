//! The OpenAPI 3.1 document served at `/api/openapi.json`: the operations each capability
//! declares next to its handlers (`#[utoipa::path]`), merged, with the security schemes,
//! the shared error envelope and this module's own operations.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa::{OpenApi as _, ToSchema};

use crate::config::Config;
use crate::http::openapi::{error_schema, DEFAULT_MAX_BATCH, ERROR_SCHEMA};

/// This module's own operations.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, openapi_json))]
struct Doc;

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    status: String,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "Ops", summary = "Liveness: the process answers",
    security(()), responses((status = 200, description = "Alive", body = Health)))]
#[allow(dead_code)]
fn healthz() {}

/// Readiness.
#[utoipa::path(get, path = "/readyz", tag = "Ops",
    summary = "Readiness: the database answers and the server is not shutting down",
    security(()),
    responses((status = 200, description = "Ready", body = Object),
        (status = 503, description = "Not ready or shutting down", body = Object)))]
#[allow(dead_code)]
fn readyz() {}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "Ops", summary = "This document",
    security(()), responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
#[allow(dead_code)]
fn openapi_json() {}

/// The whole document: every capability's operations (`parts`), this module's, the
/// security schemes and the error envelope, with the configured ingest batch size.
pub fn document(parts: impl IntoIterator<Item = OpenApi>, config: &Config) -> OpenApi {
    let mut doc = Doc::openapi();
    for part in parts {
        doc.merge(part);
    }
    doc.info = InfoBuilder::new()
        .title("growth-stack")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Web vitals, AI-call metrics, query timings and product analytics in one binary. Ingest \
             (POST /api/analytics/...) is public and meant for browsers; reads need the admin token; \
             the AI gateway (/v1/..., /api/ai/generate) needs a gateway key. Every error of our own \
             endpoints is the `Error` envelope; the gateway's OpenAI and Anthropic endpoints answer \
             errors in the provider's own shape, as their SDKs expect.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ERROR_SCHEMA.to_string(), error_schema());
    let bearer = |description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description))
                .build(),
        )
    };
    let header_key = |name: &str, description: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            name,
            description,
        )))
    };
    for (name, scheme) in [
        ("admin", bearer("The admin token printed at first start (also in data/admin_token)")),
        (
            "gatewayKey",
            bearer("An AI gateway key (ai.gateway_keys / GROWTH_GATEWAY_KEYS, or the one generated at first start)"),
        ),
        (
            "gatewayApiKey",
            header_key("x-api-key", "The same gateway key, as the Anthropic SDK sends it"),
        ),
        (
            "ingestKey",
            header_key("X-Growth-Key", "Only when ingest.key is set; may also be sent as ?key="),
        ),
    ] {
        components.security_schemes.insert(name.to_string(), scheme);
    }
    let batch = config.ingest.max_batch;
    if batch != DEFAULT_MAX_BATCH {
        for schema in components.schemas.values_mut() {
            if let Ok(mut v) = serde_json::to_value(&*schema) {
                if set_max_items(&mut v, DEFAULT_MAX_BATCH, batch) {
                    if let Ok(s) = serde_json::from_value(v) {
                        *schema = s;
                    }
                }
            }
        }
    }
    doc
}

/// Rewrites the one-or-many bodies' `maxItems` to the configured batch size.
fn set_max_items(v: &mut Value, from: usize, to: usize) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = false;
            if m.get("type").and_then(Value::as_str) == Some("array")
                && m.get("maxItems").and_then(Value::as_u64) == Some(from as u64)
            {
                m.insert("maxItems".into(), to.into());
                changed = true;
            }
            for child in m.values_mut() {
                changed |= set_max_items(child, from, to);
            }
            changed
        }
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |c, child| set_max_items(child, from, to) | c),
        _ => false,
    }
}

/// The document as the JSON answer, serialised once at start.
#[derive(Clone)]
pub struct Served(axum::body::Bytes);

impl Served {
    pub fn new(doc: &OpenApi) -> Served {
        Served(serde_json::to_vec(doc).unwrap_or_default().into())
    }
}

impl IntoResponse for Served {
    fn into_response(self) -> Response {
        let mut resp = self.0.into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}
