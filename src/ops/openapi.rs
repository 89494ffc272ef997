//! The OpenAPI 3.1 document describing every endpoint, served at `/api/openapi.json`.

use serde_json::{json, Value};

/// (path, ingest schema, GET summary) for every ingest stream.
const STREAMS: &[(&str, &str, &str, &str)] = &[
    (
        "/api/analytics/performance",
        "PerformanceReport",
        "Performance",
        "Web vitals (newest report per metric instance): totals, each metric at `stat` with good / \
         needs-improvement / poor shares and rating, the 0-100 score, busiest routes, devices, trend, newest samples",
    ),
    (
        "/api/analytics/ai-performance",
        "AiCall",
        "AI",
        "AI call totals, error and cache-hit rates, latency percentiles, per-model breakdown, newest calls",
    ),
    (
        "/api/analytics/database-performance",
        "QueryTiming",
        "Database",
        "Query latency, slow-query rate, cache hits, slowest queries, newest timings",
    ),
    (
        "/api/analytics/events",
        "Event",
        "Growth",
        "Event totals, users, sessions, top events, newest events",
    ),
    (
        "/api/analytics/conversions",
        "Conversion",
        "Growth",
        "Conversions per funnel and step, newest conversions",
    ),
    (
        "/api/analytics/system",
        "SystemSample",
        "Scaling",
        "Load samples of this host and of the app instances: a series of app and host CPU, memory and \
         requests, every instance seen with its latest values and whether it is fresh, newest samples",
    ),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (path, schema, tag, read) in STREAMS {
        paths.insert(
            path.to_string(),
            json!({ "post": ingest_op(schema, tag), "get": read_op(tag, read) }),
        );
    }
    vitals_reads(&mut paths);
    growth_paths(&mut paths);
    paths.insert(
        "/api/overview".into(),
        json!({ "get": read_op("Dashboard", "Front-page numbers of every stream in one call: events, users, \
            conversions, web-vitals p75, AI calls, slow queries, and an events series") }),
    );
    paths.insert(
        "/api/session".into(),
        json!({
            "post": { "tags": ["Dashboard"], "summary": "Log in: exchange the admin token for a session cookie",
                "security": [],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["token"], "properties": { "token": { "type": "string" } } } } } },
                "responses": { "200": { "description": "Logged in; Set-Cookie gs_session (HttpOnly, SameSite=Strict)" },
                    "401": error_ref() } },
            "get": { "tags": ["Dashboard"], "summary": "Whether this session is logged in",
                "responses": { "200": { "description": "authenticated, ingest_key_required, version" }, "401": error_ref() } },
            "delete": { "tags": ["Dashboard"], "summary": "Log out (with a cookie, needs X-Requested-With: growth-stack)",
                "responses": { "200": { "description": "Logged out; the cookie is cleared" }, "401": error_ref(), "403": error_ref() } },
        }),
    );
    paths.insert(
        "/healthz".into(),
        json!({ "get": { "tags": ["Ops"], "summary": "Liveness: the process answers", "security": [],
            "responses": { "200": { "description": "alive" } } } }),
    );
    paths.insert(
        "/readyz".into(),
        json!({ "get": { "tags": ["Ops"], "summary": "Readiness: the database answers and the server is not shutting down",
            "security": [],
            "responses": { "200": { "description": "ready" }, "503": { "description": "not ready or shutting down" } } } }),
    );
    paths.insert(
        "/api/openapi.json".into(),
        json!({ "get": { "tags": ["Ops"], "summary": "This document", "security": [],
            "responses": { "200": { "description": "OpenAPI 3.1 document" } } } }),
    );
    gateway_paths(&mut paths);
    scaling_paths(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "growth-stack",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Web vitals, AI-call metrics, query timings and product analytics in one binary. \
                Ingest (POST) is public and meant for browsers; reads need the admin token.",
        },
        "security": [{ "admin": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "admin": { "type": "http", "scheme": "bearer", "description": "The admin token printed at first start" },
                "ingestKey": { "type": "apiKey", "in": "header", "name": "X-Growth-Key",
                    "description": "Only when ingest.key is set; may also be sent as ?key=" },
                "gatewayKey": { "type": "http", "scheme": "bearer",
                    "description": "An AI gateway key (ai.gateway_keys / GROWTH_GATEWAY_KEYS, or the one generated at first start)" },
                "gatewayApiKey": { "type": "apiKey", "in": "header", "name": "x-api-key",
                    "description": "The same gateway key, as the Anthropic SDK sends it" },
            },
            "parameters": parameters(),
            "schemas": schemas(),
            "responses": {
                "Error": { "description": "Error envelope",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
            },
        },
    })
}

