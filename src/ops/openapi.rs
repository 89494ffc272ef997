//! The OpenAPI 3.1 document describing every endpoint, served at `/api/openapi.json`.

use serde_json::{json, Value};

/// (path, ingest schema, GET summary) for every ingest stream.
const STREAMS: &[(&str, &str, &str, &str)] = &[
    (
        "/api/analytics/performance",
        "PerformanceSample",
        "Performance",
        "Web-vitals totals, p75 and rating per metric, busiest routes, newest samples",
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
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (path, schema, tag, read) in STREAMS {
        paths.insert(
            path.to_string(),
            json!({ "post": ingest_op(schema, tag), "get": read_op(tag, read) }),
        );
    }
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

fn parameters() -> Value {
    let q = |name: &str, schema: Value, description: &str| json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description });
    json!({
        "range": q("range", json!({ "type": "string", "default": "24h", "examples": ["1h", "24h", "7d", "30d"] }),
            "Window ending now: a count of m, h or d"),
        "from": q("from", json!({ "type": "string", "format": "date-time" }), "Window start, ISO 8601 (overrides range)"),
        "to": q("to", json!({ "type": "string", "format": "date-time" }), "Window end, ISO 8601; default now"),
        "limit": q("limit", json!({ "type": "integer", "default": 50, "maximum": 1000 }), "Rows per page"),
        "offset": q("offset", json!({ "type": "integer", "default": 0 }), "Rows to skip"),
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
        "PerformanceSample": object(&[], json!({
            "id": uuid, "user_id": uuid, "session_id": s(256), "route": s(2048),
            "lcp": ms, "inp": ms, "cls": { "type": ["number", "null"], "minimum": 0, "maximum": 100 },
            "fcp": ms, "ttfb": ms, "fid": ms,
            "user_agent": s(512), "connection": s(256), "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "AiCall": object(&["duration"], json!({
            "id": uuid, "request_id": s(256), "endpoint": s(256), "model": s(256), "tokens": count,
            "duration": ms, "success": b, "error": s(4096), "cache_hit": b,
            "user_id": uuid, "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "QueryTiming": object(&["query", "duration"], json!({
            "id": uuid, "query": { "type": "string", "maxLength": 16384 }, "duration": ms, "rows": count,
            "cached": b, "user_id": uuid, "ip": ip, "timestamp": ts, "created_at": created,
        })),
        "Event": object(&["event"], json!({
            "id": uuid, "user_id": app_user, "session_id": s(256), "event": { "type": "string", "maxLength": 256 },
            "properties": props, "route": s(2048), "referrer": s(2048), "user_agent": s(512),
            "ip": ip, "timestamp": ts, "created_at": created,
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
