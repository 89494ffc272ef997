//! HTTP handlers: reads of events and conversions, one person, funnels, retention,
//! feature adoption and the growth overview. Each parses, calls a plain function, answers.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;

use super::active::ActiveSpec;
use super::adoption::AdoptionSpec;
use super::funnel::{self, Filter, FunnelSpec, Op, Source, Step};
use super::retention::{RetentionSpec, MAX_PERIODS};
use super::time::{parse_offset, Interval, DAY_US};
use super::{adoption, overview, profile, query, retention};
use crate::error::ApiError;
use crate::http::{Admin, Window};
use crate::state::AppState;

type Params = Query<HashMap<String, String>>;

const DEFAULT_CONVERSION_WINDOW_US: i64 = 7 * DAY_US;
const MAX_CONVERSION_WINDOW_US: i64 = 365 * DAY_US;
const MAX_NAME: usize = 256;

pub async fn events(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::events(&state.store, window).await?)
        })
        .await
}

pub async fn conversions(
    State(state): State<AppState>,
    admin: Admin,
    window: Window,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(query::conversions(&state.store, window).await?)
        })
        .await
}

/// `GET /api/analytics/users/{id}`: the profile and newest events of a user id or visitor id.
pub async fn user(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let limit = match params.get("limit").filter(|v| !v.is_empty()) {
        None => profile::RECENT_EVENTS,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| bad("limit", format!("{v:?} is not a number from 1 to 1000")))?,
    };
    let key = id.clone();
    let person = state
        .store
        .query(move |conn| profile::run_sync(conn, &key, limit))
        .await?
        .ok_or_else(|| ApiError::Missing(format!("user {id:?}: no profile and no events")))?;
    Ok(Json(person).into_response())
}

fn bad(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadParam {
        param,
        message: message.into(),
    }
}

fn get<'a>(p: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    p.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn offset(p: &HashMap<String, String>) -> Result<i64, ApiError> {
    match get(p, "utc_offset") {
        None => Ok(0),
        Some(v) => parse_offset(v).ok_or_else(|| {
            bad(
                "utc_offset",
                format!("{v:?} is not an offset like +02:00, -0530 or minutes, within 14 hours"),
            )
        }),
    }
}

fn interval(p: &HashMap<String, String>, default: Interval) -> Result<Interval, ApiError> {
    match get(p, "interval") {
        None => Ok(default),
        Some(v) => Interval::parse(v)
            .ok_or_else(|| bad("interval", format!("{v:?} is not day, week or month"))),
    }
}

/// A conversion window such as `30m`, `24h`, `7d`, or a number of seconds.
fn conversion_window(s: &str) -> Option<i64> {
    let s = s.trim();
    let us = if let Ok(secs) = s.parse::<i64>() {
        secs.checked_mul(1_000_000)?
    } else {
        let (num, unit) = crate::http::window::split_unit(s)?;
        let n: i64 = num.parse().ok()?;
        let unit_us = match unit {
            "s" => 1_000_000,
            "m" => 60_000_000,
            "h" => 3_600_000_000,
            "d" => DAY_US,
            "w" => 7 * DAY_US,
            _ => return None,
        };
        n.checked_mul(unit_us)?
    };
    (us > 0 && us <= MAX_CONVERSION_WINDOW_US).then_some(us)
}

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

fn name(v: String, field: &'static str) -> Result<String, ApiError> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(
            None,
            field,
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(t.to_string())
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

fn range_of(
    range: Option<String>,
    from: Option<String>,
    to: Option<String>,
    default: &str,
) -> Result<Window, ApiError> {
    let mut map = HashMap::new();
    map.insert("range".to_string(), range.unwrap_or_else(|| default.into()));
    if let Some(f) = from {
        map.insert("from".into(), f);
    }
    if let Some(t) = to {
        map.insert("to".into(), t);
    }
    Window::parse(&map, Utc::now())
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
    let result = funnel::run(&state.store, spec).await?;
    Ok(Json(FunnelAnswer {
        range: w.json(),
        window_seconds,
        funnel: result,
    })
    .into_response())
}

/// `POST /api/analytics/funnels`: an ad-hoc funnel over events.
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
        Some(WindowIn::Seconds(s)) => conversion_window(&s.to_string())
            .ok_or_else(|| ApiError::invalid(None, "window", window_error(&s.to_string())))?,
        Some(WindowIn::Text(t)) => conversion_window(&t)
            .ok_or_else(|| ApiError::invalid(None, "window", window_error(&t)))?,
    };
    let w = range_of(body.range, body.from, body.to, "30d")?;
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

