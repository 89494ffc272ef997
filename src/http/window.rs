//! The read window every GET shares (`?range=` or `from`/`to`, plus `limit`/`offset` paging,
//! typed in `params`), resolved to instants, and the report shape reads answer with.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::params::{Params, Range, WindowQuery};
use crate::error::ApiError;
use crate::store::{JsonRow, Span};

pub use super::params::{DEFAULT_LIMIT, MAX_LIMIT};

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

    /// The window as the store's windowed reads take it.
    pub fn span(&self) -> Span {
        Span {
            from_us: self.from_us(),
            to_us: self.to_us(),
            bucket_us: self.bucket_us(),
            limit: self.limit,
            offset: self.offset,
        }
    }
}

impl WindowQuery {
    /// The window these parameters ask for, ending at `to` or `now`. `from` after `to`
    /// is an empty window (it has no rows), not an error: the schema cannot forbid it.
    pub fn resolve(&self, now: DateTime<Utc>) -> Window {
        let to = self.to.map_or(now, |t| t.0);
        let from = match self.from {
            Some(f) => f.0.min(to),
            None => to - self.range.unwrap_or(Range::DEFAULT).0,
        };
        Window {
            from,
            to,
            limit: self.limit.map_or(DEFAULT_LIMIT, |l| l.0),
            offset: self.offset.map_or(0, |o| o.0),
        }
    }
}

/// Handlers take `window: Window`: the shared `WindowQuery` parameters, resolved now.
impl<S: Send + Sync> FromRequestParts<S> for Window {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Params(q) = Params::<WindowQuery>::from_request_parts(parts, state).await?;
        Ok(q.resolve(Utc::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::params::parse_query;

    fn parse(q: &str) -> Result<Window, ApiError> {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        parse_query::<WindowQuery>(q).map(|p| p.resolve(now))
    }

    #[test]
    fn ranges() {
        let w = parse("").unwrap();
        assert_eq!((w.to - w.from).num_hours(), 24);
        assert_eq!(w.limit, DEFAULT_LIMIT);
        for (r, hours) in [("1h", 1), ("7d", 168), ("30d", 720)] {
            let w = parse(&format!("range={r}")).unwrap();
            assert_eq!((w.to - w.from).num_hours(), hours);
        }
        for bad in ["24", "h", "0h", "-1d", "5y", "99999d", "3%C3%85", ""] {
            assert!(parse(&format!("range={bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_to() {
        let w = parse("from=2026-05-01&to=2026-05-02T00:00:00%2B02:00").unwrap();
        assert_eq!(w.from.to_rfc3339(), "2026-05-01T00:00:00+00:00");
        assert_eq!(w.to.to_rfc3339(), "2026-05-01T22:00:00+00:00");
        let empty = parse("from=2026-05-03&to=2026-05-02").unwrap();
        assert_eq!(empty.from, empty.to, "from after to is an empty window");
        assert!(parse("from=yesterday").is_err());
        assert!(parse("to=").is_err());
        assert!(parse("limit=5000").is_err());
        assert!(parse("offset=-1").is_err());
        let w = parse("range=1h&to=2026-05-01T01:00:00Z&limit=0&offset=7").unwrap();
        assert_eq!(w.from.to_rfc3339(), "2026-05-01T00:00:00+00:00");
        assert_eq!((w.limit, w.offset), (0, 7));
    }
}
