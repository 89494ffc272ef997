//! Calendar buckets (day, ISO week, month) in a fixed UTC offset, the same in SQL and Rust.

use chrono::{DateTime, Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

pub const MINUTE_US: i64 = 60_000_000;
pub const DAY_US: i64 = 86_400_000_000;
pub const WEEK_US: i64 = 7 * DAY_US;
/// 1970-01-05, the first Monday of the epoch: weeks start on Mondays (ISO 8601).
const MONDAY_US: i64 = 4 * DAY_US;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Interval> {
        match s {
            "day" | "daily" => Some(Interval::Day),
            "week" | "weekly" => Some(Interval::Week),
            "month" | "monthly" => Some(Interval::Month),
            _ => None,
        }
    }

    /// The bucket number of `t_us` (UTC microseconds) seen at `offset_us` from UTC.
    pub fn bucket(self, t_us: i64, offset_us: i64) -> i64 {
        let local = t_us + offset_us;
        match self {
            Interval::Day => local.div_euclid(DAY_US),
            Interval::Week => (local - MONDAY_US).div_euclid(WEEK_US),
            Interval::Month => {
                let d = DateTime::from_timestamp_micros(local).unwrap_or_default();
                i64::from(d.year()) * 12 + i64::from(d.month0())
            }
        }
    }

    /// The UTC instant (microseconds) at which bucket `b` starts.
    pub fn start(self, b: i64, offset_us: i64) -> i64 {
        let local = match self {
            Interval::Day => b * DAY_US,
            Interval::Week => b * WEEK_US + MONDAY_US,
            Interval::Month => {
                let (y, m0) = (b.div_euclid(12), b.rem_euclid(12));
                NaiveDate::from_ymd_opt(y as i32, m0 as u32 + 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map_or(0, |d| d.and_utc().timestamp_micros())
            }
        };
        local - offset_us
    }

    /// The same bucket number in SQL, for a BIGINT column of UTC microseconds. Only our
    /// own numbers go into the text.
    pub fn sql(self, col: &str, offset_us: i64) -> String {
        match self {
            Interval::Day => format!("(({col} + {offset_us}) // {DAY_US})"),
            Interval::Week => format!("(({col} + {offset_us} - {MONDAY_US}) // {WEEK_US})"),
            Interval::Month => format!(
                "(year(make_timestamp({col} + {offset_us})) * 12 + month(make_timestamp({col} + {offset_us})) - 1)"
            ),
        }
    }
}

/// `Z`, `+02:00`, `-0530`, or minutes (`120`, `-330`) as an offset in microseconds,
/// within ±14 h: exactly the strings `OFFSET_PATTERN` (with `upto(840)`) describes.
pub fn parse_offset(s: &str) -> Option<i64> {
    offset_minutes(s).map(|m| m * MINUTE_US)
}

/// The regular expression of `parse_offset`'s language, given `upto(840)`.
pub fn offset_pattern(upto_840: &str) -> String {
    format!("^(?:[Zz]|[+-](?:(?:0[0-9]|1[0-3]):?[0-5][0-9]|14:?00)|[+-]?(?:0|{upto_840}))$")
}

fn offset_minutes(s: &str) -> Option<i64> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    // The first byte is ASCII when it is a sign, so slicing after it is on a boundary.
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => (1, s),
    };
    let signed = rest.len() != s.len();
    let b = rest.as_bytes();
    let hhmm = match (b.len(), b.get(2)) {
        (5, Some(b':')) => Some([b[0], b[1], b[3], b[4]]),
        (4, _) => Some([b[0], b[1], b[2], b[3]]),
        _ => None,
    };
    if let Some(d) = hhmm.filter(|d| signed && d.iter().all(u8::is_ascii_digit)) {
        let n = |i: usize| i64::from(d[i] - b'0');
        let (h, m) = (n(0) * 10 + n(1), n(2) * 10 + n(3));
        return (m < 60 && h * 60 + m <= 14 * 60).then_some(sign * (h * 60 + m));
    }
    if rest == "0" {
        return Some(0);
    }
    let digits_ok = !rest.is_empty()
        && rest.len() <= 3
        && !rest.starts_with('0')
        && rest.bytes().all(|c| c.is_ascii_digit());
    let minutes: i64 = if digits_ok {
        rest.parse().ok()?
    } else {
        return None;
    };
    (minutes <= 14 * 60).then_some(sign * minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip() {
        let t = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z, a Thursday
        for iv in [Interval::Day, Interval::Week, Interval::Month] {
            for off in [0, 120 * MINUTE_US, -300 * MINUTE_US] {
                for dt in [0, 1, DAY_US * 3 + 7, DAY_US * 40] {
                    let b = iv.bucket(t + dt, off);
                    assert!(iv.start(b, off) <= t + dt, "{iv:?} {off} {dt}");
                    assert!(iv.start(b + 1, off) > t + dt);
                    assert_eq!(iv.bucket(iv.start(b, off), off), b);
                }
            }
        }
        // Thursday 2026-01-01 belongs to the week of Monday 2025-12-29.
        let w = Interval::Week.bucket(t, 0);
        assert_eq!(Interval::Week.start(w, 0), t - 3 * DAY_US);
        // Just before midnight UTC is already the next day in UTC+2.
        assert_eq!(
            Interval::Day.bucket(t - 1, 120 * MINUTE_US),
            Interval::Day.bucket(t, 0)
        );
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00"), Some(120 * MINUTE_US));
        assert_eq!(parse_offset("-0530"), Some(-330 * MINUTE_US));
        assert_eq!(parse_offset("90"), Some(90 * MINUTE_US));
        assert_eq!(parse_offset("Z"), Some(0));
        for bad in [
            "+2:0", "+25:00", "abc", "+02:60", "9999", "", " 02:00", "+14:30", "0120", "Å",
        ] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }
}
