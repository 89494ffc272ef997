//! The read window every GET shares: `?range=` or `from`/`to`, plus `limit`/`offset` paging.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::error::ApiError;
use crate::store::JsonRow;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;
const MAX_RANGE_DAYS: i64 = 3660;

/// A half-open time window `[from, to)` in server time, and which page of rows to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub limit: u32,
    pub offset: u32,
}

/// What every stream's read returns: the window, a chart series, the stream's own
/// aggregates (flattened in), and one page of the newest rows.
#[derive(Debug, Serialize)]
pub struct Report<T> {
    pub range: WindowJson,
    pub bucket_seconds: i64,
    /// Oldest bucket first; buckets without rows are absent.
    pub series: Vec<JsonRow>,
    #[serde(flatten)]
    pub stats: T,
    pub rows: Vec<JsonRow>,
    pub page: Page,
}

/// Which slice of the window's rows a response holds.
#[derive(Debug, Serialize)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
    pub total: u64,
}

#[derive(Debug, Serialize)]
pub struct WindowJson {
    pub from: String,
    pub to: String,
}

impl Window {
    pub fn parse(params: &HashMap<String, String>, now: DateTime<Utc>) -> Result<Window, ApiError> {
        let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let (from, to) = match (get("from"), get("to")) {
            (None, None) => {
                let span = parse_range(get("range").unwrap_or("24h"))?;
                (now - span, now)
            }
            (from, to) => {
                let to = to
                    .map(|t| parse_instant("to", t))
                    .transpose()?
                    .unwrap_or(now);
                let from = match from {
                    Some(f) => parse_instant("from", f)?,
                    None => to - parse_range(get("range").unwrap_or("24h"))?,
                };
                (from, to)
            }
        };
        if from >= to {
            return Err(ApiError::BadParam {
                param: "from",
                message: "must be before `to`".into(),
            });
        }
        let limit = parse_u32(get("limit"), "limit", DEFAULT_LIMIT)?;
        if limit > MAX_LIMIT {
            return Err(ApiError::BadParam {
                param: "limit",
                message: format!("must be at most {MAX_LIMIT}"),
            });
        }
        let offset = parse_u32(get("offset"), "offset", 0)?;
        Ok(Window {
            from,
            to,
            limit,
            offset,
        })
    }

    pub fn json(&self) -> WindowJson {
        WindowJson {
            from: self
                .from
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            to: self.to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    pub fn report<T>(
        &self,
        series: Vec<JsonRow>,
        stats: T,
        rows: Vec<JsonRow>,
        total: u64,
    ) -> Report<T> {
        Report {
            range: self.json(),
            bucket_seconds: self.bucket_seconds(),
            series,
            stats,
            rows,
            page: Page {
                limit: self.limit,
                offset: self.offset,
                total,
            },
        }
    }

    /// Chart bucket width: 1 minute up to 3 hours, 1 hour up to 2 days, 6 hours up to two
    /// weeks, then 1 day; so 1h, 24h, 7d and 30d give 60, 24, 28 and 30 points.
    pub fn bucket_seconds(&self) -> i64 {
        match (self.to - self.from).num_seconds() {
            s if s <= 3 * 3600 => 60,
            s if s <= 2 * 86_400 => 3600,
            s if s <= 14 * 86_400 => 6 * 3600,
            _ => 86_400,
        }
    }

    pub fn bucket_us(&self) -> i64 {
        self.bucket_seconds() * 1_000_000
    }

    pub fn from_us(&self) -> i64 {
        self.from.timestamp_micros()
    }

    pub fn to_us(&self) -> i64 {
        self.to.timestamp_micros()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Window {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(params) =
            Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map_err(|e| {
                ApiError::BadParam {
                    param: "query",
                    message: e.body_text(),
                }
            })?;
        Window::parse(&params, Utc::now())
    }
}

/// `1h`, `24h`, `7d`, `30d`, or any count of `m`, `h`, `d`.
/// `"30d"` -> `("30", "d")`: the unit is the last character, which need not be one byte
/// (`3Å` must be an error, not a slice inside a character). `None` for empty text.
pub fn split_unit(s: &str) -> Option<(&str, &str)> {
    s.char_indices().last().map(|(i, _)| s.split_at(i))
}

fn parse_range(s: &str) -> Result<chrono::Duration, ApiError> {
    let bad = || ApiError::BadParam {
        param: "range",
        message: format!("{s:?} is not a range like 1h, 24h, 7d or 30d"),
    };
    let (num, unit) = split_unit(s).ok_or_else(bad)?;
    let n: i64 = num.parse().map_err(|_| bad())?;
    let span = match unit {
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(bad()),
    };
    if n <= 0 || span > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(bad());
    }
    Ok(span)
}

fn parse_instant(param: &'static str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc());
        }
    }
    Err(ApiError::BadParam {
        param,
        message: format!("{s:?} is not an ISO 8601 date or date-time such as 2026-01-31T12:00:00Z"),
    })
}

fn parse_u32(v: Option<&str>, param: &'static str, default: u32) -> Result<u32, ApiError> {
    v.map_or(Ok(default), |v| {
        v.parse().map_err(|_| ApiError::BadParam {
            param,
            message: format!("{v:?} is not a non-negative integer"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<Window, ApiError> {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let map = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Window::parse(&map, now)
    }

    #[test]
    fn ranges() {
        let w = parse(&[]).unwrap();
        assert_eq!((w.to - w.from).num_hours(), 24);
        assert_eq!(w.limit, DEFAULT_LIMIT);
        for (r, hours) in [("1h", 1), ("7d", 168), ("30d", 720)] {
            let w = parse(&[("range", r)]).unwrap();
            assert_eq!((w.to - w.from).num_hours(), hours);
        }
        for bad in ["24", "h", "0h", "-1d", "5y", "99999d"] {
            assert!(parse(&[("range", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_to() {
        let w = parse(&[("from", "2026-05-01"), ("to", "2026-05-02T00:00:00+02:00")]).unwrap();
        assert_eq!(w.from.to_rfc3339(), "2026-05-01T00:00:00+00:00");
        assert_eq!(w.to.to_rfc3339(), "2026-05-01T22:00:00+00:00");
        assert!(parse(&[("from", "2026-05-03"), ("to", "2026-05-02")]).is_err());
        assert!(parse(&[("from", "yesterday")]).is_err());
        assert!(parse(&[("limit", "5000")]).is_err());
        assert!(parse(&[("offset", "-1")]).is_err());
    }

    proptest::proptest! {
        /// Any text in any parameter is a window or a clear error, never a panic.
        #[test]
        fn arbitrary_text_never_panics(
            key in proptest::sample::select(vec!["range", "from", "to", "limit", "offset"]),
            value in "\\PC{0,12}",
        ) {
            let _ = parse(&[(key, value.as_str())]);
        }
    }

    #[test]
    fn multi_byte_unit_is_an_error() {
        for bad in ["3\u{c5}", "\u{c5}", "7\u{1f600}", "1\u{e9}"] {
            assert!(parse(&[("range", bad)]).is_err(), "{bad}");
        }
    }
}
