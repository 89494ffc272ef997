//! HTTP handlers: thin wrappers over the engine, the rule store and the reads, each with
//! its OpenAPI operation. The live state (rules, their states, silences) is answered from
//! memory and never cached, so an edit shows at once; the windowed reads from DuckDB
//! (history, top errors) go through `CachedRead`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use duckdb::params;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::openapi::{RefOr, Response as OaResponse};
use utoipa::{IntoParams, IntoResponses, OpenApi};

use super::errors::ErrorIn;
use super::history;
use super::measures::{self, Stats};
use super::notify;
use super::outbox::{self, Pending};
use super::reads;
use super::rules::{self, Origin, Rule, RuleSpec};
use super::schema::TestBody;
use super::series::{Series, State as AlertState};
use super::shared;
use super::silences::{self, SilenceIn};
use super::Engine;
use crate::error::ApiError;
use crate::http::body::JsonObject;
use crate::http::ingest::Accepted;
use crate::http::openapi::{
    errors as error_responses, IngestErrors, OneOrMany, ReadErrors, CSRF, UNAUTHORIZED,
};
use crate::http::params::present;
use crate::http::params::{Int, Params};
use crate::http::{Admin, CachedRead, PathParam, Window, WindowQuery};
use crate::state::AppState;
use crate::store::{Store, StoreError};

type Eng = Extension<Arc<Engine>>;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(
    post_errors,
    errors,
    list,
    summary,
    history,
    measures,
    rules,
    create_rule,
    rule,
    update_rule,
    delete_rule,
    rule_preview,
    preview,
    silences,
    create_silence,
    expire_silence,
    send_test,
    notifications
))]
pub(super) struct Doc;

/// The body of `POST /api/analytics/errors`.
type ErrorsBody = OneOrMany<ErrorIn>;

const MALFORMED: (u16, &str) = (400, "The body is not JSON, or not a JSON object");
const TOO_LARGE: (u16, &str) = (413, "The body is larger than ingest.body_limit");
const MEDIA: (u16, &str) = (
    415,
    "Content-Type is neither application/json nor text/plain",
);
const INVALID: (u16, &str) = (422, "The body breaks a rule; `field` names it");
const NO_RULE: (u16, &str) = (404, "No rule with that id");

/// Declares an `IntoResponses` list of error statuses.
macro_rules! error_list {
    ($name:ident, [$($e:expr),* $(,)?]) => {
        struct $name;
        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<OaResponse>> {
                error_responses(&[$($e),*])
            }
        }
    };
}

error_list!(AuthOnly, [UNAUTHORIZED]);
error_list!(LookupRule, [UNAUTHORIZED, NO_RULE]);
error_list!(
    CreateErrors,
    [
        MALFORMED,
        UNAUTHORIZED,
        CSRF,
        (
            409,
            "A rule with that id exists; PUT /api/alerts/rules/{id} changes it"
        ),
        TOO_LARGE,
        MEDIA,
        INVALID
    ]
);
error_list!(UpdateErrors, [MALFORMED, UNAUTHORIZED, (403, "A rule from the config file ([[alerts.rules]]), or a dashboard session without X-Requested-With"), NO_RULE, TOO_LARGE, MEDIA, INVALID]);
error_list!(
    DeleteErrors,
    [
        UNAUTHORIZED,
        (
            403,
            "A rule from the config file, or a dashboard session without X-Requested-With"
        ),
        NO_RULE,
        (
            409,
            "A built-in rule as shipped: turn it off with PUT and \"enabled\": false instead"
        )
    ]
);
error_list!(
    BodyErrors,
    [MALFORMED, UNAUTHORIZED, CSRF, TOO_LARGE, MEDIA, INVALID]
);
error_list!(
    ExpireErrors,
    [UNAUTHORIZED, CSRF, (404, "No silence with that id")]
);
error_list!(
    TestErrors,
    [
        MALFORMED,
        UNAUTHORIZED,
        CSRF,
        (404, "No channel of that name"),
        (
            409,
            "No channel is configured: set alerts.webhook_url (GROWTH_ALERTS_WEBHOOK_URL)"
        ),
        TOO_LARGE,
        MEDIA,
        INVALID
    ]
);

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(None, field, message)
}

