//! Typed query strings and path segments, and the shared parameter types every read uses.
//!
//! How a GET endpoint declares what it reads (copy this; see `vitals/api.rs`):
//!
//! ```ignore
//! /// The query string of `GET /api/analytics/performance/histogram`.
//! #[derive(Debug, Deserialize, IntoParams)]
//! #[into_params(parameter_in = Query)]
//! pub struct HistogramQuery {
//!     /// Which metric.
//!     #[param(inline)]
//!     metric: Option<MetricName>,
//! }
//!
//! #[utoipa::path(get, path = "/api/analytics/performance/histogram", tag = "Performance",
//!     params(WindowQuery, HistogramQuery), security(("admin" = [])),
//!     responses((status = 200, body = Object), ReadErrors))]
//! pub async fn histogram(
//!     State(state): State<AppState>,
//!     read: CachedRead,                    // auth + the shared read cache
//!     window: Window,                      // range / from / to / limit / offset, resolved
//!     Params(q): Params<HistogramQuery>,   // this endpoint's own parameters
//! ) -> Result<Response, ApiError> {
//!     read.json(query::histogram(&state.store, window, q.metric)).await
//! }
//! ```
//!
//! `Params<T>` turns any deserialisation failure into our 400 envelope naming the
//! parameter; the shared types below parse exactly the language their schema states
//! (pattern, enum, minimum/maximum), so the OpenAPI document and the handler agree.
//! Parsers here never slice text by byte index without checking the boundary.

use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::ApiError;

/// A query string deserialised into `T`; a bad or unknown value answers 400 with the
/// parameter's name. Parameters `T` does not name are ignored, so an endpoint may take
/// several `Params` (the shared `WindowQuery` and its own struct).
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Params)
    }
}

/// An optional field that, when given, is a value: `null` is refused like a wrong type.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Parses a raw (still percent-encoded) query string into `T`.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let param = match path.as_str() {
            "" | "." => backticked(&message).unwrap_or_else(|| "query".into()),
            p => p.to_string(),
        };
        ApiError::bad_param(param, message)
    })
}

/// A path segment (`/users/{id}`) deserialised into `T`; a segment that is not valid
/// percent-encoded UTF-8 answers 400 in our envelope rather than axum's plain text.
pub struct PathParam<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(PathParam(v)),
            Err(e) => Err(ApiError::bad_param("path", e.body_text())),
        }
    }
}

fn backticked(s: &str) -> Option<String> {
    let (_, rest) = s.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    Some(name.to_string())
}