/// `GET /api/analytics/funnels/{name}`: a funnel of the `conversions` table. Steps come
/// from `?steps=a,b,c`, or else every step of the funnel, most people first.
pub async fn funnel_named(
    State(state): State<AppState>,
    _: Admin,
    Path(funnel_name): Path<String>,
    Query(p): Params,
    w: Window,
) -> Result<Response, ApiError> {
    let window_us = match get(&p, "window") {
        None => DEFAULT_CONVERSION_WINDOW_US,
        Some(v) => conversion_window(v).ok_or_else(|| bad("window", window_error(v)))?,
    };
    let steps: Vec<String> = match get(&p, "steps") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => {
            let (f, from, to) = (funnel_name.clone(), w.from_us(), w.to_us());
            state
                .store
                .query(move |conn| query::funnel_steps(conn, &f, from, to))
                .await?
        }
    };
    if steps.is_empty() {
        return Err(ApiError::Missing(format!(
            "funnel {funnel_name:?} has no conversions in this range"
        )));
    }
    if !(funnel::MIN_STEPS..=funnel::MAX_STEPS).contains(&steps.len()) {
        return Err(bad(
            "steps",
            format!(
                "a funnel needs {} to {} steps, this one has {}",
                funnel::MIN_STEPS,
                funnel::MAX_STEPS,
                steps.len()
            ),
        ));
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
        breakdown: get(&p, "breakdown").map(str::to_string),
    };
    answer_funnel(&state, spec, &w).await
}

/// `GET /api/analytics/retention?start_event=&return_event=&interval=week&periods=8`.
pub async fn retention(
    State(state): State<AppState>,
    admin: Admin,
    Query(p): Params,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let interval = interval(&p, Interval::Week)?;
    let periods = match get(&p, "periods") {
        None => 8,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PERIODS).contains(n))
            .ok_or_else(|| {
                bad(
                    "periods",
                    format!("{v:?} is not a number from 1 to {MAX_PERIODS}"),
                )
            })?,
    };
    let to_us = match get(&p, "to") {
        None => Utc::now().timestamp_micros(),
        Some(_) => {
            let mut m = p.clone();
            m.remove("from");
            m.insert("range".into(), "1d".into());
            Window::parse(&m, Utc::now())?.to_us()
        }
    };
    let spec = RetentionSpec {
        start_event: get(&p, "start_event").map(str::to_string),
        return_event: get(&p, "return_event").map(str::to_string),
        interval,
        periods,
        to_us,
        offset_us: offset(&p)?,
    };
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(retention::run(&state.store, spec).await?)
        })
        .await
}

/// `GET /api/analytics/features?range=30d&interval=day`: feature adoption.
pub async fn features(
    State(state): State<AppState>,
    admin: Admin,
    w: Window,
    Query(p): Params,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let spec = AdoptionSpec {
        from_us: w.from_us(),
        to_us: w.to_us(),
        interval: interval(&p, Interval::Day)?,
        offset_us: offset(&p)?,
    };
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            Ok(state
                .store
                .query(move |conn| adoption::run_sync(conn, &spec))
                .await?)
        })
        .await
}

/// `GET /api/analytics/growth?range=30d`: active people, stickiness and breakdowns.
pub async fn overview(
    State(state): State<AppState>,
    admin: Admin,
    w: Window,
    Query(p): Params,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, ApiError> {
    let spec = ActiveSpec {
        from_us: w.from_us(),
        to_us: w.to_us(),
        offset_us: offset(&p)?,
    };
    state
        .read_cache
        .json(admin.cache_key(&uri), async {
            let o = state
                .store
                .query(move |conn| overview::run_sync(conn, &spec))
                .await?;
            let mut v = serde_json::to_value(o).map_err(|e| ApiError::Internal(e.to_string()))?;
            v["range"] = serde_json::json!(w.json());
            Ok(v)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::conversion_window;

    #[test]
    fn conversion_windows() {
        assert_eq!(conversion_window("30m"), Some(30 * 60_000_000));
        assert_eq!(conversion_window("3600"), Some(3_600_000_000));
        for bad in ["", "3\u{c5}", "\u{c5}", "7\u{1f600}", "0h", "-5d", "5y"] {
            assert_eq!(conversion_window(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,12}") {
            let _ = conversion_window(&s);
        }
    }
}