pub async fn load_rules(store: &Store) -> Result<Vec<RuleSpec>, StoreError> {
    if let Some(ch) = store.clickhouse() {
        return shared::rules(ch).await;
    }
    store
        .query(|c| {
            let mut stmt =
                c.prepare("SELECT spec::VARCHAR FROM alert_rules ORDER BY updated_at")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for r in rows {
                match serde_json::from_str::<RuleSpec>(&r?) {
                    Ok(s) => out.push(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored alert rule no longer parses; skipped")
                    }
                }
            }
            Ok(out)
        })
        .await
}

async fn save_rule(store: &Store, id: String, spec: Option<RuleSpec>) -> Result<(), StoreError> {
    if let Some(ch) = store.clickhouse() {
        return shared::save_rule(ch, id, spec).await;
    }
    store
        .maintain(move |c| {
            c.execute("DELETE FROM alert_rules WHERE id = ?", params![id])?;
            if let Some(spec) = spec {
                c.execute(
                    "INSERT INTO alert_rules (id, spec) VALUES (?, ?)",
                    params![id, serde_json::to_string(&spec).unwrap_or_default()],
                )?;
            }
            Ok(())
        })
        .await
}

#[derive(Serialize)]
struct SeriesView {
    #[serde(flatten)]
    series: Series,
    silenced: bool,
}

#[derive(Serialize)]
struct RuleView {
    #[serde(flatten)]
    rule: Rule,
    description: String,
    unit: &'static str,
    area: &'static str,
    /// The worst state of its series.
    state: AlertState,
    value: Option<f64>,
    series: Vec<SeriesView>,
}

fn views(engine: &Engine) -> Vec<RuleView> {
    let now = Utc::now();
    let silences = engine.active_silences(now);
    let all = engine.series.lock();
    engine
        .rules()
        .into_iter()
        .map(|rule| {
            let mut series: Vec<SeriesView> = all
                .range((rule.id.clone(), String::new())..)
                .take_while(|((id, _), _)| id == &rule.id)
                .map(|(_, s)| SeriesView {
                    silenced: silences.iter().any(|x| x.matches(&s.labels)),
                    series: s.clone(),
                })
                .collect();
            series.sort_by(|a, b| {
                b.series
                    .state
                    .rank()
                    .cmp(&a.series.state.rank())
                    .then(a.series.series.cmp(&b.series.series))
            });
            let worst = series.first();
            let info = rule.spec.measure.info();
            RuleView {
                description: rule.describe(),
                unit: info.unit,
                area: info.area,
                state: worst.map_or(AlertState::Inactive, |s| s.series.state),
                value: worst.and_then(|s| s.series.value),
                series,
                rule,
            }
        })
        .collect()
}

/// `POST /api/analytics/errors` is `http::ingest::handler::<ErrorIn>`; this function only
/// carries its OpenAPI description.
#[utoipa::path(post, path = "/api/analytics/errors", tag = "Errors",
    summary = "Record JavaScript errors, as gs.js reports them (each message once per page, at most 10)",
    description = "Answers 200 only after the rows are committed. A batch with one invalid item writes nothing. \
        `text/plain` bodies (navigator.sendBeacon) are parsed as JSON too. The server's own 5xx answers (the AI \
        gateway's included) are recorded as server errors without a call.",
    request_body(content = ErrorsBody, content_type = "application/json"),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post_errors() {}

/// `GET /api/analytics/errors`: counts, error rate and the top errors in the window.
#[utoipa::path(get, path = "/api/analytics/errors", tag = "Errors",
    summary = "JavaScript and server errors in the window: counts, JavaScript errors per page view, the most \
        frequent errors (paged by limit and offset)",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The errors", body = Object), ReadErrors))]
pub async fn errors(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(reads::top_errors(&state.store, window)).await
}

/// `GET /api/alerts`: every rule with its state, current value and series.
#[utoipa::path(get, path = "/api/alerts", tag = "Alerts",
    summary = "Every rule with its state (the worst of its series), current value and series, the channels \
        and the last evaluation round",
    security(("admin" = [])),
    responses((status = 200, description = "Rules and states", body = Object), AuthOnly))]