/// Implements `Deserialize` for a parameter type through its `FromStr`, whose error
/// (a `String`) becomes the 400's message.
#[macro_export]
macro_rules! str_param {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A query parameter that is one of a fixed list of names: the type, its parser (whose
/// error lists the names), its `Deserialize` and its schema (an enum of the same names),
/// so what the document promises and what the handler accepts cannot drift apart.
#[macro_export]
macro_rules! choice_param {
    ($(#[$meta:meta])* $name:ident($inner:ty), $description:literal,
     { $($text:literal => $value:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name(pub $inner);

        impl $name {
            const NAMES: &'static [&'static str] = &[$($text),+];
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name($value)),)+
                    _ => Err(format!("{s:?} is not one of {}", Self::NAMES.join(", "))),
                }
            }
        }
        $crate::str_param!($name);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::http::params::enum_schema(Self::NAMES, $description)
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// A regular expression (no anchors) matching exactly the decimal numbers `1..=n`,
/// without sign or leading zero: how a schema states "a count up to n" in a string.
pub fn upto(n: u64) -> String {
    let digits: Vec<u8> = n.to_string().bytes().map(|b| b - b'0').collect();
    let k = digits.len();
    let mut alts = Vec::new();
    match k {
        0 | 1 => {}
        2 => alts.push("[1-9]".to_string()),
        _ => alts.push(format!("[1-9][0-9]{{0,{}}}", k - 2)),
    }
    for i in 0..k {
        let lo = u8::from(i == 0);
        if digits[i] > lo {
            let prefix: String = digits[..i].iter().map(|d| char::from(b'0' + d)).collect();
            let hi = digits[i] - 1;
            let class = if hi == lo {
                lo.to_string()
            } else {
                format!("[{lo}-{hi}]")
            };
            let rest = k - i - 1;
            let tail = if rest == 0 {
                String::new()
            } else {
                format!("[0-9]{{{rest}}}")
            };
            alts.push(format!("{prefix}{class}{tail}"));
        }
    }
    alts.push(n.to_string());
    format!("(?:{})", alts.join("|"))
}

/// `s` as a count of `1..=max` (digits only, no sign, no leading zero).
pub fn count_upto(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok().filter(|n| (1..=max).contains(n))
}

/// Splits `"30d"` into `("30", 'd')` at a character boundary, whatever `s` holds.
pub fn split_unit(s: &str) -> Option<(&str, char)> {
    let mut chars = s.chars();
    let unit = chars.next_back()?;
    Some((chars.as_str(), unit))
}

/// A span counted in one unit: `(unit letter, largest count, length of one unit)`.
pub type Unit = (char, u64, TimeDelta);

/// Parses `<count><unit>` against `units`; the language is exactly `unit_pattern(units)`.
pub fn parse_span(s: &str, units: &[Unit]) -> Option<TimeDelta> {
    let (num, unit) = split_unit(s)?;
    let (_, max, one) = units.iter().find(|(u, _, _)| *u == unit)?;
    let n = count_upto(num, *max)?;
    one.checked_mul(i32::try_from(n).ok()?)
}

/// The pattern alternatives of `units`, unanchored.
pub fn unit_pattern(units: &[Unit]) -> String {
    units
        .iter()
        .map(|(u, max, _)| format!("{}{u}", upto(*max)))
        .collect::<Vec<_>>()
        .join("|")
}

fn string_schema(pattern: String, description: &str, examples: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .examples(examples.iter().map(|e| serde_json::json!(e)))
        .into()
}

/// `?range=`: how far back from now a read looks, `1h`, `24h`, `7d`, `30d` or any count
/// of minutes (`m`), hours (`h`) or days (`d`) up to ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range(pub TimeDelta);

/// Ten years: longer is a mistake, and keeps every instant far inside chrono's range.
pub const MAX_RANGE_DAYS: u64 = 3660;

impl Range {
    pub const DEFAULT: Range = Range(TimeDelta::hours(24));

    fn units() -> [Unit; 3] {
        [
            ('m', MAX_RANGE_DAYS * 1440, TimeDelta::minutes(1)),
            ('h', MAX_RANGE_DAYS * 24, TimeDelta::hours(1)),
            ('d', MAX_RANGE_DAYS, TimeDelta::days(1)),
        ]
    }

    pub fn pattern() -> String {
        format!("^(?:{})$", unit_pattern(&Self::units()))
    }
}

impl FromStr for Range {
    type Err = String;
    fn from_str(s: &str) -> Result<Range, String> {
        parse_span(s, &Self::units()).map(Range).ok_or_else(|| {
            format!("{s:?} is not a range like 1h, 24h, 7d or 30d (a count of m, h or d, up to {MAX_RANGE_DAYS}d)")
        })
    }
}
str_param!(Range);

impl PartialSchema for Range {
    fn schema() -> RefOr<Schema> {
        string_schema(
            Self::pattern(),
            "A window ending now (or at `to`): a count of minutes (m), hours (h) or days (d), up to 3660d. Default 24h.",
            &["1h", "24h", "7d", "30d"],
        )
    }
}
impl ToSchema for Range {}

/// An instant in a query string: an RFC 3339 date-time (`2026-01-31T12:00:00Z`,
/// any offset) or a date (`2026-01-31`, midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant(pub DateTime<Utc>);

impl FromStr for Instant {
    type Err = String;
    fn from_str(s: &str) -> Result<Instant, String> {
        parse_instant(s).map(Instant).ok_or_else(|| {
            format!("{s:?} is not an RFC 3339 date-time such as 2026-01-31T12:00:00Z, or a date such as 2026-01-31")
        })
    }
}
str_param!(Instant);

/// Exactly the `date-time` and `date` formats of JSON Schema (RFC 3339): a `T` between
/// date and time (chrono would also take a space), and a date of four, two and two digits.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date_shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10);
    if !date_shape {
        return None;
    }
    match b.get(10) {
        None => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc()),
        Some(b'T' | b't') => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Some(_) => None,
    }
}

