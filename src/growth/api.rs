//! HTTP handlers: reads of events and conversions, one person, funnels, retention,
//! feature adoption and the growth overview, each with its typed query string, and the
//! OpenAPI operations of this capability (ingest is `http::ingest::handler`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, IntoResponses, OpenApi, PartialSchema, ToSchema};

use super::active::ActiveSpec;
use super::adoption::AdoptionSpec;
use super::funnel::{self, Filter, FunnelSpec, Op, Source, Step};
use super::ingest::{ConversionIn, EventIn};
use super::retention::{RetentionSpec, MAX_PERIODS};
use super::time::{offset_pattern, parse_offset, Interval, DAY_US};
use super::{profile, reads};
use crate::error::ApiError;
use crate::http::ingest::Accepted;
use crate::http::openapi::{
    errors, no_extra, IngestErrors, LookupErrors, OneOrMany, ReadErrors, CSRF, UNAUTHORIZED,
};
use crate::http::params::{
    count_upto, enum_schema, parse_span, unit_pattern, upto, Instant, Int, Params, Range, Unit,
};
use crate::http::{Admin, CachedRead, PathParam, Window, WindowQuery};
use crate::state::AppState;

/// The operations of this capability, merged into `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(paths(
    post_events,
    post_conversions,
    events,
    conversions,
    user,
    funnel_adhoc,
    funnel_named,
    retention,
    features,
    overview
))]
pub(super) struct Doc;

const DEFAULT_CONVERSION_WINDOW_US: i64 = 7 * DAY_US;
const MAX_CONVERSION_WINDOW_DAYS: u64 = 365;
const MAX_NAME: usize = 256;

/// Carries the OpenAPI description of `POST /api/analytics/events`.
#[utoipa::path(post, path = "/api/analytics/events", tag = "Growth",
    summary = "Record one event or a batch of them",
    description = "Enriched at ingest (visitor, feature, browser, OS, device, referrer, campaign); a crawler's \
        events are dropped and counted in `bots`. Answers 200 only after the rows are committed. A batch with \
        one invalid item writes nothing. `text/plain` bodies (navigator.sendBeacon) are parsed as JSON too.",
    request_body(content = EventsBody, content_type = "application/json"),
    params(crate::http::event_time::SentAtQuery),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post_events() {}

/// Carries the OpenAPI description of `POST /api/analytics/conversions`.
#[utoipa::path(post, path = "/api/analytics/conversions", tag = "Growth",
    summary = "Record one funnel step reached, or a batch of them",
    description = "Answers 200 only after the rows are committed. A batch with one invalid item writes nothing.",
    request_body(content = ConversionsBody, content_type = "application/json"),
    params(crate::http::event_time::SentAtQuery),
    security((), ("ingestKey" = [])),
    responses((status = 200, description = "Committed", body = Accepted), IngestErrors))]
#[allow(dead_code)]
fn post_conversions() {}

/// `GET /api/analytics/events`.
#[utoipa::path(get, path = "/api/analytics/events", tag = "Growth",
    summary = "Event totals, users, sessions, top events, newest events",
    description = "Whole UTC days come from the growth roll-up, the rest from the events. `estimated` lists the \
        figures that are HyperLogLog estimates (people and sessions, e.g. `totals.users`); every other figure is exact.",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The report", body = Object), ReadErrors))]
pub async fn events(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(reads::events(&state.store, window)).await
}

/// `GET /api/analytics/conversions`.
#[utoipa::path(get, path = "/api/analytics/conversions", tag = "Growth",
    summary = "Conversions per funnel and step, newest conversions",
    params(WindowQuery), security(("admin" = [])),
    responses((status = 200, description = "The report", body = Object), ReadErrors))]
pub async fn conversions(
    State(state): State<AppState>,
    read: CachedRead,
    window: Window,
) -> Result<Response, ApiError> {
    read.json(reads::conversions(&state.store, window)).await
}

/// Newest events of one person to list.
type UserLimit = Int<1, 1000>;
/// Retention cohorts to show.
type Periods = Int<1, { MAX_PERIODS }>;
/// The bodies of the two ingest calls of this capability.
type EventsBody = OneOrMany<EventIn>;
type ConversionsBody = OneOrMany<ConversionIn>;

/// The query string of `GET /api/analytics/users/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Newest events to list, 1 to 1000; default 50.
    #[param(inline)]
    limit: Option<UserLimit>,
}

