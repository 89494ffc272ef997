//! Settings: one `Config`, layered defaults < TOML file < environment < flags.
//!
//! Each setting is declared once, in a `section!` below: name, Rust type, default and help
//! text on one line. The macro (`config/registry.rs`) makes the struct field and its
//! registry entry from that line, and the registry gives everything else: the environment
//! variable (`GROWTH_<SECTION>_<KEY>`, `server.*` without its section), how an environment
//! string is read (from the field's type), `growth-stack config --keys` and README's table
//! (a test keeps README equal to `config --keys --markdown`). So there is no second list to
//! keep in step, and a key that no code reads is easy to spot (a test looks for readers).
//!
//! A capability adds its settings as one `section!` plus one line in `sections!`.

mod alerts;
mod registry;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use alerts::{
    parse_duration, AlertChannelConfig, AlertChannelKind, AlertsConfig, Secs, DURATION_UNITS,
};
use registry::{section, sections, Kind, Setting};
pub use registry::{Field, Key};

/// The file read from the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "growth-stack.toml";

sections! {
    server: ServerConfig,
    storage: StorageConfig,
    ingest: IngestConfig,
    privacy: PrivacyConfig,
    performance: PerformanceConfig,
    ai: AiConfig,
    database: DatabaseConfig,
    analytics: AnalyticsConfig,
    alerts: AlertsConfig,
    scalability: ScalabilityConfig,
    retention: RetentionConfig,
    backup: BackupConfig,
    clickhouse: ClickHouseConfig,
}

section! {
    /// `[server]`: where it listens, where it keeps its files, who may read.
    pub struct ServerConfig {
        listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080))
            => "address and port to listen on; port 0 picks a free one (--listen)";
        data_dir: PathBuf = PathBuf::from("./data")
            => "folder holding growth.duckdb, admin_token, gateway_key and ip_salt (--data-dir)";
        #[serde(skip_serializing_if = "Option::is_none")]
        admin_token: Option<String> = None
            => "token for reads and admin routes, at least 16 characters; generated on first start when unset (--admin-token)";
        no_auth: bool = false
            => "serve reads without a token; refused unless listening on loopback (--no-auth)";
        log_format: LogFormat = LogFormat::Text
            => "text or json, one line per request; the level comes from RUST_LOG (--log-format)";
        trust_proxy: bool = false
            => "take the client IP from X-Forwarded-For, only behind your own proxy (--trust-proxy)";
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Setting for LogFormat {
    const KIND: Kind = Kind::Str;
}

section! {
    /// `[storage]`: DuckDB and the group-commit writer.
    pub struct StorageConfig {
        engine: Engine = Engine::Duckdb
            => "where events and conversions live: duckdb (one file, one node) or clickhouse (many nodes on one ClickHouse cluster, see [clickhouse])";
        memory_limit: String = "512MB".into()
            => "DuckDB memory limit, e.g. 512MB or 2GB";
        threads: u32 = 2
            => "DuckDB worker threads";
        queue_rows: usize = 200_000
            => "rows allowed to wait for the writer before ingest answers 503";
        max_commit_rows: usize = 50_000
            => "most rows in one group commit";
        read_connections: usize = 4
            => "parallel read connections for queries";
        wal_checkpoint: String = "64MB".into()
            => "WAL size that triggers a checkpoint; larger is faster under load and slower to replay after a crash (about 0.8 s per 100 MB)";
        min_free_space: String = "100MB".into()
            => "free disk space kept in reserve: below it ingest answers 503 with Retry-After (nothing is half-written) and resumes by itself when space is back; 0 turns the check off";
    }
}

/// Where the event streams are stored and read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The embedded DuckDB file: one node.
    #[default]
    Duckdb,
    /// A ClickHouse server or cluster: any number of nodes.
    Clickhouse,
}

impl Setting for Engine {
    const KIND: Kind = Kind::Str;
}

section! {
    /// `[clickhouse]`: the cluster behind `storage.engine = "clickhouse"`.
    pub struct ClickHouseConfig {
        url: Vec<String> = vec!["http://127.0.0.1:8123".into()]
            => "HTTP interface of the ClickHouse servers to talk to, tried in order (fail-over)";
        database: String = "growth".into()
            => "database holding growth-stack's tables; created when missing";
        user: String = "default".into()
            => "ClickHouse user";
        #[serde(skip_serializing_if = "Option::is_none")]
        password: Option<String> = None
            => "ClickHouse password";
        #[serde(skip_serializing_if = "Option::is_none")]
        cluster: Option<String> = None
            => "cluster name from remote_servers: local tables under Distributed tables sharded by visitor, created ON CLUSTER when the servers have ZooKeeper, else on every server of clickhouse.url; unset: plain tables";
        gzip: bool = false
            => "gzip the INSERT bodies sent to ClickHouse: less network, more CPU on the node";
        replicated: bool = false
            => "with a cluster: ReplicatedMergeTree local tables (needs ZooKeeper and the {shard} and {replica} macros on every server)";
    }
}

