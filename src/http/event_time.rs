//! When a row happened (`event_time`): the one clock-skew rule every ingest path uses.
//!
//! - `timestamp` (client clock, ms) with `sent_at` (the same client clock when the batch
//!   was sent, ms): `received - (sent_at - timestamp)`, PostHog's correction, so a device
//!   whose clock is hours off still lands when it acted;
//! - `timestamp` alone: taken as it is;
//! - neither: the receive time (`created_at`: now, or the backfill the client gave).
//!
//! Bounds: `timestamp` and `sent_at` must lie in 2000..2100 (else 422 naming the field);
//! the result is never before 2000-01-01 (how far back a backfill may go) nor after the
//! receive time (a later one, from a fast clock without `sent_at`, is recorded as the
//! receive time, as `created_at` is). Times keep millisecond precision; the microsecond
//! digits hold the item's place in its request (0..=999), so events of one batch that share
//! a millisecond (or the receive time) keep their array order in funnels and retention.

use serde::Deserialize;
use utoipa::IntoParams;

use super::field::{field_error, FieldError};
use super::limits::{END_TIMESTAMP_MS, MIN_TIMESTAMP_MS};

/// The highest place in a request the microsecond digits can hold; later items share it.
pub const MAX_ORDINAL: usize = 999;

/// `?sent_at=` on an ingest URL: the client's clock when it sent the whole batch (for
/// `navigator.sendBeacon`, which cannot set headers). An item's own `sent_at` wins.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SentAtQuery {
    /// Client clock when the batch was sent, milliseconds since the Unix epoch (2000 to 2100).
    /// With an item's `timestamp`, corrects the client's clock skew.
    #[param(minimum = 946684800000_i64, maximum = 4102444799999_i64)]
    sent_at: Option<i64>,
}

/// A client time in epoch milliseconds, within the sane bounds, or a 422 naming `field`.
pub fn client_ms(t: i64, field: &'static str) -> Result<i64, FieldError> {
    if t < MIN_TIMESTAMP_MS {
        return Err(field_error(
            field,
            "is before the year 2000; send milliseconds since the Unix epoch",
        ));
    }
    if t >= END_TIMESTAMP_MS {
        return Err(field_error(
            field,
            "is after the year 2100; send milliseconds since the Unix epoch",
        ));
    }
    Ok(t)
}

/// The event time in epoch microseconds (a whole millisecond) of an item received at
/// `received_us`, with its client `timestamp` and the batch's `sent_at` (both ms).
pub fn event_time(
    received_us: i64,
    timestamp: Option<i64>,
    sent_at: Option<i64>,
) -> Result<i64, FieldError> {
    let received_ms = received_us.div_euclid(1000);
    let ms = match (timestamp, sent_at) {
        (Some(t), Some(s)) => {
            let (t, s) = (client_ms(t, "timestamp")?, client_ms(s, "sent_at")?);
            received_ms.saturating_sub(s - t)
        }
        (Some(t), None) => client_ms(t, "timestamp")?,
        (None, Some(s)) => {
            client_ms(s, "sent_at")?;
            received_ms
        }
        (None, None) => received_ms,
    };
    Ok(ms.clamp(MIN_TIMESTAMP_MS, received_ms.max(MIN_TIMESTAMP_MS)) * 1000)
}

/// `event_time` with the item's place in its request in the microsecond digits.
pub fn ordered(event_time_us: i64, index: usize) -> i64 {
    event_time_us + index.min(MAX_ORDINAL) as i64
}

/// `sent_at` from a raw query string (`sent_at` or `sentAt`); a non-integer is a 422.
pub fn sent_at_query(query: Option<&str>) -> Result<Option<i64>, FieldError> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "sent_at" || k == "sentAt" {
            let n: i64 = v.parse().map_err(|_| {
                field_error(
                    "sent_at",
                    "must be a whole number of milliseconds since the Unix epoch",
                )
            })?;
            return client_ms(n, "sent_at").map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const NOW_US: i64 = NOW_MS * 1000 + 123;
    const HOUR_MS: i64 = 3_600_000;

    #[test]
    fn skewed_clock_is_corrected_by_sent_at() {
        // A phone 3 h fast: it acted 4 s before sending, by its own clock.
        let fast = NOW_MS + 3 * HOUR_MS;
        let t = event_time(NOW_US, Some(fast - 4000), Some(fast)).unwrap();
        assert_eq!(t, (NOW_MS - 4000) * 1000);
        // A clock 2 days slow, the same.
        let slow = NOW_MS - 48 * HOUR_MS;
        let t = event_time(NOW_US, Some(slow - 10), Some(slow)).unwrap();
        assert_eq!(t, (NOW_MS - 10) * 1000);
    }

    #[test]
    fn timestamp_alone_is_taken_within_bounds() {
        let t = event_time(NOW_US, Some(NOW_MS - 86_400_000), None).unwrap();
        assert_eq!(t, (NOW_MS - 86_400_000) * 1000);
        // Ahead of the server: recorded as the receive time.
        assert_eq!(
            event_time(NOW_US, Some(NOW_MS + HOUR_MS), None).unwrap(),
            NOW_MS * 1000
        );
        // Neither: the receive time, to the millisecond.
        assert_eq!(event_time(NOW_US, None, None).unwrap(), NOW_MS * 1000);
        assert_eq!(
            event_time(NOW_US, None, Some(NOW_MS)).unwrap(),
            NOW_MS * 1000
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (ts, sent, field) in [
            (Some(1_700_000_000), None, "timestamp"),
            (Some(END_TIMESTAMP_MS), None, "timestamp"),
            (Some(NOW_MS), Some(5), "sent_at"),
            (None, Some(END_TIMESTAMP_MS), "sent_at"),
        ] {
            let e = event_time(NOW_US, ts, sent).unwrap_err();
            assert_eq!(e.field, field);
        }
        // A correction past the bounds is clamped, never an error.
        let t = event_time(NOW_US, Some(MIN_TIMESTAMP_MS), Some(END_TIMESTAMP_MS - 1)).unwrap();
        assert_eq!(t, MIN_TIMESTAMP_MS * 1000);
        let t = event_time(NOW_US, Some(END_TIMESTAMP_MS - 1), Some(MIN_TIMESTAMP_MS)).unwrap();
        assert_eq!(t, NOW_MS * 1000);
    }

    #[test]
    fn ordinal_keeps_array_order_inside_a_millisecond() {
        let t = event_time(NOW_US, None, None).unwrap();
        assert!(ordered(t, 0) < ordered(t, 1));
        assert!(ordered(t, 998) < ordered(t, 999));
        assert!(ordered(t, 5000) < t + 1000);
    }

    #[test]
    fn sent_at_from_the_query_string() {
        assert_eq!(sent_at_query(None).unwrap(), None);
        assert_eq!(sent_at_query(Some("a=1&b")).unwrap(), None);
        assert_eq!(
            sent_at_query(Some("x=1&sent_at=1767225600000")).unwrap(),
            Some(NOW_MS)
        );
        assert_eq!(
            sent_at_query(Some("sentAt=1767225600000")).unwrap(),
            Some(NOW_MS)
        );
        assert_eq!(
            sent_at_query(Some("sent_at=soon")).unwrap_err().field,
            "sent_at"
        );
        assert_eq!(
            sent_at_query(Some("sent_at=12")).unwrap_err().field,
            "sent_at"
        );
    }
}