/// The AI gateway: the providers' own APIs, so their SDKs work by changing the base URL.
fn gateway_paths(paths: &mut serde_json::Map<String, Value>) {
    let security = json!([{ "gatewayKey": [] }, { "gatewayApiKey": [] }]);
    let cache_headers: Vec<Value> = [
        ("cache-control", "no-cache (skip the cache read), no-store (do not store), max-age=N (TTL / oldest entry accepted)"),
        ("cf-aig-skip-cache", "true: neither read nor store"),
        ("cf-aig-cache-ttl", "seconds to keep this answer"),
        ("x-growth-user-id", "the end user, for per-user limits and metrics (else `user` or `metadata.user_id`)"),
    ]
    .iter()
    .map(|(n, d)| json!({ "name": n, "in": "header", "required": false, "schema": { "type": "string" }, "description": d }))
    .collect();
    let provider_op = |summary: &str, description: &str| {
        json!({
            "tags": ["AI gateway"], "summary": summary, "description": description,
            "security": security, "parameters": cache_headers,
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object" } } } },
            "responses": {
                "200": { "description": "The provider's answer (JSON, or text/event-stream when `stream` is true). \
                    Headers: x-growth-cache HIT|MISS|BYPASS, x-request-id, x-growth-provider, x-growth-demo on demo answers" },
                "400": { "description": "Invalid request, in the provider's error shape" },
                "401": { "description": "Missing or wrong gateway key, in the provider's error shape" },
                "429": { "description": "Rate limited: Retry-After and x-ratelimit-* headers, in the provider's error shape" },
                "502": { "description": "The provider failed or refused the gateway's provider key" },
                "504": { "description": "The provider timed out" },
            },
        })
    };
    paths.insert(
        "/v1/chat/completions".into(),
        json!({ "post": provider_op("OpenAI Chat Completions through the gateway",
            "Cached (streams too), rate limited, retried with fallbacks, recorded in ai_performance_metrics. \
             Errors use OpenAI's shape {error: {message, type, param, code}}.") }),
    );
    paths.insert(
        "/v1/messages".into(),
        json!({ "post": provider_op("Anthropic Messages through the gateway",
            "As /v1/chat/completions, in Anthropic's format; errors use {type: \"error\", error: {type, message}}.") }),
    );
    paths.insert(
        "/v1/models".into(),
        json!({ "get": { "tags": ["AI gateway"], "summary": "Models the gateway routes (OpenAI list shape; Anthropic's when anthropic-version is sent)",
            "security": security, "responses": { "200": { "description": "Model list" }, "401": { "description": "Missing or wrong gateway key" } } } }),
    );
    paths.insert(
        "/api/ai/generate".into(),
        json!({ "post": { "tags": ["AI gateway"], "summary": "The guide's generateAIResponse(model, prompt, {parameters, userId, cached})",
            "security": security,
            "requestBody": { "required": true, "content": { "application/json": { "schema": {
                "type": "object", "required": ["model", "prompt"], "additionalProperties": false,
                "properties": {
                    "model": { "type": "string" }, "prompt": { "type": "string" },
                    "system": { "type": "string" },
                    "parameters": { "type": "object", "description": "provider parameters, e.g. max_tokens, temperature" },
                    "userId": { "type": "string" }, "cached": { "type": "boolean", "default": true },
                } } } } },
            "responses": {
                "200": { "description": "{request_id, model, provider, content, cached, demo, usage, response}" },
                "400": error_ref(), "401": error_ref(), "422": error_ref(), "429": error_ref(),
                "502": error_ref(), "504": error_ref(),
            } } }),
    );
}

fn error_ref() -> Value {
    json!({ "$ref": "#/components/responses/Error" })
}