section! {
    /// `[retention]`: how many days of each stream are kept; 0 keeps everything. Applied
    /// at start-up and then daily, in small batches that do not stall ingest.
    pub struct RetentionConfig {
        events_days: u32 = 0
            => "days of product events (user_events) kept; 0 keeps everything";
        performance_days: u32 = 0
            => "days of raw web-vitals reports kept; the daily roll-up keeps its own (rollup_days)";
        ai_days: u32 = 0
            => "days of AI-call metrics kept";
        database_days: u32 = 0
            => "days of query timings kept";
        conversions_days: u32 = 0
            => "days of conversions kept";
        errors_days: u32 = 0
            => "days of JavaScript and server errors kept";
        system_days: u32 = 0
            => "days of host and app load samples kept";
        recommendations_days: u32 = 0
            => "days of recorded scaling recommendations kept";
        rollup_days: u32 = 0
            => "days of the daily roll-ups (web vitals, active people, growth events and people, AI call and query durations) kept, so old trends stay visible after raw rows go; 0 keeps everything";
        batch_rows: u32 = 50_000
            => "rows deleted per transaction while pruning (smaller stalls ingest less)";
    }
}

section! {
    /// `[backup]`: online snapshots of the database (`POST /api/admin/backup`).
    pub struct BackupConfig {
        #[serde(skip_serializing_if = "Option::is_none")]
        dir: Option<PathBuf> = None
            => "folder that holds one sub-folder per backup; default <data_dir>/backups";
        interval_hours: u32 = 0
            => "hours between scheduled backups; 0 turns them off";
        keep: u32 = 7
            => "scheduled backups kept; older ones are deleted (backups taken by hand are kept)";
    }
}

section! {
    /// `[ingest]`: who may send data, and how much.
    pub struct IngestConfig {
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String> = None
            => "when set, ingest calls must send it as the X-Growth-Key header or ?key= (--ingest-key)";
        cors_origins: Vec<String> = vec!["*".into()]
            => "browser origins allowed to send ingest calls; * allows any (--cors-origin, repeatable)";
        body_limit: usize = 1024 * 1024
            => "largest request body in bytes";
        max_batch: usize = 1000
            => "most items in one ingest call";
        rate_limit_per_ip: u32 = 300
            => "ingest requests per second per client IP; 0 turns it off (--rate-limit)";
        rate_limit_burst: u32 = 0
            => "requests allowed at once above the rate; 0 means twice the rate";
    }
}

section! {
    /// `[privacy]`: what is kept of a visitor.
    pub struct PrivacyConfig {
        ip: IpMode = IpMode::Truncate
            => "how client IPs are stored: truncate (IPv4 /24, IPv6 /48), hash (keyed, stable), full or none (--ip)";
    }
}

/// How client IP addresses are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    /// IPv4 to its /24, IPv6 to its /48.
    #[default]
    Truncate,
    /// A keyed hash: stable per address, not reversible without the data dir's salt.
    Hash,
    Full,
    None,
}

impl Setting for IpMode {
    const KIND: Kind = Kind::Str;
}

section! {
    /// `[performance]`: the guide's `performanceConfig` (written into `/gs.js` as served,
    /// see `web.rs`) and how web vitals are read.
    pub struct PerformanceConfig {
        batch_size: u32 = 10
            => "gs.js: items in one beacon, sent as soon as that many are queued; a tag's data-batch-size overrides it";
        flush_interval: u64 = 5000
            => "gs.js: milliseconds a queued item waits at most (hiding the page sends at once); a tag's data-flush-interval overrides it";
        enable_web_vitals: bool = true
            => "gs.js: measure the Core Web Vitals LCP, INP, CLS and FID; a tag's data-web-vitals=\"false\" turns them off";
        enable_custom_metrics: bool = true
            => "gs.js: measure the further timings FCP and TTFB; a tag's data-custom-metrics=\"false\" turns them off";
        exact_max_samples: u64 = 100_000
            => "vitals reads over more samples use the roll-up (percentiles within 2%)";
        rollup_interval: u64 = 300
            => "seconds between roll-ups of ended hours of web vitals";
    }
}

