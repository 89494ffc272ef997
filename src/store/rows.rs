//! Row types of the ingest tables and how each is appended, in table column order.

use duckdb::types::{TimeUnit, Value};
use duckdb::{params, Appender};
use uuid::Uuid;

/// A write unit: rows of one table, all committed or none.
#[derive(Debug, Clone)]
pub enum Batch {
    Performance(Vec<PerformanceRow>),
    Ai(Vec<AiRow>),
    Database(Vec<DatabaseRow>),
    Events(Vec<EventRow>),
    Conversions(Vec<ConversionRow>),
    Errors(Vec<ErrorRow>),
    System(Vec<SystemRow>),
    Recommendations(Vec<RecommendationRow>),
}

impl Batch {
    pub fn len(&self) -> usize {
        match self {
            Batch::Performance(r) => r.len(),
            Batch::Ai(r) => r.len(),
            Batch::Database(r) => r.len(),
            Batch::Events(r) => r.len(),
            Batch::Conversions(r) => r.len(),
            Batch::Errors(r) => r.len(),
            Batch::System(r) => r.len(),
            Batch::Recommendations(r) => r.len(),
        }
    }

    pub fn table(&self) -> &'static str {
        match self {
            Batch::Performance(_) => PerformanceRow::TABLE,
            Batch::Ai(_) => AiRow::TABLE,
            Batch::Database(_) => DatabaseRow::TABLE,
            Batch::Events(_) => EventRow::TABLE,
            Batch::Conversions(_) => ConversionRow::TABLE,
            Batch::Errors(_) => ErrorRow::TABLE,
            Batch::System(_) => SystemRow::TABLE,
            Batch::Recommendations(_) => RecommendationRow::TABLE,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every fixed name a row carries as `&'static str` (an error's `kind`, a sample's
/// `source`, a recommendation's `fleet`, `metric` and `urgency`): what ingest and the
/// scaling task write. Rows read back from storage (the ingest log, a copy into
/// ClickHouse) take their names from here.
const LABELS: &[&str] = &[
    "js",
    "server",
    "app",
    "host",
    "apps",
    "cpu",
    "memory",
    "urgent",
    "normal",
    "over_provisioned",
];

/// The `&'static str` of a fixed name rows carry, if `v` is one.
pub fn label(v: &str) -> Option<&'static str> {
    LABELS.iter().copied().find(|l| *l == v)
}

/// A row the writer can append to its table.
pub trait Row: Send + 'static {
    const TABLE: &'static str;
    /// This row type's slice of a batch, if the batch is of this table.
    fn rows(batch: &Batch) -> Option<&[Self]>
    where
        Self: Sized;
    fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()>;
    /// Appends with the writer's running number `seq`; only tables that keep it use it.
    fn append_numbered(&self, app: &mut Appender<'_>, _seq: i64) -> duckdb::Result<()> {
        self.append(app)
    }
}

fn ts(micros: i64) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, micros)
}

/// The `event_time` column of a row that keeps one (migration 0013).
macro_rules! event_time {
    ($($row:ident),*) => {$(
        impl $row {
            fn event_time(&self) -> Value {
                ts(self.event_time.unwrap_or(self.created_at))
            }
        }
    )*};
}
event_time!(PerformanceRow, AiRow, DatabaseRow, EventRow, ConversionRow);

/// The `Row` methods of a table that keeps the writer's running number `seq` (events, AI
/// calls, query timings: the roll-ups fold their rows by it); `append_with` appends.
macro_rules! numbered {
    () => {
        fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()> {
            self.append_with(app, None)
        }
        fn append_numbered(&self, app: &mut Appender<'_>, seq: i64) -> duckdb::Result<()> {
            self.append_with(app, Some(seq))
        }
    };
}

#[derive(Debug, Clone, Default)]
pub struct PerformanceRow {
    pub id: Uuid,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub route: Option<String>,
    pub lcp: Option<f64>,
    pub fid: Option<f64>,
    pub cls: Option<f64>,
    pub fcp: Option<f64>,
    pub ttfb: Option<f64>,
    pub inp: Option<f64>,
    pub user_agent: Option<String>,
    pub connection: Option<String>,
    pub ip: Option<String>,
    /// Client clock, milliseconds since the epoch.
    pub timestamp: i64,
    /// Server clock, microseconds since the epoch.
    pub created_at: i64,
    /// The metric instance (web-vitals `id`) or the tracker's page view this reports on.
    pub metric_id: Option<String>,
    /// The one metric of a web-vitals object (`lcp`, ...); `None` for a whole-page row.
    pub metric: Option<String>,
    /// Known to replace an earlier report of the same (metric_id, metric).
    pub rereport: bool,
    pub navigation_type: Option<String>,
    pub device: Option<String>,
    pub path: Option<String>,
    /// A JSON object, already serialised.
    pub attribution: Option<String>,
    /// When it happened (µs; see `http::event_time`); `None`: the receive time `created_at`.
    pub event_time: Option<i64>,
}

