//! Rows as INSERT bodies (JSONEachRow lines, or RowBinary where floats must arrive
//! exactly), in the column layout of `migrations/clickhouse/`.

use serde::Serialize;

use crate::store::rows::{
    AiRow, Batch, ConversionRow, DatabaseRow, ErrorRow, EventRow, PerformanceRow,
    RecommendationRow, SystemRow,
};
use crate::store::Stream;

/// The ClickHouse table a batch goes to, when this engine stores it.
pub fn table_of(batch: &Batch) -> Option<&'static str> {
    Stream::ALL
        .into_iter()
        .find(|s| s.table() == batch.table())
        .and_then(table_of_stream)
}

/// The ClickHouse table of `stream` (named as in DuckDB), when this engine stores it.
pub fn table_of_stream(stream: Stream) -> Option<&'static str> {
    matches!(
        stream,
        Stream::Events
            | Stream::Conversions
            | Stream::Performance
            | Stream::Ai
            | Stream::Database
            | Stream::Errors
            | Stream::System
            | Stream::Recommendations
    )
    .then(|| stream.table())
}

/// The UInt64 µs column that places a row of `table` in time (retention, copy by hour),
/// and its DateTime twin: the DuckDB column's name where the table has no `event_time`.
pub fn time_columns(table: &str) -> (&'static str, &'static str) {
    match table {
        "system_metrics" => ("ts", "ts_at"),
        "scaling_recommendations" => ("created_at", "created_on"),
        _ => ("event_time", "event_at"),
    }
}

/// The UInt64 µs column retention ages a row of `table` by: the DuckDB stream's
/// (`Stream::age_column`), so both engines keep the same rows.
pub fn age_column(table: &str) -> &'static str {
    match table {
        "system_metrics" | "scaling_recommendations" => "created_at",
        "job_leases" => "at",
        _ => "event_time",
    }
}

fn us(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[derive(Serialize)]
struct Event<'a> {
    id: String,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    event: &'a str,
    properties: Option<&'a str>,
    route: Option<&'a str>,
    referrer: Option<&'a str>,
    user_agent: Option<&'a str>,
    ip: Option<&'a str>,
    timestamp: i64,
    created_at: u64,
    visitor_id: &'a str,
    feature: Option<&'a str>,
    browser: Option<&'a str>,
    os: Option<&'a str>,
    device: Option<&'a str>,
    referrer_domain: Option<&'a str>,
    utm_source: Option<&'a str>,
    utm_medium: Option<&'a str>,
    utm_campaign: Option<&'a str>,
    event_time: u64,
    /// Seconds: the DateTime twin of `event_time` (see the migration).
    event_at: u64,
}

impl<'a> From<&'a EventRow> for Event<'a> {
    fn from(r: &'a EventRow) -> Self {
        Event {
            id: r.id.hyphenated().to_string(),
            user_id: r.user_id.as_deref(),
            session_id: r.session_id.as_deref(),
            event: &r.event,
            properties: r.properties.as_deref(),
            route: r.route.as_deref(),
            referrer: r.referrer.as_deref(),
            user_agent: r.user_agent.as_deref(),
            ip: r.ip.as_deref(),
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            visitor_id: r.visitor_id.as_deref().unwrap_or_default(),
            feature: r.feature.as_deref(),
            browser: r.browser.as_deref(),
            os: r.os.as_deref(),
            device: r.device.as_deref(),
            referrer_domain: r.referrer_domain.as_deref(),
            utm_source: r.utm_source.as_deref(),
            utm_medium: r.utm_medium.as_deref(),
            utm_campaign: r.utm_campaign.as_deref(),
            event_time: us(r.event_time.unwrap_or(r.created_at)),
            event_at: us(r.event_time.unwrap_or(r.created_at)) / 1_000_000,
        }
    }
}

#[derive(Serialize)]
struct Conversion<'a> {
    id: String,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    funnel: &'a str,
    step: &'a str,
    timestamp: i64,
    created_at: u64,
    properties: Option<&'a str>,
    visitor_id: &'a str,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a ConversionRow> for Conversion<'a> {
    fn from(r: &'a ConversionRow) -> Self {
        Conversion {
            id: r.id.hyphenated().to_string(),
            user_id: r.user_id.as_deref(),
            session_id: r.session_id.as_deref(),
            funnel: &r.funnel,
            step: &r.step,
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            properties: r.properties.as_deref(),
            visitor_id: r.visitor_id.as_deref().unwrap_or_default(),
            event_time: us(r.event_time.unwrap_or(r.created_at)),
            event_at: us(r.event_time.unwrap_or(r.created_at)) / 1_000_000,
        }
    }
}