pub async fn list(Extension(engine): Eng, _: Admin) -> Result<Json<Value>, ApiError> {
    engine.refresh().await?;
    let summary = engine.cards();
    let channels: Vec<Value> = engine
        .channels
        .iter()
        .map(|c| json!({"name": c.name, "kind": c.kind_name()}))
        .collect();
    Ok(Json(json!({
        "firing": summary.firing,
        "pending": summary.pending,
        "interval_seconds": engine.config.alerts.interval.0,
        "default_for": engine.config.alerts.default_for.0,
        "enabled": engine.config.alerts.enabled,
        "last_round": *engine.last_round.lock(),
        "channels": channels,
        "rules": views(&engine),
    })))
}

/// `GET /api/alerts/summary`: firing and pending counts and the state per overview card.
#[utoipa::path(get, path = "/api/alerts/summary", tag = "Alerts",
    summary = "Firing and pending series, in total and per overview card (vitals, ai, database, growth)",
    security(("admin" = [])),
    responses((status = 200, description = "The counts", body = Object), AuthOnly))]
pub async fn summary(Extension(engine): Eng, _: Admin) -> Result<Json<super::Summary>, ApiError> {
    engine.refresh().await?;
    Ok(Json(super::headline(&engine)))
}

/// `?rule=`: one rule's changes only.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this rule's state changes; empty means every rule.
    #[param(nullable = false)]
    rule: Option<String>,
}

/// `GET /api/alerts/history`: state changes in the window, newest first.
#[utoipa::path(get, path = "/api/alerts/history", tag = "Alerts",
    summary = "State changes (inactive, pending, firing, resolved, nodata) in the window, newest first, \
        paged by limit and offset",
    params(WindowQuery, HistoryQuery), security(("admin" = [])),
    responses((status = 200, description = "The changes", body = Object), ReadErrors))]
pub async fn history(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
    Params(q): Params<HistoryQuery>,
) -> Result<Response, ApiError> {
    let rule = q.rule.filter(|r| !r.is_empty());
    read.json(history::read(&state.store, window, rule)).await
}

/// `GET /api/alerts/measures`: the catalogue a rule picks its measure from.
#[utoipa::path(get, path = "/api/alerts/measures", tag = "Alerts",
    summary = "The catalogue of measures: area, unit, allowed aggregations and the labels each can filter or \
        split by",
    security(("admin" = [])),
    responses((status = 200, description = "The catalogue", body = Object), AuthOnly))]
pub async fn measures(_: Admin) -> Json<Value> {
    Json(json!({ "measures": measures::catalogue() }))
}

/// `GET /api/alerts/rules`: every rule as written (built in, config file, API).
#[utoipa::path(get, path = "/api/alerts/rules", tag = "Alerts",
    summary = "Every rule as written, with its id and origin (default, config or api)",
    security(("admin" = [])),
    responses((status = 200, description = "The rules", body = Object), AuthOnly))]
pub async fn rules(Extension(engine): Eng, _: Admin) -> Result<Json<Value>, ApiError> {
    engine.refresh().await?;
    Ok(Json(json!({ "rules": engine.rules() })))
}

fn find(engine: &Engine, id: &str) -> Result<Rule, ApiError> {
    engine
        .rules()
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::Missing(format!("no alert rule {id:?}")))
}

/// `GET /api/alerts/rules/{id}`.
#[utoipa::path(get, path = "/api/alerts/rules/{id}", tag = "Alerts",
    summary = "One rule as written",
    params(("id" = String, Path, description = "The rule's id")),
    security(("admin" = [])),
    responses((status = 200, description = "The rule", body = Object), LookupRule))]
pub async fn rule(
    Extension(engine): Eng,
    _: Admin,
    PathParam(id): PathParam<String>,
) -> Result<Json<Rule>, ApiError> {
    engine.refresh().await?;
    Ok(Json(find(&engine, &id)?))
}

fn check(spec: &RuleSpec) -> Result<(), ApiError> {
    spec.validate().map_err(|e| invalid(e.field, e.message))
}