impl Row for PerformanceRow {
    const TABLE: &'static str = "performance_metrics";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Performance(r) => Some(r),
            _ => None,
        }
    }
    fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()> {
        app.append_row(params![
            self.id.hyphenated().to_string(),
            self.user_id.as_deref(),
            self.session_id,
            self.route,
            self.lcp,
            self.fid,
            self.cls,
            self.fcp,
            self.ttfb,
            self.user_agent,
            self.connection,
            self.ip,
            self.timestamp,
            ts(self.created_at),
            self.inp,
            self.metric_id,
            self.metric,
            self.rereport,
            self.navigation_type,
            self.device,
            self.path,
            self.attribution,
            self.event_time(),
        ])
    }
}

#[derive(Debug, Clone, Default)]
pub struct AiRow {
    pub id: Uuid,
    pub request_id: Option<String>,
    pub endpoint: Option<String>,
    pub model: Option<String>,
    pub tokens: Option<i32>,
    pub duration: f64,
    pub success: bool,
    pub error: Option<String>,
    pub cache_hit: bool,
    /// Any string the app uses for its users (migration 0006 made the column text).
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub timestamp: i64,
    pub created_at: i64,
    pub provider: Option<String>,
    pub prompt_tokens: Option<i32>,
    pub completion_tokens: Option<i32>,
    /// Milliseconds to the first byte of the answer.
    pub ttft: Option<f64>,
    /// USD.
    pub cost: Option<f64>,
    pub stream: Option<bool>,
    pub demo: Option<bool>,
    pub tokens_saved: Option<i32>,
    /// When it happened (µs; see `http::event_time`); `None`: the receive time `created_at`.
    pub event_time: Option<i64>,
}

impl Row for AiRow {
    const TABLE: &'static str = "ai_performance_metrics";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Ai(r) => Some(r),
            _ => None,
        }
    }
    numbered!();
}

impl AiRow {
    fn append_with(&self, app: &mut Appender<'_>, seq: Option<i64>) -> duckdb::Result<()> {
        app.append_row(params![
            self.id.hyphenated().to_string(),
            self.request_id,
            self.endpoint,
            self.model,
            self.tokens,
            self.duration,
            self.success,
            self.error,
            self.cache_hit,
            self.user_id,
            self.ip,
            self.timestamp,
            ts(self.created_at),
            self.provider,
            self.prompt_tokens,
            self.completion_tokens,
            self.ttft,
            self.cost,
            self.stream,
            self.demo,
            self.tokens_saved,
            self.event_time(),
            seq,
        ])
    }
}

#[derive(Debug, Clone, Default)]
pub struct DatabaseRow {
    pub id: Uuid,
    pub query: String,
    pub duration: f64,
    pub rows: Option<i32>,
    pub cached: bool,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub timestamp: i64,
    pub created_at: i64,
    /// The fingerprint id and normalised text (migration 0012).
    pub fingerprint: Option<String>,
    pub normalized_query: Option<String>,
    pub request_id: Option<String>,
    pub route: Option<String>,
    /// The caller's file:line.
    pub source: Option<String>,
    /// When it happened (µs; see `http::event_time`); `None`: the receive time `created_at`.
    pub event_time: Option<i64>,
}

impl Row for DatabaseRow {
    const TABLE: &'static str = "database_performance_metrics";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Database(r) => Some(r),
            _ => None,
        }
    }
    numbered!();
}

impl DatabaseRow {
    fn append_with(&self, app: &mut Appender<'_>, seq: Option<i64>) -> duckdb::Result<()> {
        app.append_row(params![
            self.id.hyphenated().to_string(),
            self.query,
            self.duration,
            self.rows,
            self.cached,
            self.user_id.as_deref(),
            self.ip,
            self.timestamp,
            ts(self.created_at),
            self.fingerprint,
            self.normalized_query,
            self.request_id,
            self.route,
            self.source,
            self.event_time(),
            seq,
        ])
    }
}

#[derive(Debug, Clone, Default)]
pub struct EventRow {
    pub id: Uuid,
    /// The app's own user id, as sent.
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub event: String,
    /// A JSON object, already serialised.
    pub properties: Option<String>,
    pub route: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub timestamp: i64,
    pub created_at: i64,
    /// Who counts as one person: the user id, or the cookieless visitor id.
    pub visitor_id: Option<String>,
    pub feature: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    /// pc, smartphone, mobilephone, appliance, crawler or unknown (woothee's categories).
    pub device: Option<String>,
    pub referrer_domain: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    /// When it happened (µs; see `http::event_time`); `None`: the receive time `created_at`.
    pub event_time: Option<i64>,
}

impl Row for EventRow {
    const TABLE: &'static str = "user_events";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Events(r) => Some(r),
            _ => None,
        }
    }
    numbered!();
}

impl EventRow {
    /// `seq` numbers events in commit order; profiles fold in events above a watermark.
    fn append_with(&self, app: &mut Appender<'_>, seq: Option<i64>) -> duckdb::Result<()> {
        app.append_row(params![
            self.id.hyphenated().to_string(),
            self.user_id,
            self.session_id,
            self.event,
            self.properties,
            self.route,
            self.referrer,
            self.user_agent,
            self.ip,
            self.timestamp,
            ts(self.created_at),
            self.visitor_id,
            self.feature,
            self.browser,
            self.os,
            self.device,
            self.referrer_domain,
            self.utm_source,
            self.utm_medium,
            self.utm_campaign,
            seq,
            self.event_time(),
        ])
    }
}

