//! HTTP handlers: thin wrappers over the engine, the rule store and the reads.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use duckdb::params;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::eval::{Series, State as AlertState};
use super::history::{self, HistoryQuery};
use super::measures::{self, Stats};
use super::notify;
use super::outbox::{self, NotificationsQuery, Pending};
use super::rules::{self, Origin, Rule, RuleSpec};
use super::silences::{self, SilenceIn};
use super::{errors, lock, Engine};
use crate::error::ApiError;
use crate::http::body::{self, parse_value};
use crate::http::{Admin, Window};
use crate::state::AppState;
use crate::store::{Store, StoreError};

type Eng = Extension<Arc<Engine>>;

/// A typed query string whose errors come back in the JSON envelope.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| ApiError::BadParam {
                param: "query",
                message: e.body_text(),
            })
    }
}

async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = body::read(headers, body, state.config.ingest.body_limit).await?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Malformed(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Malformed("expected a JSON object".into()));
    }
    parse_value(value, None)
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(None, field, message)
}

pub async fn load_rules(store: &Store) -> Result<Vec<RuleSpec>, StoreError> {
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
    let silences: Vec<_> = lock(&engine.silences)
        .iter()
        .filter(|s| s.active(now))
        .cloned()
        .collect();
    let all = lock(&engine.series);
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

/// `GET /api/alerts`: every rule with its state, current value and series.
pub async fn list(Extension(engine): Eng, _: Admin) -> Json<Value> {
    let summary = engine.cards();
    let channels: Vec<Value> = engine
        .channels
        .iter()
        .map(|c| json!({"name": c.name, "kind": c.kind_name()}))
        .collect();
    Json(json!({
        "firing": summary.firing,
        "pending": summary.pending,
        "interval_seconds": engine.cfg.interval.0,
        "default_for": engine.cfg.default_for.0,
        "enabled": engine.cfg.enabled,
        "last_round": *lock(&engine.last_round),
        "channels": channels,
        "rules": views(&engine),
    }))
}

/// `GET /api/alerts/summary`: firing and pending counts and the state per overview card.
pub async fn summary(Extension(engine): Eng, _: Admin) -> Json<super::Summary> {
    Json(engine.cards())
}

pub async fn history(
    State(state): State<AppState>,
    _: Admin,
    Q(q): Q<HistoryQuery>,
) -> Result<Json<history::History>, ApiError> {
    Ok(Json(history::read(&state.store, q).await?))
}

pub async fn measures(_: Admin) -> Json<Value> {
    Json(json!({ "measures": measures::catalogue() }))
}

pub async fn rules(Extension(engine): Eng, _: Admin) -> Json<Value> {
    Json(json!({ "rules": engine.rules() }))
}

fn find(engine: &Engine, id: &str) -> Result<Rule, ApiError> {
    engine
        .rules()
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::Missing(format!("no alert rule {id:?}")))
}