/// `GET /api/analytics/users/{id}`: the profile and newest events of a user id or visitor id.
#[utoipa::path(get, path = "/api/analytics/users/{id}", tag = "Growth",
    summary = "One person: profile (first and last seen, counts, properties) and newest events",
    params(("id" = String, Path, description = "A user id or a visitor id"), UserQuery),
    security(("admin" = [])),
    responses((status = 200, description = "The person", body = Object), LookupErrors))]
pub async fn user(
    State(state): State<AppState>,
    _: Admin,
    PathParam(id): PathParam<String>,
    Params(q): Params<UserQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.map_or(profile::RECENT_EVENTS, |l| l.0);
    let person = reads::person(&state.store, id.clone(), limit)
        .await?
        .ok_or_else(|| ApiError::Missing(format!("user {id:?}: no profile and no events")))?;
    Ok(Json(person).into_response())
}

/// `?utc_offset=`: the reader's time zone for day, week and month buckets: `Z`, `+02:00`,
/// `-0530`, or minutes (`120`, `-330`), within 14 hours.
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcOffset(i64);

impl std::str::FromStr for UtcOffset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_offset(s).map(UtcOffset).ok_or_else(|| {
            format!("{s:?} is not an offset like +02:00, -0530 or minutes, within 14 hours")
        })
    }
}
crate::str_param!(UtcOffset);

impl PartialSchema for UtcOffset {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(offset_pattern(&upto(840))))
            .description(Some(
                "The reader's time zone for buckets: Z, +02:00, -0530 or minutes, within 14 hours; default UTC",
            ))
            .into()
    }
}
impl ToSchema for UtcOffset {}

/// `?interval=`: the bucket of retention cohorts and adoption series.
#[derive(Debug, Clone, Copy)]
pub struct IntervalParam(Interval);

impl std::str::FromStr for IntervalParam {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Interval::parse(s)
            .map(IntervalParam)
            .ok_or_else(|| format!("{s:?} is not day, week or month"))
    }
}
crate::str_param!(IntervalParam);

impl PartialSchema for IntervalParam {
    fn schema() -> RefOr<Schema> {
        enum_schema(
            &["day", "daily", "week", "weekly", "month", "monthly"],
            "Bucket size",
        )
    }
}
impl ToSchema for IntervalParam {}

/// A conversion window: seconds, or a count of `s`, `m`, `h`, `d` or `w`, up to 365 days.
#[derive(Debug, Clone, Copy)]
pub struct ConversionWindow(i64);

impl ConversionWindow {
    const MAX_SECONDS: u64 = MAX_CONVERSION_WINDOW_DAYS * 86_400;

    fn units() -> [Unit; 5] {
        let d = MAX_CONVERSION_WINDOW_DAYS;
        [
            ('s', d * 86_400, TimeDelta::seconds(1)),
            ('m', d * 1440, TimeDelta::minutes(1)),
            ('h', d * 24, TimeDelta::hours(1)),
            ('d', d, TimeDelta::days(1)),
            ('w', d / 7, TimeDelta::weeks(1)),
        ]
    }

    fn pattern() -> String {
        format!(
            "^(?:{}|{})$",
            upto(Self::MAX_SECONDS),
            unit_pattern(&Self::units())
        )
    }

    fn seconds(n: i64) -> Option<ConversionWindow> {
        u64::try_from(n)
            .ok()
            .filter(|n| (1..=Self::MAX_SECONDS).contains(n))
            .map(|n| ConversionWindow(n as i64 * 1_000_000))
    }
}

impl std::str::FromStr for ConversionWindow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        count_upto(s, Self::MAX_SECONDS)
            .map(|n| ConversionWindow(n as i64 * 1_000_000))
            .or_else(|| {
                parse_span(s, &Self::units())
                    .and_then(|d| d.num_microseconds())
                    .map(ConversionWindow)
            })
            .ok_or_else(|| window_error(s))
    }
}
crate::str_param!(ConversionWindow);

impl PartialSchema for ConversionWindow {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::pattern()))
            .description(Some(
                "How long after entering a person may take to convert: seconds, or a count of s, m, h, d or w, \
                 up to 365 days; default 7d",
            ))
            .examples(["30m", "24h", "7d", "86400"])
            .into()
    }
}
impl ToSchema for ConversionWindow {}

/// `?steps=a,b,c`: the steps of a named funnel, 2 to 10 names of 1 to 256 characters.
#[derive(Debug, Clone)]
pub struct StepList(Vec<String>);