fn ingest_op(schema: &str, tag: &str) -> Value {
    let item = json!({ "$ref": format!("#/components/schemas/{schema}") });
    let body = json!({ "oneOf": [item, { "type": "array", "items": item, "maxItems": 1000 }] });
    json!({
        "tags": [tag],
        "summary": format!("Record one {schema} or a batch of them"),
        "description": "Answers 200 only after the rows are committed. A batch with one invalid item writes nothing. \
            `text/plain` bodies (navigator.sendBeacon) are parsed as JSON.",
        "security": [{}, { "ingestKey": [] }],
        "requestBody": { "required": true, "content": {
            "application/json": { "schema": body },
            "text/plain": { "schema": body },
        } },
        "responses": {
            "200": { "description": "Committed", "content": { "application/json": { "schema": {
                "type": "object", "properties": { "accepted": { "type": "integer" } } } } } },
            "400": error_ref(), "403": error_ref(), "413": error_ref(), "415": error_ref(),
            "422": error_ref(), "429": error_ref(), "503": error_ref(),
        },
    })
}

fn read_op(tag: &str, summary: &str) -> Value {
    let parameters: Vec<Value> = ["range", "from", "to", "limit", "offset"]
        .iter()
        .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
        .collect();
    json!({
        "tags": [tag],
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "200": { "description": "Totals, aggregates and one page of the newest rows, with `range` and `page`",
                "content": { "application/json": { "schema": { "type": "object" } } } },
            "400": error_ref(), "401": error_ref(),
        },
    })
}

/// The performance filters (`stat`, `route`, `device`) on the summary, and its two extra reads.
fn vitals_reads(paths: &mut serde_json::Map<String, Value>) {
    let with = |op: &mut Value, extra: &[&str]| {
        if let Some(list) = op["parameters"].as_array_mut() {
            for p in extra {
                list.push(json!({ "$ref": format!("#/components/parameters/{p}") }));
            }
        }
    };
    if let Some(get) = paths
        .get_mut("/api/analytics/performance")
        .and_then(|p| p.get_mut("get"))
    {
        with(get, &["stat", "route", "device"]);
    }
    let mut routes = read_op(
        "Performance",
        "Route x device groups: each metric at `stat` with its shares, the group's 0-100 score, page \
         views, and the site-score points fixing it would gain (opportunity), highest opportunity first",
    );
    with(&mut routes, &["stat", "route", "device"]);
    let mut histogram = read_op(
        "Performance",
        "A metric's distribution in (from, to] bins whose edges include its thresholds, each rated",
    );
    with(&mut histogram, &["metric", "route", "device"]);
    paths.insert(
        "/api/analytics/performance/routes".into(),
        json!({ "get": routes }),
    );
    paths.insert(
        "/api/analytics/performance/histogram".into(),
        json!({ "get": histogram }),
    );
}

fn parameters() -> Value {
    let q = |name: &str, schema: Value, description: &str| json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description });
    json!({
        "range": q("range", json!({ "type": "string", "default": "24h", "examples": ["1h", "24h", "7d", "30d"] }),
            "Window ending now: a count of m, h or d"),
        "from": q("from", json!({ "type": "string", "format": "date-time" }), "Window start, ISO 8601 (overrides range)"),
        "to": q("to", json!({ "type": "string", "format": "date-time" }), "Window end, ISO 8601; default now"),
        "limit": q("limit", json!({ "type": "integer", "default": 50, "maximum": 1000 }), "Rows per page"),
        "offset": q("offset", json!({ "type": "integer", "default": 0 }), "Rows to skip"),
        "stat": q("stat", json!({ "type": "string", "enum": ["p50", "p75", "p90", "p95", "p99"], "default": "p75" }),
            "Percentile to report (linear interpolation, DuckDB quantile_cont)"),
        "route": q("route", json!({ "type": "string" }), "Only this route template, e.g. /recipes/:id"),
        "device": q("device", json!({ "type": "string", "enum": ["mobile", "tablet", "desktop", "unknown"] }),
            "Only this device class"),
        "metric": q("metric", json!({ "type": "string", "enum": ["lcp", "inp", "cls", "fcp", "ttfb", "fid"], "default": "lcp" }),
            "Metric (case-insensitive)"),
    })
}