impl PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime),
            )))
            .item(ObjectBuilder::new().schema_type(Type::String).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date),
            )))
            .description(Some("An RFC 3339 date-time, or a date (midnight UTC)"))
            .into()
    }
}
impl ToSchema for Instant {}

/// A whole number from `MIN` to `MAX` (digits only), stated as such in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int<const MIN: u32, const MAX: u32>(pub u32);

impl<const MIN: u32, const MAX: u32> Int<MIN, MAX> {
    fn check(n: u64) -> Result<Self, String> {
        u32::try_from(n)
            .ok()
            .filter(|n| (MIN..=MAX).contains(n))
            .map(Int)
            .ok_or_else(Self::expected)
    }

    fn expected() -> String {
        format!("must be a whole number from {MIN} to {MAX}")
    }
}

impl<const MIN: u32, const MAX: u32> FromStr for Int<MIN, MAX> {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} {}", Self::expected()));
        }
        s.parse::<u64>()
            .map_err(|_| Self::expected())
            .and_then(Self::check)
            .map_err(|m| format!("{s:?} {m}"))
    }
}

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const A: u32, const B: u32>;
        impl<const A: u32, const B: u32> Visitor<'_> for V<A, B> {
            type Value = Int<A, B>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a whole number from {A} to {B}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Int::check(n).map_err(|m| E::custom(format!("{n} {m}")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("{n} {}", Int::<A, B>::expected())))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        d.deserialize_any(V::<MIN, MAX>)
    }
}

impl<const MIN: u32, const MAX: u32> PartialSchema for Int<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(MIN))
            .maximum(Some(MAX))
            .into()
    }
}
impl<const MIN: u32, const MAX: u32> ToSchema for Int<MIN, MAX> {}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

/// Rows per page, 0 to 1000 (default 50).
pub type Limit = Int<0, MAX_LIMIT>;
/// Rows to skip.
pub type Offset = Int<0, { u32::MAX }>;

/// The window every stream's read takes. Without `from` the window is the `range` before
/// `to` (default now); `from` after `to` is an empty window, not an error.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// How far back from `to`; ignored when `from` is given. Default 24h.
    #[param(inline)]
    pub range: Option<Range>,
    /// Window start (inclusive); overrides `range`.
    #[param(inline)]
    pub from: Option<Instant>,
    /// Window end (exclusive); default now.
    #[param(inline)]
    pub to: Option<Instant>,
    /// Rows per page, 0 to 1000; default 50.
    #[param(inline)]
    pub limit: Option<Limit>,
    /// Rows to skip; default 0.
    #[param(inline)]
    pub offset: Option<Offset>,
}