section! {
    /// `[ai]`: the AI gateway: its cache, limits, providers and prices.
    pub struct AiConfig {
        cache_enabled: bool = true
            => "AI gateway response cache";
        default_ttl: u64 = 3600
            => "AI cache TTL in seconds";
        max_cache_size: usize = 1000
            => "AI cache entries";
        cache_max_bytes: String = "64MB".into()
            => "AI cache size budget, e.g. 64MB";
        rate_limit_per_minute: u32 = 100
            => "AI calls per user (the user field, metadata.user_id or x-growth-user-id) per minute; 0 turns it off";
        key_rate_limit_per_minute: u32 = 0
            => "AI calls per gateway key per minute; 0 turns it off";
        global_rate_limit_per_minute: u32 = 0
            => "AI calls per minute in total; 0 turns it off";
        tokens_per_minute: u32 = 0
            => "AI tokens per user per minute, estimated before the call and corrected after; 0 turns it off";
        #[serde(skip_serializing_if = "Vec::is_empty")]
        gateway_keys: Vec<String> = Vec::new()
            => "keys apps send to the AI gateway (Authorization: Bearer or x-api-key); generated when empty", env "GROWTH_GATEWAY_KEYS";
        #[serde(skip_serializing_if = "Option::is_none")]
        openai_api_key: Option<String> = None
            => "OpenAI key", env "OPENAI_API_KEY";
        #[serde(skip_serializing_if = "Option::is_none")]
        openai_base_url: Option<String> = None
            => "OpenAI-compatible base URL; https://api.openai.com/v1 when only the key is set", env "OPENAI_BASE_URL";
        #[serde(skip_serializing_if = "Option::is_none")]
        anthropic_api_key: Option<String> = None
            => "Anthropic key", env "ANTHROPIC_API_KEY";
        #[serde(skip_serializing_if = "Option::is_none")]
        anthropic_base_url: Option<String> = None
            => "Anthropic base URL; https://api.anthropic.com when only the key is set", env "ANTHROPIC_BASE_URL";
        providers: Vec<AiProviderConfig> = Vec::new()
            => "OpenAI- or Anthropic-compatible servers (Ollama, vLLM, llama.cpp, ...), one [[ai.providers]] table each: name, base_url, api_key, models, api";
        fallback_models: Vec<String> = Vec::new()
            => "models tried in order when the requested one keeps failing (429/5xx/timeouts)";
        connect_timeout: u64 = 5_000
            => "upstream connect timeout in milliseconds";
        first_byte_timeout: u64 = 120_000
            => "milliseconds until the upstream's response headers";
        request_timeout: u64 = 600_000
            => "milliseconds for a whole upstream call, stream included";
        max_retries: u32 = 2
            => "upstream retries on 429/5xx/timeouts, with backoff and jitter";
        normalize_whitespace: bool = false
            => "collapse runs of whitespace in prompts before caching and sending (reports the tokens saved)";
        prices: BTreeMap<String, AiPrice> = BTreeMap::new()
            => "USD per million tokens by model name or name prefix: [ai.prices] \"model\" = { input = 0.15, output = 0.6 }";
    }
}

/// One OpenAI-compatible (or Anthropic-compatible) upstream server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiProviderConfig {
    pub name: String,
    /// e.g. `http://127.0.0.1:11434/v1` for Ollama.
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Model names it serves; a trailing `*` matches a prefix.
    #[serde(default)]
    pub models: Vec<String>,
    /// `openai` (default) or `anthropic`: which wire format it speaks.
    #[serde(default)]
    pub api: AiApi,
}