fn schemas() -> Value {
    let s = |max: usize| json!({ "type": ["string", "null"], "maxLength": max });
    let ms = json!({ "type": ["number", "null"], "minimum": 0, "maximum": 86_400_000, "description": "milliseconds" });
    let uuid = json!({ "type": ["string", "null"], "format": "uuid" });
    let ts = json!({ "type": ["integer", "null"], "description": "client time, ms since the Unix epoch; default now" });
    let created = json!({ "type": ["string", "null"], "format": "date-time", "description": "server time; default now" });
    let props = json!({ "type": ["object", "null"], "description": "at most 16 KiB of JSON" });
    let ip = json!({ "type": ["string", "null"], "description": "end-user IP; default the sender's; stored per privacy.ip" });
    let b = json!({ "type": ["boolean", "null"] });
    let app_user = json!({ "type": ["string", "integer", "null"], "maxLength": 256,
        "description": "the app's own user id; without it a cookieless visitor id is derived" });
    let count = json!({ "type": ["integer", "null"], "minimum": 0 });
    let object = |required: &[&str], props: Value| json!({ "type": "object", "additionalProperties": false, "required": required, "properties": props });
    json!({
        "Error": object(&["error"], json!({ "error": object(&["code", "message"], json!({
            "code": { "type": "string" }, "message": { "type": "string" },
            "index": { "type": "integer", "description": "batch item at fault" },
            "field": { "type": "string", "description": "field at fault" },
        })) })),
        "PerformanceReport": { "oneOf": [
            { "$ref": "#/components/schemas/PerformanceSample" },
            { "$ref": "#/components/schemas/WebVital" },
        ], "description": "An object with `name` is a WebVital; any other is a PerformanceSample" },
        "PerformanceSample": object(&[], json!({
            "id": uuid, "user_id": app_user, "session_id": s(256),
            "route": { "type": ["string", "null"], "maxLength": 2048, "description": "kept as sent; when absent, the templated path" },
            "path": s(2048), "url": { "type": ["string", "null"], "maxLength": 2048, "description": "its path is used as `path`" },
            "lcp": ms, "inp": ms, "cls": { "type": ["number", "null"], "minimum": 0, "maximum": 100 },
            "fcp": ms, "ttfb": ms, "fid": ms,
            "metric_id": { "type": ["string", "null"], "maxLength": 256, "description": "the page view; its reports replace each other" },
            "report": { "type": ["integer", "null"], "minimum": 1, "description": "1 for the first report of metric_id, 2 for the next..." },
            "navigation_type": s(32),
            "device": { "type": ["string", "null"], "enum": ["mobile", "tablet", "desktop", "unknown", null], "description": "default: from the user agent" },
            "user_agent": s(512), "connection": s(256), "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "WebVital": { "type": "object", "required": ["name", "value"],
            "description": "A web-vitals / Next.js useReportWebVitals metric, as-is. Other fields (entries, label, startTime) are ignored. \
                The newest report per (id, name) counts.",
            "properties": {
                "name": { "type": "string", "enum": ["LCP", "INP", "CLS", "FCP", "TTFB", "FID"], "description": "case-insensitive" },
                "value": { "type": "number", "minimum": 0 }, "id": s(256), "delta": { "type": ["number", "null"] },
                "rating": { "type": ["string", "null"], "enum": ["good", "needs-improvement", "poor", null] },
                "navigationType": s(32), "attribution": { "type": ["object", "null"], "description": "stored as JSON, at most 16 KiB" },
                "route": s(2048), "path": s(2048), "url": s(2048), "sessionId": s(256), "userId": app_user,
                "device": { "type": ["string", "null"], "enum": ["mobile", "tablet", "desktop", "unknown", null] },
                "connection": s(256), "userAgent": s(512), "timestamp": ts,
            } },
        "AiCall": object(&["duration"], json!({
            "id": uuid, "request_id": s(256), "endpoint": s(256), "model": s(256), "tokens": count,
            "duration": ms, "success": b, "error": s(4096), "cache_hit": b,
            "user_id": s(256), "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "QueryTiming": object(&["query", "duration"], json!({
            "id": uuid, "query": { "type": "string", "maxLength": 16384 }, "duration": ms, "rows": count,
            "cached": b, "user_id": app_user, "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "Event": object(&["event"], json!({
            "id": uuid, "user_id": app_user, "session_id": s(256), "event": { "type": "string", "maxLength": 256 },
            "properties": props, "route": s(2048), "referrer": s(2048), "user_agent": s(512),
            "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "SystemSample": object(&["instance"], json!({
            "instance": { "type": "string", "minLength": 1, "maxLength": 256 },
            "cpu": { "type": ["number", "null"], "minimum": 0, "maximum": 1000, "description": "percent of the instance's CPU limit; required unless memory or requests_per_second is sent" },
            "memory": { "type": ["number", "null"], "minimum": 0, "maximum": 1000, "description": "percent of the memory limit" },
            "requests_per_second": { "type": ["number", "null"], "minimum": 0 },
            "p95_latency": ms, "connections": count,
            "error_rate": { "type": ["number", "null"], "minimum": 0, "maximum": 1 },
            "timestamp": ts,
        })),
        "Conversion": object(&["funnel", "step"], json!({
            "id": uuid, "user_id": app_user, "session_id": s(256),
            "funnel": { "type": "string", "maxLength": 256 }, "step": { "type": "string", "maxLength": 256 },
            "properties": props, "timestamp": ts, "created_at": created,
        })),
    })
}

/// Growth analytics reads beyond the ingest streams.
fn growth_paths(paths: &mut serde_json::Map<String, Value>) {
    let q = |name: &str, schema: Value, description: &str| json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description });
    let p = |name: &str| json!({ "$ref": format!("#/components/parameters/{name}") });
    let ok = |description: &str| {
        json!({ "200": { "description": description,
        "content": { "application/json": { "schema": { "type": "object" } } } },
        "400": error_ref(), "401": error_ref() })
    };
    let offset = q(
        "utc_offset",
        json!({ "type": "string", "examples": ["+02:00", "-0530", "120"] }),
        "Day, week and month edges in this UTC offset; default UTC",
    );
    let interval = |default: &str| {
        q(
            "interval",
            json!({ "type": "string", "enum": ["day", "week", "month"], "default": default }),
            "Bucket size",
        )
    };
    let window = q(
        "window",
        json!({ "type": "string", "default": "7d", "examples": ["30m", "24h", "7d"] }),
        "Conversion window from the first step (or seconds)",
    );
    let funnel_answer = "Per step: users, conversion_from_first, conversion_from_previous, drop_off, drop_off_rate, \
        median_seconds_from_previous; with a breakdown, the same per value (top 20)";
    paths.insert("/api/analytics/users/{id}".into(), json!({ "get": {
        "tags": ["Growth"], "summary": "One user (or visitor id): profile (last activity, total events, features used) and newest events",
        "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
            q("limit", json!({ "type": "integer", "default": 50, "maximum": 1000 }), "Newest events to return")],
        "responses": { "200": { "description": "profile and events" }, "401": error_ref(), "404": error_ref() } } }));
    paths.insert("/api/analytics/funnels".into(), json!({ "post": {
        "tags": ["Growth"], "summary": "Ad-hoc funnel over events: 2-10 ordered steps within a conversion window",
        "requestBody": { "required": true, "content": { "application/json": { "schema": {
            "type": "object", "required": ["steps"], "additionalProperties": false, "properties": {
                "steps": { "type": "array", "minItems": 2, "maxItems": 10, "items": { "oneOf": [
                    { "type": "string", "description": "event name" },
                    { "type": "object", "required": ["event"], "properties": {
                        "event": { "type": "string" },
                        "filters": { "type": "array", "maxItems": 10, "items": { "type": "object", "required": ["property", "value"],
                            "properties": { "property": { "type": "string" }, "op": { "enum": ["eq", "neq"] },
                                "value": { "type": ["string", "number", "boolean"] } } } } } } ] } },
                "window": { "type": ["string", "integer"], "description": "30m, 24h, 7d or seconds; default 7d" },
                "range": { "type": "string", "default": "30d" }, "from": { "type": "string" }, "to": { "type": "string" },
                "breakdown": { "type": "string", "description": "property of the first step's event" } } } } } },
        "responses": { "200": { "description": funnel_answer }, "400": error_ref(), "401": error_ref(), "422": error_ref() } } }));
    paths.insert("/api/analytics/funnels/{name}".into(), json!({ "get": {
        "tags": ["Growth"], "summary": "Funnel of the conversions table (analytics.conversion) by funnel name",
        "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } },
            p("range"), p("from"), p("to"), window,
            q("steps", json!({ "type": "string" }), "Comma-separated step order; default every step, most users first"),
            q("breakdown", json!({ "type": "string" }), "Property of the first step's conversion")],
        "responses": { "200": { "description": funnel_answer }, "400": error_ref(), "401": error_ref(), "404": error_ref() } } }));
    paths.insert("/api/analytics/retention".into(), json!({ "get": {
        "tags": ["Growth"], "summary": "Cohort table: size and retained share per period, with retention and churn per period",
        "parameters": [q("start_event", json!({ "type": "string" }), "Event that puts a user in a cohort; default any"),
            q("return_event", json!({ "type": "string" }), "Event that counts as a return; default any"),
            interval("week"), q("periods", json!({ "type": "integer", "default": 8, "minimum": 1, "maximum": 60 }), "Periods after the cohort's own"),
            p("to"), offset.clone()],
        "responses": ok("cohorts[] (start, size, retained[], rates[]), retention[], churn[]") } }));
    paths.insert("/api/analytics/features".into(), json!({ "get": {
        "tags": ["Growth"], "summary": "Feature adoption: users, share of active users, uses per user and trend per feature",
        "parameters": [p("range"), p("from"), p("to"), interval("day"), offset.clone()],
        "responses": ok("active_users, buckets[], features[]") } }));
    paths.insert("/api/analytics/growth".into(), json!({ "get": {
        "tags": ["Growth"], "summary": "Growth overview: DAU/WAU/MAU series and stickiness; top events, routes, referrer domains, \
            UTM source/medium/campaign, browsers, OS and device classes (bots excluded at ingest)",
        "parameters": [p("range"), p("from"), p("to"), offset],
        "responses": ok("totals, active (current, stickiness, series), breakdowns") } }));
}