pub async fn rule(
    Extension(engine): Eng,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Rule>, ApiError> {
    Ok(Json(find(&engine, &id)?))
}

fn check(spec: &RuleSpec) -> Result<(), ApiError> {
    spec.validate().map_err(|e| invalid(e.field, e.message))
}

/// `POST /api/alerts/rules`: a new rule; 201 with the rule.
pub async fn create_rule(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let spec: RuleSpec = json_body(&state, &headers, body).await?;
    check(&spec)?;
    let id = spec.rule_id();
    if !rules::valid_id(&id) {
        return Err(invalid(
            "id",
            "must be 1 to 64 characters of a-z, 0-9, '_' and '-'",
        ));
    }
    if engine.rules().iter().any(|r| r.id == id) {
        return Err(invalid(
            "id",
            format!("{id:?} already exists; PUT /api/alerts/rules/{id} changes it"),
        ));
    }
    let spec = RuleSpec {
        id: Some(id.clone()),
        ..spec
    };
    let _w = engine.writes.lock().await;
    save_rule(&state.store, id.clone(), Some(spec.clone())).await?;
    let mut api = lock(&engine.api_rules).clone();
    api.push(spec);
    engine.set_api_rules(api);
    Ok((StatusCode::CREATED, Json(find(&engine, &id)?)).into_response())
}

/// `PUT /api/alerts/rules/{id}`: replaces a rule (a default one too; config rules are
/// changed in the config file).
pub async fn update_rule(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Rule>, ApiError> {
    let existing = find(&engine, &id)?;
    if existing.origin == Origin::Config {
        return Err(ApiError::Forbidden(format!(
            "rule {id:?} comes from the config file ([[alerts.rules]]); change it there"
        )));
    }
    let spec: RuleSpec = json_body(&state, &headers, body).await?;
    if spec.id.as_ref().is_some_and(|s| s != &id) {
        return Err(invalid("id", "does not match the rule in the path"));
    }
    check(&spec)?;
    let spec = RuleSpec {
        id: Some(id.clone()),
        ..spec
    };
    let _w = engine.writes.lock().await;
    save_rule(&state.store, id.clone(), Some(spec.clone())).await?;
    let mut api = lock(&engine.api_rules).clone();
    api.retain(|s| s.id.as_deref() != Some(&id));
    api.push(spec);
    engine.set_api_rules(api);
    Ok(Json(find(&engine, &id)?))
}

/// `DELETE /api/alerts/rules/{id}`: removes an API rule, or puts an edited default back
/// to the guide's values.
pub async fn delete_rule(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let existing = find(&engine, &id)?;
    match existing.origin {
        Origin::Config => {
            return Err(ApiError::Forbidden(format!(
                "rule {id:?} comes from the config file; remove it there"
            )))
        }
        Origin::Default if !existing.edited => {
            return Err(invalid(
                "id",
                "built-in rules cannot be deleted; PUT it with \"enabled\": false to turn it off",
            ))
        }
        _ => {}
    }
    let _w = engine.writes.lock().await;
    save_rule(&state.store, id.clone(), None).await?;
    let mut api = lock(&engine.api_rules).clone();
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
pub async fn preview(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Preview>, ApiError> {
    let spec: RuleSpec = json_body(&state, &headers, body).await?;
    check(&spec)?;
    let rule = Rule {
        id: spec.rule_id(),
        origin: Origin::Api,
        edited: false,
        spec: RuleSpec { id: None, ..spec },
    };
    preview_of(&engine, rule).await
}

pub async fn rule_preview(
    Extension(engine): Eng,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Preview>, ApiError> {
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
pub async fn silences(Extension(engine): Eng, _: Admin) -> Json<Value> {
    let now = Utc::now();
    let list: Vec<SilenceView> = lock(&engine.silences)
        .iter()
        .rev()
        .map(|s| SilenceView {
            active: s.active(now),
            silence: s.clone(),
        })
        .collect();
    Json(json!({ "silences": list }))
}

/// `POST /api/alerts/silences`: `{"matchers": {"alertname": "SlowLCP"}, "duration": "2h"}`.
pub async fn create_silence(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let input: SilenceIn = json_body(&state, &headers, body).await?;
    let s = input
        .into_silence(Utc::now())
        .map_err(|(f, m)| invalid(f, m))?;
    let _w = engine.writes.lock().await;
    silences::save(&state.store, s.clone()).await?;
    lock(&engine.silences).push(s.clone());
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

/// `DELETE /api/alerts/silences/{id}`: ends a silence now.
pub async fn expire_silence(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let ended = {
        let mut list = lock(&engine.silences);
        let found = list.iter_mut().find(|s| s.id == id);
        found.map(|s| {
            if s.ends_at > now {
                s.ends_at = now;
            }
            s.clone()
        })
    };
    let Some(s) = ended else {
        return Err(ApiError::Missing(format!("no silence {id:?}")));
    };
    let _w = engine.writes.lock().await;
    silences::save(&state.store, s).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestIn {
    /// One channel by name; every channel when absent.
    channel: Option<String>,
}

/// `POST /api/alerts/test`: queues a test notification to each channel (or the one named).
pub async fn send_test(
    State(state): State<AppState>,
    Extension(engine): Eng,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(&headers, body, state.config.ingest.body_limit).await?;
    let input: TestIn = if bytes.iter().all(u8::is_ascii_whitespace) {
        TestIn::default()
    } else {
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Malformed(format!("malformed JSON: {e}")))?;
        parse_value(v, None)?
    };
    let now = Utc::now();
    let targets: Vec<_> = engine
        .channels
        .iter()
        .filter(|c| input.channel.as_ref().is_none_or(|n| n == &c.name))
        .collect();
    if targets.is_empty() {
        return Err(match input.channel {
            Some(n) => ApiError::Missing(format!("no channel {n:?}")),
            None => invalid(
                "channel",
                "no channel is configured; set alerts.webhook_url (GROWTH_ALERTS_WEBHOOK_URL)",
            ),
        });
    }
    let queued: Vec<Pending> = targets
        .iter()
        .map(|c| Pending {
            channel: c.name.clone(),
            kind: c.kind_name(),
            url: c.url.clone(),
            body: notify::test_body(c, now, engine.cfg.external_url.as_deref()),
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

pub async fn notifications(
    State(state): State<AppState>,
    _: Admin,
    Q(q): Q<NotificationsQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(s) = &q.status {
        if !matches!(s.as_str(), "pending" | "sent" | "failed") {
            return Err(ApiError::BadParam {
                param: "status",
                message: "must be pending, sent or failed".into(),
            });
        }
    }
    Ok(Json(
        json!({ "notifications": outbox::recent(&state.store, q).await? }),
    ))
}

/// `GET /api/analytics/errors`: counts, error rate and the top errors in the window.
pub async fn errors(
    State(state): State<AppState>,
    _: Admin,
    window: Window,
) -> Result<Json<errors::TopErrors>, ApiError> {
    Ok(Json(errors::top(&state.store, window).await?))
}