/// A string enum's schema: exactly these values.
pub fn enum_schema(values: &[&str], description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn upto_matches_exactly_one_to_n() {
        // A tiny matcher for the patterns `upto` writes: alternatives of literal digits,
        // classes `[a-b]` and `[0-9]{n}` / `{0,n}`; checked against every number.
        for n in [
            1u64, 7, 9, 10, 11, 52, 99, 100, 365, 1000, 3660, 8760, 87_840,
        ] {
            let re = upto(n);
            for k in 0..=n + 20 {
                let s = k.to_string();
                assert_eq!(simple_match(&re, &s), (1..=n).contains(&k), "{re} vs {s}");
            }
            assert!(!simple_match(&re, "01"));
        }
    }

    /// Matches `(?:a|b|...)` where each alternative is a sequence of digits, `[x-y]`
    /// classes and `[0-9]{n}` / `[0-9]{0,n}` repeats: enough to check `upto`.
    fn simple_match(re: &str, s: &str) -> bool {
        let body = re
            .strip_prefix("(?:")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap();
        body.split('|')
            .any(|alt| alt_match(alt.as_bytes(), s.as_bytes()))
    }

    fn alt_match(p: &[u8], s: &[u8]) -> bool {
        if p.is_empty() {
            return s.is_empty();
        }
        if p[0] == b'[' {
            let close = p.iter().position(|&c| c == b']').unwrap();
            let (lo, hi) = (p[1], p[3]);
            let rest = &p[close + 1..];
            let in_class = |c: &u8| (lo..=hi).contains(c);
            if rest.first() == Some(&b'{') {
                let end = rest.iter().position(|&c| c == b'}').unwrap();
                let spec = std::str::from_utf8(&rest[1..end]).unwrap();
                let (min, max): (usize, usize) = match spec.split_once(',') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (spec.parse().unwrap(), spec.parse().unwrap()),
                };
                let after = &rest[end + 1..];
                return (min..=max).any(|k| {
                    s.len() >= k && s[..k].iter().all(in_class) && alt_match(after, &s[k..])
                });
            }
            return s.first().is_some_and(in_class) && alt_match(rest, &s[1..]);
        }
        s.first() == Some(&p[0]) && alt_match(&p[1..], &s[1..])
    }

    #[test]
    fn ranges() {
        for (r, hours) in [
            ("1h", 1),
            ("24h", 24),
            ("7d", 168),
            ("30d", 720),
            ("90m", 1),
        ] {
            assert_eq!(r.parse::<Range>().unwrap().0.num_hours(), hours, "{r}");
        }
        for bad in [
            "", "24", "h", "0h", "-1d", "+1d", "01h", "5y", "3661d", "99999d", "1 h", "3%C3%85",
            "3Å", "Åh", "1hh",
        ] {
            assert!(bad.parse::<Range>().is_err(), "{bad}");
        }
        assert!("3660d".parse::<Range>().is_ok());
        assert!("5270400m".parse::<Range>().is_ok());
        assert!("5270401m".parse::<Range>().is_err());
    }

    #[test]
    fn instants() {
        let t = |s: &str| s.parse::<Instant>().map(|i| i.0.to_rfc3339());
        assert_eq!(t("2026-05-01").unwrap(), "2026-05-01T00:00:00+00:00");
        assert_eq!(
            t("2026-05-02T00:00:00+02:00").unwrap(),
            "2026-05-01T22:00:00+00:00"
        );
        for bad in [
            "",
            "yesterday",
            "2026-5-1",
            "2026-05-01 00:00:00Z",
            "2026-02-30",
            "2026-05-01T",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_ints() {
        assert_eq!("0".parse::<Limit>().unwrap().0, 0);
        assert_eq!("1000".parse::<Limit>().unwrap().0, 1000);
        for bad in ["", "-1", "+1", "1001", "1.5", "99999999999999999999", "١"] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
        assert_eq!("4294967295".parse::<Offset>().unwrap().0, u32::MAX);
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let e = parse_query::<WindowQuery>("range=forever").unwrap_err();
        assert!(
            matches!(&e, ApiError::BadParam { param, .. } if param == "range"),
            "{e:?}"
        );
        let e = parse_query::<WindowQuery>("limit=-1").unwrap_err();
        assert!(
            matches!(&e, ApiError::BadParam { param, .. } if param == "limit"),
            "{e:?}"
        );
        let e = parse_query::<WindowQuery>("to=").unwrap_err();
        assert!(
            matches!(&e, ApiError::BadParam { param, .. } if param == "to"),
            "{e:?}"
        );
        assert!(parse_query::<WindowQuery>("other=1&range=7d").is_ok());
    }

    proptest! {
        /// Arbitrary Unicode in any parameter: a value or a clear error, never a panic.
        #[test]
        fn any_text_parses_or_errs(s in "\\PC*", raw in any::<Vec<u8>>()) {
            let _ = s.parse::<Range>();
            let _ = s.parse::<Instant>();
            let _ = s.parse::<Limit>();
            let _ = s.parse::<Offset>();
            let _ = split_unit(&s);
            for q in [format!("range={s}"), format!("from={s}&to={s}"), format!("limit={s}&offset={s}"), s.clone()] {
                let _ = parse_query::<WindowQuery>(&q);
            }
            let _ = parse_query::<WindowQuery>(&String::from_utf8_lossy(&raw));
        }

        /// What the pattern promises is what the parser takes.
        #[test]
        fn range_language(n in 0u64..6_000_000, unit in prop::sample::select(vec!['m', 'h', 'd', 's', 'Å'])) {
            let s = format!("{n}{unit}");
            let max = match unit { 'm' => MAX_RANGE_DAYS * 1440, 'h' => MAX_RANGE_DAYS * 24, 'd' => MAX_RANGE_DAYS, _ => 0 };
            prop_assert_eq!(s.parse::<Range>().is_ok(), (1..=max).contains(&n));
        }
    }
}