impl StepList {
    fn pattern() -> String {
        let item = format!("[^,]{{1,{MAX_NAME}}}");
        format!(
            "^{item}(?:,{item}){{{},{}}}$",
            funnel::MIN_STEPS - 1,
            funnel::MAX_STEPS - 1
        )
    }
}

impl std::str::FromStr for StepList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let steps: Vec<String> = s.split(',').map(str::to_string).collect();
        let names_ok = steps
            .iter()
            .all(|n| !n.is_empty() && n.chars().count() <= MAX_NAME);
        if names_ok && (funnel::MIN_STEPS..=funnel::MAX_STEPS).contains(&steps.len()) {
            Ok(StepList(steps))
        } else {
            Err(format!(
                "{s:?} is not {} to {} comma-separated step names of 1 to {MAX_NAME} characters",
                funnel::MIN_STEPS,
                funnel::MAX_STEPS
            ))
        }
    }
}
crate::str_param!(StepList);

impl PartialSchema for StepList {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::pattern()))
            .description(Some(
                "Comma-separated step names, in order; default every step of the funnel, most people first",
            ))
            .into()
    }
}
impl ToSchema for StepList {}

fn window_error(v: &str) -> String {
    format!("{v:?} is not a conversion window like 30m, 24h, 7d or seconds, up to 365d")
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StepIn {
    Name(String),
    Full(StepFull),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFull {
    event: String,
    #[serde(default)]
    filters: Vec<FilterIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterIn {
    property: String,
    #[serde(default)]
    op: Option<String>,
    value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WindowIn {
    Text(String),
    Seconds(i64),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunnelBody {
    steps: Vec<StepIn>,
    #[serde(alias = "conversion_window")]
    window: Option<WindowIn>,
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    breakdown: Option<String>,
}

/// The body of `POST /api/analytics/funnels`, stated for the OpenAPI document.
pub struct FunnelRequest;

impl PartialSchema for FunnelRequest {
    fn schema() -> RefOr<Schema> {
        let name = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_NAME))
        };
        let filter = ObjectBuilder::new()
            .property("property", name())
            .required("property")
            .property(
                "op",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::String,
                        Type::Null,
                    ]))
                    .enum_values(Some([
                        serde_json::json!("eq"),
                        serde_json::json!("="),
                        serde_json::json!("neq"),
                        serde_json::json!("!="),
                        serde_json::Value::Null,
                    ]))
                    .description(Some("Default eq")),
            )
            .property(
                "value",
                ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Number,
                    Type::Boolean,
                ])),
            )
            .required("value")
            .additional_properties(Some(no_extra()));
        let step = OneOfBuilder::new().item(name()).item(
            ObjectBuilder::new()
                .property("event", name())
                .required("event")
                .property(
                    "filters",
                    ArrayBuilder::new()
                        .items(filter)
                        .max_items(Some(funnel::MAX_FILTERS)),
                )
                .additional_properties(Some(no_extra())),
        );
        let nullable = |schema: RefOr<Schema>| {
            OneOfBuilder::new()
                .item(schema)
                .item(ObjectBuilder::new().schema_type(Type::Null))
        };
        let window = OneOfBuilder::new()
            .item(ConversionWindow::schema())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(ConversionWindow::MAX_SECONDS)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "Seconds, or a text window like 30m, 24h, 7d; default 7d",
            ));
        ObjectBuilder::new()
            .property(
                "steps",
                ArrayBuilder::new()
                    .items(step)
                    .min_items(Some(funnel::MIN_STEPS))
                    .max_items(Some(funnel::MAX_STEPS)),
            )
            .required("steps")
            .property("window", window)
            .property("range", nullable(Range::schema()))
            .property("from", nullable(Instant::schema()))
            .property("to", nullable(Instant::schema()))
            .property(
                "breakdown",
                nullable(name().description(Some("A property of the entering event to split by")).into()),
            )
            .additional_properties(Some(no_extra()))
            .description(Some(
                "Steps as event names or {event, filters}; the window of entries defaults to the last 30 days",
            ))
            .into()
    }
}
impl ToSchema for FunnelRequest {}

/// What `POST /api/analytics/funnels` may answer besides 200.
pub struct FunnelErrors;

impl IntoResponses for FunnelErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[
            (400, "Malformed JSON, or a bad range, from or to"),
            UNAUTHORIZED,
            CSRF,
            (422, "The body breaks a rule; `field` names it"),
        ])
    }
}