impl Setting for Vec<AiProviderConfig> {
    const KIND: Kind = Kind::Table;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AiApi {
    #[default]
    Openai,
    Anthropic,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiPrice {
    pub input: f64,
    pub output: f64,
}

impl Setting for BTreeMap<String, AiPrice> {
    const KIND: Kind = Kind::Table;
}

section! {
    /// `[database]`: query monitoring of the app's own database.
    pub struct DatabaseConfig {
        slow_query_threshold: f64 = 1000.0
            => "milliseconds above which a query is slow";
        store_literals: bool = true
            => "keep reported query texts as sent; false stores the fingerprint's text, literals replaced by $n";
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String> = None
            => "your PostgreSQL, e.g. postgres://reader:pw@127.0.0.1/app (a read-only role is enough): pg_stat_statements, index advice and POST /api/db/select";
        pool_size: u32 = 4
            => "connections to database.url at most (1 to 64)";
        enable_cache: bool = true
            => "cache POST /api/db/select answers in memory";
        default_ttl: u64 = 300
            => "seconds a cached select answer lives when the call gives no ttl (1 to 86400)";
        max_cache_size: usize = 1000
            => "select answers the cache holds at most, least recently used dropped first";
        poll_interval: u64 = 60
            => "seconds between reads of pg_stat_statements and the catalog; 0 turns polling off";
    }
}

section! {
    /// `[analytics]`: product analytics.
    pub struct AnalyticsConfig {
        features: Vec<String> = Vec::new()
            => "events that count as feature use: event=feature, or event (the feature named after it); an event's own feature property wins";
    }
}

section! {
    /// `[scalability]`: host sampling and scaling recommendations; the guide's
    /// `scalabilityConfig.autoScaling` keys, with the Kubernetes HPA's tolerance and
    /// scale-down stabilisation window beside them.
    pub struct ScalabilityConfig {
        enabled: bool = true
            => "produce scaling recommendations (the samples are kept either way)";
        min_instances: u32 = 1
            => "fewest instances to recommend";
        max_instances: u32 = 10
            => "most instances to recommend";
        target_cpu: f64 = 70.0
            => "CPU percent to aim for: desired = ceil(current x cpu / target_cpu)";
        scale_up_threshold: f64 = 80.0
            => "CPU percent above which adding instances is urgent";
        scale_down_threshold: f64 = 30.0
            => "CPU percent below which the fleet is over-provisioned";
        target_memory: f64 = 80.0
            => "memory percent to aim for; 0 leaves memory out";
        tolerance: f64 = 0.1
            => "relative distance from a target within which nothing changes";
        stabilization_window: u64 = 300
            => "seconds (up to 86400); a scale-down takes the highest recommendation of this window";
        forecast_hours: u32 = 6
            => "hours ahead the load forecast looks for a peak (1 to 168)";
        sample_interval: u64 = 15
            => "seconds between samples of this host and between recorded recommendations (up to 3600); 0 turns the host sampler off";
        stale_after: u64 = 60
            => "seconds without a sample after which an instance no longer counts as running (1 to 86400)";
    }
}

/// Every setting, in declaration order.
pub fn keys() -> impl Iterator<Item = Key> {
    SECTIONS
        .iter()
        .flat_map(|&(section, section_type, fields)| {
            fields.iter().map(move |field| Key {
                section,
                section_type,
                field,
            })
        })
}

/// `growth-stack config --keys`: every setting with its variables, default and help,
/// aligned for a terminal or (`markdown`) as README's table.
pub fn keys_table(markdown: bool) -> String {
    let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Boolean(false));
    let rows: Vec<[String; 4]> = keys()
        .map(|k| {
            let path = k.path();
            let env = match (k.env_name(), k.field.alias) {
                (None, _) => "file only".to_string(),
                (Some(env), None) => env,
                (Some(env), Some(alias)) => format!("{env}, {alias}"),
            };
            let default = path.split('.').try_fold(&defaults, |v, part| v.get(part));
            [
                path,
                env,
                registry::show_default(default),
                k.field.help.to_string(),
            ]
        })
        .collect();
    let mut out = String::new();
    if markdown {
        let code = |s: &str| {
            s.split(", ")
                .map(|p| {
                    if p == "file only" {
                        p.to_string()
                    } else {
                        format!("`{p}`")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str("| key | environment | default | meaning |\n|---|---|---|---|\n");
        for [path, env, default, help] in &rows {
            let default = format!("`{default}`");
            out.push_str(&format!(
                "| `{path}` | {} | {default} | {help} |\n",
                code(env)
            ));
        }
    } else {
        let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
        let (w0, w1, w2) = (width(0), width(1), width(2));
        for [path, env, default, help] in &rows {
            out.push_str(&format!(
                "{path:<w0$}  {env:<w1$}  {default:<w2$}  {help}\n"
            ));
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Where each layer comes from; `env` is a function so tests need not touch the process.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub flags: Vec<(&'static str, toml::Value)>,
}

impl Config {
    pub fn load(src: Sources<'_>) -> Result<Config, ConfigError> {
        let config = Self::from_table(merge(src)?)?;
        config.validate()?;
        Ok(config)
    }

    fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            invalid(&key, e.into_inner().to_string())
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        parse_bytes(&self.ai.cache_max_bytes)
            .ok_or_else(|| invalid("ai.cache_max_bytes", "expected a size such as 64MB"))?;
        if self.storage.min_free_space.trim() != "0"
            && parse_bytes(&self.storage.min_free_space).is_none()
        {
            return Err(invalid(
                "storage.min_free_space",
                "expected a size such as 100MB, or 0",
            ));
        }
        for (i, p) in self.ai.providers.iter().enumerate() {
            if p.name.trim().is_empty() || p.name.contains('/') {
                return Err(invalid(
                    &format!("ai.providers[{i}].name"),
                    "must be non-empty without '/'",
                ));
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                return Err(invalid(
                    &format!("ai.providers[{i}].base_url"),
                    format!(
                        "{:?} is not a URL like http://127.0.0.1:11434/v1",
                        p.base_url
                    ),
                ));
            }
        }
        for (key, url) in [
            ("ai.openai_base_url", &self.ai.openai_base_url),
            ("ai.anthropic_base_url", &self.ai.anthropic_base_url),
        ] {
            if let Some(u) = url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(invalid(key, format!("{u:?} is not an http(s) URL")));
                }
            }
        }
        for k in &self.ai.gateway_keys {
            if k.len() < 16 || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(
                    "ai.gateway_keys",
                    "each key must be at least 16 characters with no spaces",
                ));
            }
        }
        parse_bytes(&self.storage.memory_limit).ok_or_else(|| {
            invalid(
                "storage.memory_limit",
                "expected a size such as 512MB or 2GB",
            )
        })?;
        let positive = [
            ("storage.threads", self.storage.threads as usize),
            ("storage.queue_rows", self.storage.queue_rows),
            ("storage.max_commit_rows", self.storage.max_commit_rows),
            ("storage.read_connections", self.storage.read_connections),
            ("ingest.body_limit", self.ingest.body_limit),
            ("ingest.max_batch", self.ingest.max_batch),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if self.ingest.max_batch > self.storage.queue_rows {
            return Err(invalid(
                "ingest.max_batch",
                "must not exceed storage.queue_rows",
            ));
        }
        for (key, token) in [
            ("server.admin_token", &self.server.admin_token),
            ("ingest.key", &self.ingest.key),
        ] {
            if let Some(t) = token {
                if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(invalid(
                        key,
                        "must be at least 16 characters with no spaces",
                    ));
                }
            }
        }
        if self.ingest.cors_origins.is_empty() {
            return Err(invalid(
                "ingest.cors_origins",
                "list at least one origin, or \"*\"",
            ));
        }
        for origin in &self.ingest.cors_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(
                    "ingest.cors_origins",
                    format!("{origin:?} is not an origin like https://example.com"),
                ));
            }
        }
        if !self.database.slow_query_threshold.is_finite()
            || self.database.slow_query_threshold < 0.0
        {
            return Err(invalid(
                "database.slow_query_threshold",
                "must be a number >= 0",
            ));
        }
        let d = &self.database;
        if !(1..=64).contains(&d.pool_size) {
            return Err(invalid("database.pool_size", "must be between 1 and 64"));
        }
        if !(1..=86_400).contains(&d.default_ttl) {
            return Err(invalid(
                "database.default_ttl",
                "must be between 1 and 86400",
            ));
        }
        if let Some(url) = &d.url {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.contains('='))
            {
                return Err(invalid(
                    "database.url",
                    "must be a postgres:// URL or a key=value connection string",
                ));
            }
        }
        self.validate_scalability()?;
        let p = &self.performance;
        if p.batch_size == 0 || p.batch_size as usize > self.ingest.max_batch {
            return Err(invalid(
                "performance.batch_size",
                "must be between 1 and ingest.max_batch",
            ));
        }
        if p.flush_interval == 0 {
            return Err(invalid(
                "performance.flush_interval",
                "must be greater than 0",
            ));
        }
        self.alerts.check().map_err(|(key, m)| invalid(&key, m))?;
        if self.server.no_auth && !self.server.listen.ip().is_loopback() {
            return Err(invalid(
                "server.no_auth",
                format!(
                    "refused: {} is not a loopback address, so the data would be open to the network",
                    self.server.listen
                ),
            ));
        }
        Ok(())
    }

    fn validate_scalability(&self) -> Result<(), ConfigError> {
        let a = &self.scalability;
        for (key, v) in [
            ("scalability.target_cpu", a.target_cpu),
            ("scalability.scale_up_threshold", a.scale_up_threshold),
            ("scalability.scale_down_threshold", a.scale_down_threshold),
        ] {
            if v.is_nan() || v <= 0.0 || v > 100.0 {
                return Err(invalid(key, "must be a percentage above 0 and at most 100"));
            }
        }
        if !(0.0..=100.0).contains(&a.target_memory) {
            return Err(invalid(
                "scalability.target_memory",
                "must be a percentage from 0 to 100 (0 leaves memory out)",
            ));
        }
        if a.scale_down_threshold >= a.scale_up_threshold {
            return Err(invalid(
                "scalability.scale_down_threshold",
                "must be below scalability.scale_up_threshold",
            ));
        }
        if !(0.0..1.0).contains(&a.tolerance) {
            return Err(invalid(
                "scalability.tolerance",
                "must be at least 0 and below 1",
            ));
        }
        if a.min_instances == 0 {
            return Err(invalid("scalability.min_instances", "must be at least 1"));
        }
        if a.max_instances < a.min_instances {
            return Err(invalid(
                "scalability.max_instances",
                "must be at least scalability.min_instances",
            ));
        }
        if !(1..=168).contains(&a.forecast_hours) {
            return Err(invalid(
                "scalability.forecast_hours",
                "must be between 1 and 168",
            ));
        }
        // Bounded so the windows stay inside DuckDB's timestamps and tokio's timers.
        for (key, v, min, max) in [
            ("scalability.stale_after", a.stale_after, 1, 86_400),
            (
                "scalability.stabilization_window",
                a.stabilization_window,
                0,
                86_400,
            ),
            ("scalability.sample_interval", a.sample_interval, 0, 3_600),
        ] {
            if !(min..=max).contains(&v) {
                return Err(invalid(
                    key,
                    format!("must be between {min} and {max} seconds"),
                ));
            }
        }
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.server.data_dir.join("growth.duckdb")
    }

    /// The effective settings as TOML, secrets masked.
    pub fn to_toml_masked(&self) -> String {
        let mut c = self.clone();
        let provider_keys = c.ai.providers.iter_mut().map(|p| &mut p.api_key);
        for secret in [
            &mut c.server.admin_token,
            &mut c.ingest.key,
            &mut c.database.url,
            &mut c.ai.openai_api_key,
            &mut c.ai.anthropic_api_key,
        ]
        .into_iter()
        .chain(provider_keys)
        {
            if secret.is_some() {
                *secret = Some("********".into());
            }
        }
        for k in &mut c.ai.gateway_keys {
            *k = "********".into();
        }
        c.alerts.mask();
        toml::to_string_pretty(&c).unwrap_or_default()
    }
}