/// `POST /api/alerts/rules`: a new rule; 201 with the rule.
#[utoipa::path(post, path = "/api/alerts/rules", tag = "Alerts",
    summary = "Create a rule; its id is the one given, or made from its name",
    request_body(content = RuleSpec, content_type = "application/json"),
    security(("admin" = [])),
    responses((status = 201, description = "Created; the rule", body = Object), CreateErrors))]
pub async fn create_rule(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    JsonObject(spec): JsonObject<RuleSpec>,
) -> Result<Response, ApiError> {
    check(&spec)?;
    let id = spec.rule_id();
    let spec = RuleSpec {
        id: Some(id.clone()),
        ..spec
    };
    engine.refresh().await?;
    let _w = engine.writes.lock().await;
    if engine.rules().iter().any(|r| r.id == id) {
        return Err(ApiError::Conflict(format!(
            "rule {id:?} exists; PUT /api/alerts/rules/{id} changes it"
        )));
    }
    save_rule(&state.store, id.clone(), Some(spec.clone())).await?;
    let mut api = engine.api_rules.lock().clone();
    api.push(spec);
    engine.set_api_rules(api);
    Ok((StatusCode::CREATED, Json(find(&engine, &id)?)).into_response())
}

/// `PUT /api/alerts/rules/{id}`: replaces a rule (a built-in one too; config rules are
/// changed in the config file).
#[utoipa::path(put, path = "/api/alerts/rules/{id}", tag = "Alerts",
    summary = "Replace a rule, a built-in one included (DELETE puts a built-in rule back)",
    params(("id" = String, Path, description = "The rule's id")),
    request_body(content = RuleSpec, content_type = "application/json"),
    security(("admin" = [])),
    responses((status = 200, description = "The rule", body = Object), UpdateErrors))]
pub async fn update_rule(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    PathParam(id): PathParam<String>,
    JsonObject(spec): JsonObject<RuleSpec>,
) -> Result<Json<Rule>, ApiError> {
    engine.refresh().await?;
    let existing = find(&engine, &id)?;
    if existing.origin == Origin::Config {
        return Err(ApiError::Forbidden(format!(
            "rule {id:?} comes from the config file ([[alerts.rules]]); change it there"
        )));
    }
    check(&spec)?;
    // The path names the rule; an id in the body is the same rule or ignored.
    let spec = RuleSpec {
        id: Some(id.clone()),
        ..spec
    };
    let _w = engine.writes.lock().await;
    find(&engine, &id)?;
    save_rule(&state.store, id.clone(), Some(spec.clone())).await?;
    let mut api = engine.api_rules.lock().clone();
    api.retain(|s| s.id.as_deref() != Some(&id));
    api.push(spec);
    engine.set_api_rules(api);
    Ok(Json(find(&engine, &id)?))
}

/// `DELETE /api/alerts/rules/{id}`: removes an API rule, or puts an edited built-in rule
/// back to the guide's values.
#[utoipa::path(delete, path = "/api/alerts/rules/{id}", tag = "Alerts",
    summary = "Delete a rule made through the API, or put an edited built-in rule back as shipped",
    params(("id" = String, Path, description = "The rule's id")),
    security(("admin" = [])),
    responses((status = 204, description = "Deleted (or put back)"), DeleteErrors))]