/// `event_time` and its DateTime twin `event_at` (seconds) of a row that may lack one.
fn event_time(event_time: Option<i64>, created_at: i64) -> (u64, u64) {
    let t = us(event_time.unwrap_or(created_at));
    (t, t / 1_000_000)
}

#[derive(Serialize)]
struct Ai<'a> {
    id: String,
    request_id: Option<&'a str>,
    endpoint: Option<&'a str>,
    model: Option<&'a str>,
    tokens: Option<i32>,
    duration: f64,
    success: u8,
    error: Option<&'a str>,
    cache_hit: u8,
    user_id: Option<&'a str>,
    ip: Option<&'a str>,
    timestamp: i64,
    created_at: u64,
    provider: Option<&'a str>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    ttft: Option<f64>,
    cost: Option<f64>,
    stream: Option<u8>,
    demo: Option<u8>,
    tokens_saved: Option<i32>,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a AiRow> for Ai<'a> {
    fn from(r: &'a AiRow) -> Self {
        let (event_time, event_at) = event_time(r.event_time, r.created_at);
        Ai {
            id: r.id.hyphenated().to_string(),
            request_id: r.request_id.as_deref(),
            endpoint: r.endpoint.as_deref(),
            model: r.model.as_deref(),
            tokens: r.tokens,
            duration: r.duration,
            success: u8::from(r.success),
            error: r.error.as_deref(),
            cache_hit: u8::from(r.cache_hit),
            user_id: r.user_id.as_deref(),
            ip: r.ip.as_deref(),
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            provider: r.provider.as_deref(),
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            ttft: r.ttft,
            cost: r.cost,
            stream: r.stream.map(u8::from),
            demo: r.demo.map(u8::from),
            tokens_saved: r.tokens_saved,
            event_time,
            event_at,
        }
    }
}

#[derive(Serialize)]
struct Database<'a> {
    id: String,
    query: &'a str,
    duration: f64,
    rows: Option<i32>,
    cached: u8,
    user_id: Option<&'a str>,
    ip: Option<&'a str>,
    timestamp: i64,
    created_at: u64,
    fingerprint: Option<&'a str>,
    normalized_query: Option<&'a str>,
    request_id: Option<&'a str>,
    route: Option<&'a str>,
    source: Option<&'a str>,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a DatabaseRow> for Database<'a> {
    fn from(r: &'a DatabaseRow) -> Self {
        let (event_time, event_at) = event_time(r.event_time, r.created_at);
        Database {
            id: r.id.hyphenated().to_string(),
            query: &r.query,
            duration: r.duration,
            rows: r.rows,
            cached: u8::from(r.cached),
            user_id: r.user_id.as_deref(),
            ip: r.ip.as_deref(),
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            fingerprint: r.fingerprint.as_deref(),
            normalized_query: r.normalized_query.as_deref(),
            request_id: r.request_id.as_deref(),
            route: r.route.as_deref(),
            source: r.source.as_deref(),
            event_time,
            event_at,
        }
    }
}

#[derive(Serialize)]
struct AppError<'a> {
    id: String,
    kind: &'a str,
    message: &'a str,
    source: Option<&'a str>,
    line: Option<i32>,
    col: Option<i32>,
    stack: Option<&'a str>,
    route: Option<&'a str>,
    session_id: Option<&'a str>,
    user_agent: Option<&'a str>,
    fingerprint: &'a str,
    status: Option<i16>,
    timestamp: i64,
    created_at: u64,
    event_time: u64,
    event_at: u64,
}

impl<'a> From<&'a ErrorRow> for AppError<'a> {
    fn from(r: &'a ErrorRow) -> Self {
        // Errors are aged and read by their receive time (see the migration).
        let (event_time, event_at) = event_time(None, r.created_at);
        AppError {
            id: r.id.hyphenated().to_string(),
            kind: r.kind,
            message: &r.message,
            source: r.source.as_deref(),
            line: r.line,
            col: r.col,
            stack: r.stack.as_deref(),
            route: r.route.as_deref(),
            session_id: r.session_id.as_deref(),
            user_agent: r.user_agent.as_deref(),
            fingerprint: &r.fingerprint,
            status: r.status,
            timestamp: r.timestamp,
            created_at: us(r.created_at),
            event_time,
            event_at,
        }
    }
}

/// The columns of `performance_metrics` in the order `encode` writes them.
const PERFORMANCE_COLUMNS: &str = "id, user_id, session_id, route, path, device, lcp, inp, cls, fcp, ttfb, fid, \
    metric, metric_id, rereport, navigation_type, attribution, user_agent, connection, ip, timestamp, \
    created_at, event_time, event_at";