fn merge(src: Sources<'_>) -> Result<toml::Table, ConfigError> {
    let mut table = match src.file {
        Some(path) => read_file(path)?,
        None if Path::new(DEFAULT_FILE).exists() => read_file(Path::new(DEFAULT_FILE))?,
        None => toml::Table::new(),
    };
    for key in keys() {
        let Some(name) = key.env_name() else { continue };
        // An empty variable counts as unset, as shells make it easy to leave one behind.
        let set = |name: &str| (src.env)(name).filter(|v| !v.trim().is_empty());
        // The names the SDKs read are honoured below the GROWTH_* ones.
        let found = set(&name)
            .map(|raw| (name.as_str(), raw))
            .or_else(|| key.field.alias.and_then(|a| set(a).map(|raw| (a, raw))));
        if let Some((name, raw)) = found {
            let path = key.path();
            let value = registry::parse_env(key.field.kind, &raw)
                .map_err(|m| invalid(&path, format!("{name}: {m}")))?;
            set_path(&mut table, &path, value);
        }
    }
    for (path, value) in src.flags {
        set_path(&mut table, path, value);
    }
    Ok(table)
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut cur = table;
    for part in parts {
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(t) = entry else { return };
        cur = t;
    }
    cur.insert(last.to_string(), value);
}