/// A name inside a funnel body: 1 to 256 characters, kept as sent (events are stored as
/// sent, so a trimmed name would not match them).
fn name(v: String, field: &'static str) -> Result<String, ApiError> {
    if v.is_empty() || v.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(
            None,
            field,
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(v)
}

fn steps_from(body: Vec<StepIn>) -> Result<Vec<Step>, ApiError> {
    if !(funnel::MIN_STEPS..=funnel::MAX_STEPS).contains(&body.len()) {
        return Err(ApiError::invalid(
            None,
            "steps",
            format!(
                "must hold {} to {} steps, got {}",
                funnel::MIN_STEPS,
                funnel::MAX_STEPS,
                body.len()
            ),
        ));
    }
    body.into_iter()
        .map(|s| {
            let (event, filters) = match s {
                StepIn::Name(n) => (n, Vec::new()),
                StepIn::Full(f) => (f.event, f.filters),
            };
            if filters.len() > funnel::MAX_FILTERS {
                return Err(ApiError::invalid(
                    None,
                    "filters",
                    format!("at most {} per step", funnel::MAX_FILTERS),
                ));
            }
            let filters = filters
                .into_iter()
                .map(|f| {
                    let op = match f.op.as_deref().unwrap_or("eq") {
                        "eq" | "=" => Op::Eq,
                        "neq" | "!=" => Op::Neq,
                        other => {
                            return Err(ApiError::invalid(
                                None,
                                "op",
                                format!("{other:?} is not eq or neq"),
                            ))
                        }
                    };
                    let value = match f.value {
                        serde_json::Value::String(s) => s,
                        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                            v.to_string()
                        }
                        _ => {
                            return Err(ApiError::invalid(
                                None,
                                "value",
                                "must be a string, number or boolean",
                            ))
                        }
                    };
                    Ok(Filter {
                        property: name(f.property, "property")?,
                        op,
                        value,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Step {
                event: name(event, "event")?,
                filters,
            })
        })
        .collect()
}

/// The funnel body's window: its `range`, `from` and `to` read like a GET's.
fn range_of(
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    default: Range,
) -> Result<Window, ApiError> {
    let parse = |name: &'static str, v: Option<String>| -> Result<Option<Instant>, ApiError> {
        v.map(|t| t.parse().map_err(|m| ApiError::bad_param(name, m)))
            .transpose()
    };
    let q = WindowQuery {
        range: Some(match range {
            Some(r) => r.parse().map_err(|m| ApiError::bad_param("range", m))?,
            None => default,
        }),
        from: parse("from", from)?,
        to: parse("to", to)?,
        limit: None,
        offset: None,
    };
    Ok(q.resolve(Utc::now()))
}

#[derive(serde::Serialize)]
struct FunnelAnswer {
    range: crate::http::window::WindowJson,
    window_seconds: i64,
    #[serde(flatten)]
    funnel: funnel::Funnel,
}

async fn answer_funnel(
    state: &AppState,
    spec: FunnelSpec,
    w: &Window,
) -> Result<Response, ApiError> {
    let window_seconds = spec.window_us / 1_000_000;
    let result = reads::funnel(&state.store, spec).await?;
    Ok(Json(FunnelAnswer {
        range: w.json(),
        window_seconds,
        funnel: result,
    })
    .into_response())
}

/// `POST /api/analytics/funnels`: an ad-hoc funnel over events.
#[utoipa::path(post, path = "/api/analytics/funnels", tag = "Growth",
    summary = "An ad-hoc funnel over events: people per step, conversion, drop-off, time between steps",
    request_body(content = FunnelRequest, content_type = "application/json"),
    security(("admin" = [])),
    responses((status = 200, description = "The funnel", body = Object), FunnelErrors))]
pub async fn funnel_adhoc(
    State(state): State<AppState>,
    _: Admin,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: FunnelBody = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            ApiError::invalid(None, "(body)", format!("is not a funnel: {e}"))
        } else {
            ApiError::Malformed(format!("malformed JSON: {e}"))
        }
    })?;
    let window_us = match body.window {
        None => DEFAULT_CONVERSION_WINDOW_US,
        Some(WindowIn::Seconds(s)) => {
            ConversionWindow::seconds(s)
                .ok_or_else(|| ApiError::invalid(None, "window", window_error(&s.to_string())))?
                .0
        }
        Some(WindowIn::Text(t)) => {
            t.parse::<ConversionWindow>()
                .map_err(|m| ApiError::invalid(None, "window", m))?
                .0
        }
    };
    let w = range_of(body.range, body.from, body.to, Range(TimeDelta::days(30)))?;
    let breakdown = body.breakdown.map(|b| name(b, "breakdown")).transpose()?;
    let spec = FunnelSpec {
        source: Source::Events,
        steps: steps_from(body.steps)?,
        window_us,
        from_us: w.from_us(),
        to_us: w.to_us(),
        breakdown,
    };
    answer_funnel(&state, spec, &w).await
}