pub async fn delete_rule(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    engine.refresh().await?;
    let _w = engine.writes.lock().await;
    let existing = find(&engine, &id)?;
    match existing.origin {
        Origin::Config => {
            return Err(ApiError::Forbidden(format!(
                "rule {id:?} comes from the config file; remove it there"
            )))
        }
        Origin::Default if !existing.edited => {
            return Err(ApiError::Conflict(
                "built-in rules cannot be deleted; PUT it with \"enabled\": false to turn it off"
                    .into(),
            ))
        }
        _ => {}
    }
    save_rule(&state.store, id.clone(), None).await?;
    let mut api = engine.api_rules.lock().clone();
    api.retain(|s| s.id.as_deref() != Some(&id));
    engine.set_api_rules(api);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
pub struct Preview {
    rule: Rule,
    description: String,
    unit: &'static str,
    threshold: f64,
    bucket_seconds: i64,
    points: Vec<Stats>,
}

async fn preview_of(engine: &Engine, rule: Rule) -> Result<Json<Preview>, ApiError> {
    let points = engine.preview(&rule, Utc::now()).await?;
    Ok(Json(Preview {
        description: rule.describe(),
        unit: rule.spec.measure.info().unit,
        threshold: rule.spec.threshold,
        bucket_seconds: (rule.spec.window.0 as i64).clamp(300, 3600),
        points,
        rule,
    }))
}

/// `POST /api/alerts/preview`: an unsaved rule's measure over the last day.
#[utoipa::path(post, path = "/api/alerts/preview", tag = "Alerts",
    summary = "An unsaved rule's measure over the last day, in buckets of its window (5 min to 1 h), for the \
        rule editor's chart against the threshold",
    request_body(content = RuleSpec, content_type = "application/json"),
    security(("admin" = [])),
    responses((status = 200, description = "The points", body = Object), BodyErrors))]
pub async fn preview(
    Extension(engine): Eng,
    _: Admin,
    JsonObject(spec): JsonObject<RuleSpec>,
) -> Result<Json<Preview>, ApiError> {
    check(&spec)?;
    let rule = Rule {
        id: spec.rule_id(),
        origin: Origin::Api,
        edited: false,
        spec: RuleSpec { id: None, ..spec },
    };
    preview_of(&engine, rule).await
}

/// `GET /api/alerts/rules/{id}/preview`: a rule's measure over the last day.
#[utoipa::path(get, path = "/api/alerts/rules/{id}/preview", tag = "Alerts",
    summary = "A rule's measure over the last day, in buckets of its window (5 min to 1 h)",
    params(("id" = String, Path, description = "The rule's id")),
    security(("admin" = [])),
    responses((status = 200, description = "The points", body = Object), LookupRule))]
pub async fn rule_preview(
    Extension(engine): Eng,
    _: Admin,
    PathParam(id): PathParam<String>,
) -> Result<Json<Preview>, ApiError> {
    engine.refresh().await?;
    let rule = find(&engine, &id)?;
    preview_of(&engine, rule).await
}

#[derive(Serialize)]
struct SilenceView {
    #[serde(flatten)]
    silence: silences::Silence,
    active: bool,
}

/// `GET /api/alerts/silences`: newest first, expired ones included.
#[utoipa::path(get, path = "/api/alerts/silences", tag = "Alerts",
    summary = "Every silence, newest first, with whether it is active now",
    security(("admin" = [])),
    responses((status = 200, description = "The silences", body = Object), AuthOnly))]
pub async fn silences(Extension(engine): Eng, _: Admin) -> Result<Json<Value>, ApiError> {
    engine.refresh().await?;
    let now = Utc::now();
    let list: Vec<SilenceView> = engine
        .silences
        .lock()
        .iter()
        .rev()
        .map(|s| SilenceView {
            active: s.active(now),
            silence: s.clone(),
        })
        .collect();
    Ok(Json(json!({ "silences": list })))
}

/// `POST /api/alerts/silences`: `{"matchers": {"alertname": "SlowLCP"}, "duration": "2h"}`.
#[utoipa::path(post, path = "/api/alerts/silences", tag = "Alerts",
    summary = "Silence the notifications of matching alerts until ends_at (or for a duration); their states \
        still change and show",
    request_body(content = SilenceIn, content_type = "application/json"),
    security(("admin" = [])),
    responses((status = 201, description = "Created; the silence and whether it is active", body = Object), BodyErrors))]
pub async fn create_silence(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    JsonObject(input): JsonObject<SilenceIn>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let s = input.into_silence(now).map_err(|(f, m)| invalid(f, m))?;
    let _w = engine.writes.lock().await;
    silences::save(&state.store, s.clone()).await?;
    engine.silences.lock().push(s.clone());
    let view = SilenceView {
        active: s.active(now),
        silence: s,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `DELETE /api/alerts/silences/{id}`: ends a silence now.
#[utoipa::path(delete, path = "/api/alerts/silences/{id}", tag = "Alerts",
    summary = "End a silence now (it stays in the list, expired)",
    params(("id" = String, Path, description = "The silence's id")),
    security(("admin" = [])),
    responses((status = 204, description = "Expired"), ExpireErrors))]
