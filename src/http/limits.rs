//! How long the text fields of untrusted input may be: shared by the ingest checks and the
//! sender extractor, so neither imports the other for a number.

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