/// The query string of `GET /api/analytics/funnels/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunnelQuery {
    #[param(inline)]
    window: Option<ConversionWindow>,
    #[param(inline)]
    steps: Option<StepList>,
    /// A property of the entering conversion to split by; empty means none.
    #[param(nullable = false)]
    breakdown: Option<String>,
}

/// `GET /api/analytics/funnels/{name}`: a funnel of the `conversions` table. Steps come
/// from `?steps=a,b,c`, or else every step of the funnel, most people first (at most 10).
#[utoipa::path(get, path = "/api/analytics/funnels/{name}", tag = "Growth",
    summary = "A named funnel of conversions: people per step, conversion, drop-off, time between steps",
    params(("name" = String, Path, description = "The funnel's name, as conversions send it"), WindowQuery, FunnelQuery),
    security(("admin" = [])),
    responses((status = 200, description = "The funnel", body = Object), LookupErrors))]
pub async fn funnel_named(
    State(state): State<AppState>,
    _: Admin,
    PathParam(funnel_name): PathParam<String>,
    w: Window,
    Params(q): Params<FunnelQuery>,
) -> Result<Response, ApiError> {
    let window_us = q.window.map_or(DEFAULT_CONVERSION_WINDOW_US, |c| c.0);
    let steps: Vec<String> = match q.steps {
        Some(list) => list.0,
        None => {
            let (f, from, to) = (funnel_name.clone(), w.from_us(), w.to_us());
            let mut found = reads::funnel_steps(&state.store, f, from, to).await?;
            found.truncate(funnel::MAX_STEPS);
            found
        }
    };
    if steps.len() < funnel::MIN_STEPS {
        return Err(ApiError::Missing(format!(
            "funnel {funnel_name:?} has fewer than {} steps in this range",
            funnel::MIN_STEPS
        )));
    }
    let spec = FunnelSpec {
        source: Source::Conversions {
            funnel: funnel_name,
        },
        steps: steps
            .into_iter()
            .map(|event| Step {
                event,
                filters: Vec::new(),
            })
            .collect(),
        window_us,
        from_us: w.from_us(),
        to_us: w.to_us(),
        breakdown: q
            .breakdown
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty()),
    };
    answer_funnel(&state, spec, &w).await
}

/// The query string of `GET /api/analytics/retention`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetentionQuery {
    /// The event that puts a person in a cohort; default any event.
    #[param(nullable = false)]
    start_event: Option<String>,
    /// The event that counts as coming back; default any event.
    #[param(nullable = false)]
    return_event: Option<String>,
    /// Default week.
    #[param(inline)]
    interval: Option<IntervalParam>,
    /// Cohorts to show, 1 to 60; default 8.
    #[param(inline)]
    periods: Option<Periods>,
    /// The end of the last period; default now.
    #[param(inline)]
    to: Option<Instant>,
    #[param(inline)]
    utc_offset: Option<UtcOffset>,
}

fn event_name(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `GET /api/analytics/retention?start_event=&return_event=&interval=week&periods=8`.
#[utoipa::path(get, path = "/api/analytics/retention", tag = "Growth",
    summary = "Retention cohorts: of the people who started in each period, the share that came back in each later one",
    params(RetentionQuery), security(("admin" = [])),
    responses((status = 200, description = "The cohorts", body = Object), ReadErrors))]
pub async fn retention(
    State(state): State<AppState>,
    read: CachedRead,
    Params(q): Params<RetentionQuery>,
) -> Result<Response, ApiError> {
    let spec = RetentionSpec {
        start_event: event_name(q.start_event),
        return_event: event_name(q.return_event),
        interval: q.interval.map_or(Interval::Week, |i| i.0),
        periods: q.periods.map_or(8, |p| p.0),
        to_us: q.to.map_or_else(Utc::now, |t| t.0).timestamp_micros(),
        offset_us: q.utc_offset.unwrap_or_default().0,
    };
    read.json(reads::retention(&state.store, spec)).await
}

/// The query string of `GET /api/analytics/features`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeaturesQuery {
    /// Default day.
    #[param(inline)]
    interval: Option<IntervalParam>,
    #[param(inline)]
    utc_offset: Option<UtcOffset>,
}