pub async fn expire_silence(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    engine.refresh().await?;
    let _w = engine.writes.lock().await;
    let ended = {
        let mut list = engine.silences.lock();
        list.iter_mut().find(|s| s.id == id).map(|s| {
            if s.ends_at > now {
                s.ends_at = now;
            }
            s.clone()
        })
    };
    let Some(s) = ended else {
        return Err(ApiError::Missing(format!("no silence {id:?}")));
    };
    silences::save(&state.store, s).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of `POST /api/alerts/test`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestIn {
    /// One channel by name; every channel when absent.
    #[serde(default, deserialize_with = "present")]
    channel: Option<String>,
}

/// `POST /api/alerts/test`: queues a test notification to each channel (or the one named).
#[utoipa::path(post, path = "/api/alerts/test", tag = "Alerts",
    summary = "Queue a test notification (alertname TestNotification) to every channel, or the one named",
    request_body(content = TestBody, content_type = "application/json"),
    security(("admin" = [])),
    responses((status = 202, description = "Queued; the channels", body = Object), TestErrors))]
pub async fn send_test(
    Extension(engine): Eng,
    _: Admin,
    JsonObject(input): JsonObject<TestIn>,
) -> Result<Response, ApiError> {
    if input
        .channel
        .as_ref()
        .is_some_and(|c| c.is_empty() || c.chars().count() > rules::MAX_CHANNEL_NAME)
    {
        return Err(invalid("channel", "must be 1 to 64 characters"));
    }
    if engine.channels.is_empty() {
        return Err(ApiError::Conflict(
            "no channel is configured; set alerts.webhook_url (GROWTH_ALERTS_WEBHOOK_URL)".into(),
        ));
    }
    let now = Utc::now();
    let targets: Vec<_> = engine
        .channels
        .iter()
        .filter(|c| input.channel.as_ref().is_none_or(|n| n == &c.name))
        .collect();
    if targets.is_empty() {
        return Err(ApiError::Missing(format!(
            "no channel {:?}",
            input.channel.unwrap_or_default()
        )));
    }
    let queued: Vec<Pending> = targets
        .iter()
        .map(|c| Pending {
            channel: c.name.clone(),
            kind: c.kind_name(),
            url: c.url.clone(),
            body: notify::test_body(c, now, engine.config.alerts.external_url.as_deref()),
            status: "test",
            summary: "[TEST] TestNotification".into(),
        })
        .collect();
    let channels: Vec<String> = targets.iter().map(|c| c.name.clone()).collect();
    {
        let _w = engine.writes.lock().await;
        outbox::enqueue(&engine, queued, Vec::new(), now).await?;
    }
    engine.wake_outbox.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": channels }))).into_response())
}

crate::choice_param!(
    /// `?status=`: which deliveries.
    DeliveryStatus(&'static str),
    "Only notifications in this state; default all",
    { "pending" => "pending", "sent" => "sent", "failed" => "failed" }
);

/// The filters of the notification log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationsQuery {
    #[param(inline)]
    status: Option<DeliveryStatus>,
    /// Newest first, at most this many, 1 to 500; default 50.
    #[param(inline)]
    limit: Option<Int<1, 500>>,
}

/// `GET /api/alerts/notifications`: the outbox, newest first.
#[utoipa::path(get, path = "/api/alerts/notifications", tag = "Alerts",
    summary = "Recent notifications and their delivery (pending with its next attempt, sent, or failed with \
        the receiver's answer); receiver URLs are left out",
    params(NotificationsQuery), security(("admin" = [])),
    responses((status = 200, description = "The notifications", body = Object), ReadErrors))]
pub async fn notifications(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<NotificationsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.map_or(50, |l| l.0);
    let status = q.status.map(|s| s.0);
    Ok(Json(
        json!({ "notifications": outbox::recent(&state.store, status, limit).await? }),
    ))
}