/// "512MB" -> bytes; accepts KB/MB/GB/TB (and KiB/MiB/GiB/TiB) with an optional space.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" => 1 << 10,
        "MB" | "MIB" => 1 << 20,
        "GB" | "GIB" => 1 << 30,
        "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&b| b > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(
        file: Option<&Path>,
        env: &[(&str, &str)],
        flags: Vec<(&'static str, toml::Value)>,
    ) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(Sources {
            file,
            env: &|k| env.get(k).cloned(),
            flags,
        })
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn layers_rise_in_priority() {
        let f = file(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[ai]\ndefault_ttl = 10\nmax_cache_size = 5\n",
        );
        let c = load(
            Some(f.path()),
            &[
                ("GROWTH_AI_DEFAULT_TTL", "20"),
                ("GROWTH_LISTEN", "127.0.0.1:9100"),
            ],
            vec![(
                "server.listen",
                toml::Value::String("127.0.0.1:9200".into()),
            )],
        )
        .unwrap();
        assert_eq!(c.ai.max_cache_size, 5, "file beats default");
        assert_eq!(c.ai.default_ttl, 20, "env beats file");
        assert_eq!(c.server.listen.port(), 9200, "flag beats env");
        assert_eq!(c.database.slow_query_threshold, 1000.0, "default kept");
    }

    #[test]
    fn errors_name_the_key() {
        let f = file("[ai]\ndefault_ttl = \"soon\"\n");
        let e = load(Some(f.path()), &[], vec![]).unwrap_err().to_string();
        assert!(e.contains("ai.default_ttl"), "{e}");

        let f = file("[ai]\ncache_size = 3\n");
        let e = load(Some(f.path()), &[], vec![]).unwrap_err().to_string();
        assert!(e.contains("cache_size"), "{e}");

        let e = load(None, &[("GROWTH_STORAGE_THREADS", "many")], vec![])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("storage.threads") && e.contains("GROWTH_STORAGE_THREADS"),
            "{e}"
        );

        let e = load(None, &[("GROWTH_PRIVACY_IP", "scramble")], vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("privacy.ip"), "{e}");

        let e = load(None, &[("GROWTH_STORAGE_MEMORY_LIMIT", "lots")], vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.memory_limit"), "{e}");
    }

    #[test]
    fn no_auth_only_on_loopback() {
        let flags = |listen: &str| {
            vec![
                ("server.no_auth", toml::Value::Boolean(true)),
                ("server.listen", toml::Value::String(listen.into())),
            ]
        };
        assert!(load(None, &[], flags("127.0.0.1:8080")).is_ok());
        let e = load(None, &[], flags("0.0.0.0:8080"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.no_auth"), "{e}");
    }

    #[test]
    fn scalability_settings_are_checked() {
        let c = load(None, &[("GROWTH_SCALABILITY_TARGET_CPU", "60")], vec![]).unwrap();
        assert_eq!(c.scalability.target_cpu, 60.0);
        for (var, value) in [
            ("GROWTH_SCALABILITY_SCALE_DOWN_THRESHOLD", "90"),
            ("GROWTH_SCALABILITY_TARGET_CPU", "0"),
            ("GROWTH_SCALABILITY_TOLERANCE", "1"),
            ("GROWTH_SCALABILITY_MIN_INSTANCES", "0"),
            ("GROWTH_SCALABILITY_MAX_INSTANCES", "0"),
            ("GROWTH_SCALABILITY_FORECAST_HOURS", "200"),
            ("GROWTH_SCALABILITY_STALE_AFTER", "0"),
            ("GROWTH_SCALABILITY_SAMPLE_INTERVAL", "86400"),
        ] {
            let e = load(None, &[(var, value)], vec![]).unwrap_err().to_string();
            let key = var
                .trim_start_matches("GROWTH_SCALABILITY_")
                .to_ascii_lowercase();
            assert!(e.contains(&format!("scalability.{key}")), "{var}: {e}");
        }
    }

    #[test]
    fn env_lists_split_on_commas() {
        let c = load(
            None,
            &[(
                "GROWTH_INGEST_CORS_ORIGINS",
                "https://a.example, https://b.example",
            )],
            vec![],
        )
        .unwrap();
        assert_eq!(
            c.ingest.cors_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn every_variable_lands_in_its_field() {
        for key in keys() {
            let Some(name) = key.env_name() else {
                assert_eq!(key.field.kind, Kind::Table, "{}", key.path());
                continue;
            };
            let path = key.path();
            let value = match key.field.kind {
                Kind::Str => match path.as_str() {
                    "server.listen" => "127.0.0.1:1",
                    "server.log_format" => "json",
                    "privacy.ip" => "hash",
                    "storage.engine" => "clickhouse",
                    "ai.cache_max_bytes" => "64MB",
                    "ai.openai_base_url" | "ai.anthropic_base_url" => "http://127.0.0.1:1",
                    p if p.starts_with("alerts.") => "http://127.0.0.1:2",
                    _ => "abcdefghijklmnopqrstuvwxyz",
                },
                Kind::Int | Kind::Duration => "7",
                Kind::Float => "5",
                Kind::Bool => "false",
                Kind::List => "https://x.example",
                Kind::Table => unreachable!(),
            };
            let table = merge(Sources {
                file: None,
                env: &|k| (k == name).then(|| value.to_string()),
                flags: vec![],
            })
            .unwrap();
            let config = Config::from_table(table).unwrap_or_else(|e| panic!("{path}: {e}"));
            let back = toml::Value::try_from(&config).unwrap();
            let found = path.split('.').try_fold(&back, |v, part| v.get(part));
            let expected = registry::parse_env(key.field.kind, value).unwrap();
            assert_eq!(found, Some(&expected), "{path}");
        }
    }

    #[test]
    fn variable_names_keep_their_shape() {
        let names: Vec<String> = keys().filter_map(|k| k.env_name()).collect();
        for name in [
            "GROWTH_LISTEN",
            "GROWTH_DATA_DIR",
            "GROWTH_STORAGE_QUEUE_ROWS",
            "GROWTH_AI_DEFAULT_TTL",
            "GROWTH_PERFORMANCE_BATCH_SIZE",
            "GROWTH_DATABASE_SLOW_QUERY_THRESHOLD",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing");
        }
        let paths: Vec<String> = keys().map(|k| k.path()).collect();
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), paths.len(), "a key declared twice");
    }

    #[test]
    fn readme_lists_every_key() {
        // README's table is `growth-stack config --keys --markdown`, pasted.
        let readme = include_str!("../README.md");
        let table = keys_table(true);
        assert!(
            readme.contains(&table),
            "README's configuration table is stale; paste `growth-stack config --keys --markdown`:\n{table}"
        );
    }

    /// A key no code reads is a promise the binary does not keep. Readers are found by
    /// name: `.section.field` in a file, or `.section` (or the section's type) and `.field`
    /// in the same file (for `let cfg = &config.ingest; cfg.max_batch`). A name-based check, so it can be fooled
    /// by an unrelated `.field`; it still catches the common case of a key added and forgotten.
    #[test]
    fn every_key_is_read_by_code() {
        fn sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path, text));
                }
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        files.retain(|(path, _)| {
            !path.starts_with(root.join("src/config")) && !path.ends_with("config.rs")
        });
        let mentions = |text: &str, word: &str| {
            text.match_indices(word).any(|(i, _)| {
                !text[i + word.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        };
        for key in keys() {
            let (section, field) = (format!(".{}", key.section), format!(".{}", key.field.name));
            let read = files.iter().any(|(_, text)| {
                mentions(text, &format!("{section}{field}"))
                    || ((mentions(text, &section) || mentions(text, key.section_type))
                        && mentions(text, &field))
            });
            assert!(read, "no code reads {}", key.path());
        }
    }

    #[test]
    fn sdk_env_names_are_read_below_growth_ones() {
        let c = load(
            None,
            &[
                ("OPENAI_API_KEY", "sk-from-openai-env"),
                ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
                (
                    "GROWTH_GATEWAY_KEYS",
                    "gw-key-aaaaaaaaaaaa,gw-key-bbbbbbbbbbbb",
                ),
                ("GROWTH_AI_ANTHROPIC_BASE_URL", "http://127.0.0.1:10"),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(c.ai.openai_api_key.as_deref(), Some("sk-from-openai-env"));
        assert_eq!(
            c.ai.anthropic_base_url.as_deref(),
            Some("http://127.0.0.1:10")
        );
        assert_eq!(c.ai.gateway_keys.len(), 2);
        let shown = c.to_toml_masked();
        assert!(
            !shown.contains("sk-from-openai-env") && !shown.contains("gw-key-"),
            "{shown}"
        );
    }

    #[test]
    fn alert_durations_in_file_and_env() {
        let f = file("[alerts]\ngroup_wait = \"1m\"\nrepeat_interval = 60\n");
        let c = load(
            Some(f.path()),
            &[
                ("GROWTH_ALERTS_INTERVAL", "5s"),
                ("GROWTH_ALERTS_DEFAULT_FOR", "0"),
                ("GROWTH_ALERTS_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(c.alerts.group_wait, Secs(60));
        assert_eq!(c.alerts.repeat_interval, Secs(60));
        assert_eq!(c.alerts.interval, Secs(5));
        assert_eq!(c.alerts.default_for, Secs(0));
        assert!(
            !c.to_toml_masked().contains("127.0.0.1:9"),
            "receiver URLs are secrets"
        );
        for (name, value) in [
            ("GROWTH_ALERTS_INTERVAL", "soon"),
            ("GROWTH_ALERTS_INTERVAL", "0"),
            ("GROWTH_ALERTS_GROUP_WAIT", "-5"),
            ("GROWTH_ALERTS_WEBHOOK_URL", "ftp://x"),
        ] {
            let e = load(None, &[(name, value)], vec![])
                .unwrap_err()
                .to_string();
            let key = name.trim_start_matches("GROWTH_").to_ascii_lowercase();
            let key = key.replacen('_', ".", 1);
            assert!(e.contains(&key), "{name}={value}: {e}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("512MB"), Some(512 << 20));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("MB"), None);
        assert_eq!(parse_bytes("0MB"), None);
    }
}