/// `GET /api/analytics/features?range=30d&interval=day`: feature adoption.
#[utoipa::path(get, path = "/api/analytics/features", tag = "Growth",
    summary = "Feature adoption: people using each feature, their share of active people, and a series",
    params(WindowQuery, FeaturesQuery), security(("admin" = [])),
    responses((status = 200, description = "The features", body = Object), ReadErrors))]
pub async fn features(
    State(state): State<AppState>,
    read: CachedRead,
    w: Window,
    Params(q): Params<FeaturesQuery>,
) -> Result<Response, ApiError> {
    let spec = AdoptionSpec {
        from_us: w.from_us(),
        to_us: w.to_us(),
        interval: q.interval.map_or(Interval::Day, |i| i.0),
        offset_us: q.utc_offset.unwrap_or_default().0,
    };
    read.json(reads::adoption(&state.store, spec)).await
}

/// The query string of `GET /api/analytics/growth`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrowthQuery {
    #[param(inline)]
    utc_offset: Option<UtcOffset>,
}

/// `GET /api/analytics/growth?range=30d`: active people, stickiness and breakdowns.
#[utoipa::path(get, path = "/api/analytics/growth", tag = "Growth",
    summary = "Active people (DAU, WAU, MAU), stickiness, new vs returning, and where people come from",
    description = "`estimated` lists the figures that are HyperLogLog estimates (`totals.users`, `breakdowns.users`); \
        event counts and DAU/WAU/MAU are exact.",
    params(WindowQuery, GrowthQuery), security(("admin" = [])),
    responses((status = 200, description = "The overview", body = Object), ReadErrors))]
pub async fn overview(
    State(state): State<AppState>,
    read: CachedRead,
    w: Window,
    Params(q): Params<GrowthQuery>,
) -> Result<Response, ApiError> {
    let spec = ActiveSpec {
        from_us: w.from_us(),
        to_us: w.to_us(),
        offset_us: q.utc_offset.unwrap_or_default().0,
    };
    read.json(async {
        let o = reads::overview(&state.store, spec).await?;
        let mut v = serde_json::to_value(o).map_err(|e| ApiError::Internal(e.to_string()))?;
        v["range"] = serde_json::json!(w.json());
        Ok::<_, ApiError>(v)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::growth::time::MINUTE_US;
    use proptest::prelude::*;

    #[test]
    fn offsets() {
        let m = |s: &str| s.parse::<UtcOffset>().map(|o| o.0 / MINUTE_US).ok();
        for (s, want) in [
            ("Z", 0),
            ("+02:00", 120),
            ("-0530", -330),
            ("120", 120),
            ("-330", -330),
            ("+14:00", 840),
            ("+840", 840),
            ("0", 0),
        ] {
            assert_eq!(m(s), Some(want), "{s}");
        }
        for bad in [
            "",
            " 02:00",
            "+30:00",
            "+14:30",
            "841",
            "+1:00",
            "02:00",
            "0120",
            "+٠٢:٠٠",
            "Å",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    #[test]
    fn conversion_windows() {
        let us = |s: &str| s.parse::<ConversionWindow>().map(|w| w.0).ok();
        assert_eq!(us("30m"), Some(30 * 60_000_000));
        assert_eq!(us("86400"), Some(DAY_US));
        assert_eq!(us("365d"), Some(365 * DAY_US));
        for bad in ["0", "0s", "366d", "53w", "forever", "7 d", "-5", "7Å", ""] {
            assert_eq!(us(bad), None, "{bad}");
        }
    }

    #[test]
    fn step_lists() {
        assert_eq!("a,b".parse::<StepList>().unwrap().0, ["a", "b"]);
        for bad in ["a", "a,,b", ",a,b", "a,b,c,d,e,f,g,h,i,j,k", ""] {
            assert!(bad.parse::<StepList>().is_err(), "{bad}");
        }
    }

    proptest! {
        /// Arbitrary Unicode in the growth parameters: a value or a clear error, never a panic.
        #[test]
        fn any_text_parses_or_errs(s in "\\PC*") {
            let _ = s.parse::<UtcOffset>();
            let _ = s.parse::<ConversionWindow>();
            let _ = s.parse::<StepList>();
            let _ = s.parse::<IntervalParam>();
            let _ = crate::http::params::parse_query::<RetentionQuery>(&format!("utc_offset={s}&periods={s}&to={s}"));
        }
    }
}
