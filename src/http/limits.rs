//! How long the text fields of untrusted input may be, and which client times are sane:
//! shared by the ingest checks, the event-time rule and the sender extractor, so none of
//! them imports another for a number.

pub const MAX_USER_AGENT: usize = 512;
/// Ids, names, models, endpoints.
pub const MAX_SHORT: usize = 256;
/// Routes, referrers, URLs.
pub const MAX_URL: usize = 2048;
/// Error messages.
pub const MAX_TEXT: usize = 4096;
pub const MAX_QUERY: usize = 16 * 1024;
/// Serialised `properties` object, in bytes.
pub const MAX_PROPERTIES: usize = 16 * 1024;
/// Durations above a day are a unit mistake, not a measurement.
pub const MAX_DURATION_MS: f64 = 86_400_000.0;
/// 2000-01-01: anything earlier is almost surely seconds sent as milliseconds.
pub const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;
/// 2100-01-01 (exclusive): anything later is almost surely microseconds. A fixed bound,
/// not "now + drift", so the OpenAPI document can state it exactly.
pub const END_TIMESTAMP_MS: i64 = 4_102_444_800_000;