/// The rest of `INSERT INTO db.table ...` for `table`: the format its rows are sent in.
/// Web vitals go as RowBinary: their values are floats, and 18.16 reads decimal text
/// inexactly (`1.68` is stored as 1.6800000000000002), which would move a value sitting on
/// a rating threshold across it and make percentiles differ from DuckDB's.
pub fn format(table: &str) -> String {
    match table {
        "performance_metrics" => format!(" ({PERFORMANCE_COLUMNS}) FORMAT RowBinary"),
        "system_metrics" => format!(" ({SYSTEM_COLUMNS}) FORMAT RowBinary"),
        "scaling_recommendations" => format!(" ({RECOMMENDATION_COLUMNS}) FORMAT RowBinary"),
        _ => " FORMAT JSONEachRow".to_string(),
    }
}

/// RowBinary values: little-endian numbers, strings with a LEB128 length, Nullable as a
/// flag byte (1 = NULL) before the value.
struct Binary<'a>(&'a mut Vec<u8>);

impl Binary<'_> {
    fn string(&mut self, s: &str) {
        let mut n = s.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                break;
            }
            self.0.push(byte | 0x80);
        }
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.push(0);
                self.string(s);
            }
            None => self.0.push(1),
        }
    }

    fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.0.push(0);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            None => self.0.push(1),
        }
    }

    fn opt_i32(&mut self, v: Option<i32>) {
        match v {
            Some(v) => {
                self.0.push(0);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            None => self.0.push(1),
        }
    }

    /// A µs time as UInt64 followed by its DateTime twin (UInt32 seconds) when `twin`.
    fn time(&mut self, us_since_epoch: i64, twin: bool) {
        let t = us(us_since_epoch);
        self.0.extend_from_slice(&t.to_le_bytes());
        if twin {
            let at = u32::try_from(t / 1_000_000).unwrap_or(u32::MAX);
            self.0.extend_from_slice(&at.to_le_bytes());
        }
    }

    fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => {
                self.0.push(0);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            None => self.0.push(1),
        }
    }
}

fn performance(r: &PerformanceRow, out: &mut Vec<u8>) {
    let mut b = Binary(out);
    let event_time = us(r.event_time.unwrap_or(r.created_at));
    b.string(&r.id.hyphenated().to_string());
    b.opt_string(r.user_id.as_deref());
    b.opt_string(r.session_id.as_deref());
    // '' for none: sort-key columns (see the migration).
    b.string(r.route.as_deref().unwrap_or_default());
    b.opt_string(r.path.as_deref());
    b.string(r.device.as_deref().unwrap_or_default());
    for v in [r.lcp, r.inp, r.cls, r.fcp, r.ttfb, r.fid] {
        b.opt_f64(v);
    }
    b.opt_string(r.metric.as_deref());
    b.opt_string(r.metric_id.as_deref());
    b.0.push(u8::from(r.rereport));
    for s in [
        &r.navigation_type,
        &r.attribution,
        &r.user_agent,
        &r.connection,
        &r.ip,
    ] {
        b.opt_string(s.as_deref());
    }
    b.0.extend_from_slice(&r.timestamp.to_le_bytes());
    b.0.extend_from_slice(&us(r.created_at).to_le_bytes());
    b.0.extend_from_slice(&event_time.to_le_bytes());
    // DateTime: UInt32 seconds.
    let at = u32::try_from(event_time / 1_000_000).unwrap_or(u32::MAX);
    b.0.extend_from_slice(&at.to_le_bytes());
}

/// The columns of `system_metrics` in the order `system` writes them.
const SYSTEM_COLUMNS: &str =
    "instance, source, ts, ts_at, cpu, memory, requests_per_second, p95_latency, \
    connections, error_rate, load1, load5, load15, memory_used, memory_available, memory_limit, \
    disk_free, disk_total, net_rx_bytes, net_tx_bytes, process_rss, process_cpu, process_threads, \
    created_at";

/// Samples as RowBinary: their floats are the apps' and the host's own readings, which
/// must read back as they were sent (see `format`).
fn system(r: &SystemRow, out: &mut Vec<u8>) {
    let mut b = Binary(out);
    b.string(&r.instance);
    b.string(r.source);
    b.time(r.ts, true);
    for v in [r.cpu, r.memory, r.requests_per_second, r.p95_latency] {
        b.opt_f64(v);
    }
    b.opt_i32(r.connections);
    for v in [r.error_rate, r.load1, r.load5, r.load15] {
        b.opt_f64(v);
    }
    for v in [
        r.memory_used,
        r.memory_available,
        r.memory_limit,
        r.disk_free,
        r.disk_total,
        r.net_rx_bytes,
        r.net_tx_bytes,
        r.process_rss,
    ] {
        b.opt_i64(v);
    }
    b.opt_f64(r.process_cpu);
    b.opt_i32(r.process_threads);
    b.time(r.created_at, false);
}