/// Scaling reads beyond the samples stream, and the Prometheus exposition.
fn scaling_paths(paths: &mut serde_json::Map<String, Value>) {
    let read = |summary: &str, params: Value| {
        json!({ "get": { "tags": ["Scaling"], "summary": summary, "parameters": params,
            "responses": { "200": { "description": "JSON", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": error_ref(), "401": error_ref() } } })
    };
    let q = |name: &str, schema: Value, description: &str| json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description });
    paths.insert(
        "/api/scaling/recommendation".into(),
        read("The Kubernetes HPA algorithm over the fresh samples: current and desired instances, the metric that \
              drove it, the inputs, the stabilisation window, urgency and a reason; state ok, not_enough_data or disabled", json!([])),
    );
    paths.insert(
        "/api/scaling/history".into(),
        read(
            "Recommendations recorded in the window, newest first",
            json!(["range", "from", "to", "limit", "offset"]
                .iter()
                .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
                .collect::<Vec<_>>()),
        ),
    );
    paths.insert(
        "/api/scaling/forecast".into(),
        read("Holt-Winters forecast of the fleet's hourly load with a 95% band, the instances a predicted peak needs, \
              and this host's disk and memory capacity",
            json!([q("hours", json!({ "type": "integer", "minimum": 1, "maximum": 168 }), "hours ahead; default scalability.auto_scaling.forecast_hours")])),
    );
    paths.insert(
        "/api/scaling/manifests".into(),
        read("The settings and the current recommendation as a Kubernetes HPA, a KEDA ScaledObject, and docker compose / kubectl lines",
            json!([
                q("name", json!({ "type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "default": "app" }), "Deployment or compose service"),
                q("namespace", json!({ "type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "default": "default" }), "Kubernetes namespace"),
            ])),
    );
    paths.insert(
        "/metrics".into(),
        json!({ "get": { "tags": ["Ops"], "summary": "Prometheus text exposition (format 0.0.4): process, HTTP per route, ingest, \
            group commits, AI gateway, caches, host gauges, scaling",
            "responses": { "200": { "description": "text/plain; version=0.0.4" }, "401": error_ref() } } }),
    );
}