#[derive(Debug, Clone, Default)]
pub struct ConversionRow {
    pub id: Uuid,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub funnel: String,
    pub step: String,
    pub timestamp: i64,
    pub created_at: i64,
    pub properties: Option<String>,
    pub visitor_id: Option<String>,
    /// When it happened (µs; see `http::event_time`); `None`: the receive time `created_at`.
    pub event_time: Option<i64>,
}

impl Row for ConversionRow {
    const TABLE: &'static str = "conversions";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Conversions(r) => Some(r),
            _ => None,
        }
    }
    fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()> {
        app.append_row(params![
            self.id.hyphenated().to_string(),
            self.user_id,
            self.session_id,
            self.funnel,
            self.step,
            self.timestamp,
            ts(self.created_at),
            self.properties,
            self.visitor_id,
            self.event_time(),
        ])
    }
}

/// A JavaScript error from gs.js (`kind = "js"`) or a 5xx this server answered (`"server"`).
#[derive(Debug, Clone, Default)]
pub struct ErrorRow {
    pub id: Uuid,
    pub kind: &'static str,
    pub message: String,
    pub source: Option<String>,
    pub line: Option<i32>,
    pub col: Option<i32>,
    pub stack: Option<String>,
    pub route: Option<String>,
    pub session_id: Option<String>,
    pub user_agent: Option<String>,
    /// Groups one error's occurrences: a hash of kind, message, source and line.
    pub fingerprint: String,
    /// The HTTP status of a server error.
    pub status: Option<i16>,
    pub timestamp: i64,
    pub created_at: i64,
}

impl Row for ErrorRow {
    const TABLE: &'static str = "app_errors";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Errors(r) => Some(r),
            _ => None,
        }
    }
    fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()> {
        app.append_row(params![
            self.id.hyphenated().to_string(),
            self.kind,
            self.message,
            self.source,
            self.line,
            self.col,
            self.stack,
            self.route,
            self.session_id,
            self.user_agent,
            self.fingerprint,
            self.status,
            self.timestamp,
            ts(self.created_at),
        ])
    }
}

/// One load sample of an instance: this host (sampler) or one of the user's app instances.
#[derive(Debug, Clone, Default)]
pub struct SystemRow {
    pub instance: String,
    /// `host` (our sampler) or `app` (reported).
    pub source: &'static str,
    /// When the sample was taken, microseconds since the epoch.
    pub ts: i64,
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub requests_per_second: Option<f64>,
    pub p95_latency: Option<f64>,
    pub connections: Option<i32>,
    pub error_rate: Option<f64>,
    pub load1: Option<f64>,
    pub load5: Option<f64>,
    pub load15: Option<f64>,
    pub memory_used: Option<i64>,
    pub memory_available: Option<i64>,
    pub memory_limit: Option<i64>,
    pub disk_free: Option<i64>,
    pub disk_total: Option<i64>,
    pub net_rx_bytes: Option<i64>,
    pub net_tx_bytes: Option<i64>,
    pub process_rss: Option<i64>,
    pub process_cpu: Option<f64>,
    pub process_threads: Option<i32>,
    pub created_at: i64,
}

impl Row for SystemRow {
    const TABLE: &'static str = "system_metrics";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::System(r) => Some(r),
            _ => None,
        }
    }
    fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()> {
        app.append_row(params![
            self.instance,
            self.source,
            ts(self.ts),
            self.cpu,
            self.memory,
            self.requests_per_second,
            self.p95_latency,
            self.connections,
            self.error_rate,
            self.load1,
            self.load5,
            self.load15,
            self.memory_used,
            self.memory_available,
            self.memory_limit,
            self.disk_free,
            self.disk_total,
            self.net_rx_bytes,
            self.net_tx_bytes,
            self.process_rss,
            self.process_cpu,
            self.process_threads,
            ts(self.created_at),
        ])
    }
}

/// One scaling recommendation, kept for the stabilisation window and the history chart.
#[derive(Debug, Clone, Default)]
pub struct RecommendationRow {
    pub created_at: i64,
    pub fleet: &'static str,
    pub current_instances: i32,
    pub raw_desired: i32,
    pub desired_instances: i32,
    pub metric: Option<&'static str>,
    pub value: Option<f64>,
    pub target: Option<f64>,
    pub urgency: &'static str,
    pub reason: String,
}

impl Row for RecommendationRow {
    const TABLE: &'static str = "scaling_recommendations";
    fn rows(batch: &Batch) -> Option<&[Self]> {
        match batch {
            Batch::Recommendations(r) => Some(r),
            _ => None,
        }
    }
    fn append(&self, app: &mut Appender<'_>) -> duckdb::Result<()> {
        app.append_row(params![
            ts(self.created_at),
            self.fleet,
            self.current_instances,
            self.raw_desired,
            self.desired_instances,
            self.metric,
            self.value,
            self.target,
            self.urgency,
            self.reason,
        ])
    }
}