/// The columns of `scaling_recommendations` in the order `recommendation` writes them.
const RECOMMENDATION_COLUMNS: &str =
    "created_at, created_on, fleet, current_instances, raw_desired, \
    desired_instances, metric, value, target, urgency, reason";

fn recommendation(r: &RecommendationRow, out: &mut Vec<u8>) {
    let mut b = Binary(out);
    b.time(r.created_at, true);
    b.string(r.fleet);
    for v in [r.current_instances, r.raw_desired, r.desired_instances] {
        b.0.extend_from_slice(&v.to_le_bytes());
    }
    b.opt_string(r.metric);
    b.opt_f64(r.value);
    b.opt_f64(r.target);
    b.string(r.urgency);
    b.string(&r.reason);
}

/// Appends the batch's rows to `out` in its table's `format`: one JSON object per line,
/// or RowBinary.
pub fn encode(batch: &Batch, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    fn lines<T: Serialize>(
        out: &mut Vec<u8>,
        rows: impl Iterator<Item = T>,
    ) -> serde_json::Result<()> {
        for row in rows {
            serde_json::to_writer(&mut *out, &row)?;
            out.push(b'\n');
        }
        Ok(())
    }
    match batch {
        Batch::Events(rows) => lines(out, rows.iter().map(Event::from)),
        Batch::Conversions(rows) => lines(out, rows.iter().map(Conversion::from)),
        Batch::Ai(rows) => lines(out, rows.iter().map(Ai::from)),
        Batch::Database(rows) => lines(out, rows.iter().map(Database::from)),
        Batch::Errors(rows) => lines(out, rows.iter().map(AppError::from)),
        Batch::Performance(rows) => {
            for r in rows {
                performance(r, out);
            }
            Ok(())
        }
        Batch::System(rows) => {
            for r in rows {
                system(r, out);
            }
            Ok(())
        }
        Batch::Recommendations(rows) => {
            for r in rows {
                recommendation(r, out);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_binary_lengths_are_leb128() {
        let mut out = Vec::new();
        let mut b = Binary(&mut out);
        b.string("ab");
        b.string(&"x".repeat(300));
        b.opt_string(None);
        b.opt_f64(Some(1.68));
        assert_eq!(&out[..3], &[2, b'a', b'b']);
        // 300 = 0b10_0101100: low seven bits with the continuation bit, then 2.
        assert_eq!(&out[3..5], &[0xac, 0x02]);
        assert_eq!(out[305], 1, "NULL is a flag byte alone");
        assert_eq!(out[306], 0);
        assert_eq!(&out[307..], &1.68f64.to_le_bytes());
    }

    #[test]
    fn samples_and_recommendations_go_as_row_binary_with_every_column() {
        let f = format("system_metrics");
        assert_eq!(f.matches(", ").count() + 1, 24, "{f}");
        let row = SystemRow {
            instance: "a".into(),
            source: "app",
            ts: 1_700_000_000_000_000,
            cpu: Some(12.5),
            ..Default::default()
        };
        let mut out = Vec::new();
        encode(&Batch::System(vec![row]), &mut out).unwrap();
        // "a", "app", ts, its twin, cpu, then 18 NULL flags and created_at.
        assert_eq!(out.len(), 2 + 4 + 8 + 4 + 9 + 18 + 8);
        assert_eq!(&out[18..27], &[0, 0, 0, 0, 0, 0, 0, 0x29, 0x40]);
        let f = format("scaling_recommendations");
        assert_eq!(f.matches(", ").count() + 1, 11, "{f}");
        assert_eq!(time_columns("system_metrics"), ("ts", "ts_at"));
        assert_eq!(time_columns("user_events").0, "event_time");
    }

    #[test]
    fn web_vitals_go_as_row_binary_with_every_column() {
        let f = format("performance_metrics");
        assert!(f.ends_with("FORMAT RowBinary"), "{f}");
        assert_eq!(f.matches(", ").count() + 1, 24);
        assert_eq!(format("user_events"), " FORMAT JSONEachRow");
        let row = PerformanceRow {
            route: Some("/r".into()),
            lcp: Some(2500.0),
            created_at: 1_700_000_000_000_000,
            ..Default::default()
        };
        let mut out = Vec::new();
        encode(&Batch::Performance(vec![row]), &mut out).unwrap();
        // id (1 + 36), user_id and session_id NULL, route "/r", path NULL, device "".
        assert_eq!(out[0], 36);
        assert_eq!(&out[37..43], &[1, 1, 2, b'/', b'r', 1]);
        // DateTime twin: the last four bytes, seconds of the receive time.
        let at = u32::from_le_bytes(out[out.len() - 4..].try_into().unwrap());
        assert_eq!(at, 1_700_000_000);
    }
}
