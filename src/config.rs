//! Settings: one `Config`, layered defaults < TOML file < environment < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file read from the working directory when no `--config` is given.
pub const DEFAULT_FILE: &str = "growth-stack.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub ingest: IngestConfig,
    pub privacy: PrivacyConfig,
    pub performance: PerformanceConfig,
    pub ai: AiConfig,
    pub database: DatabaseConfig,
    pub scalability: ScalabilityConfig,
    pub analytics: AnalyticsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    pub no_auth: bool,
    pub log_format: LogFormat,
    pub trust_proxy: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            admin_token: None,
            no_auth: false,
            log_format: LogFormat::Text,
            trust_proxy: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// DuckDB `max_memory`, e.g. "512MB" or "2GB".
    pub memory_limit: String,
    pub threads: u32,
    /// Rows that may wait for the writer before ingest answers 503.
    pub queue_rows: usize,
    /// Upper bound on rows committed in one group commit.
    pub max_commit_rows: usize,
    pub read_connections: usize,
    /// WAL size that triggers a checkpoint. Larger means fewer checkpoints under load
    /// and a longer replay after a crash (about 0.8 s per 100 MB here).
    pub wal_checkpoint: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            memory_limit: "512MB".into(),
            threads: 2,
            queue_rows: 200_000,
            max_commit_rows: 50_000,
            read_connections: 4,
            wal_checkpoint: "64MB".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// When set, ingest calls must carry it (`X-Growth-Key` header or `?key=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Origins allowed to send ingest calls from a browser; `*` allows any.
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    pub max_batch: usize,
    /// Requests per second per client IP; 0 turns the limit off.
    pub rate_limit_per_ip: u32,
    /// Requests allowed at once above the rate; 0 means twice the rate.
    pub rate_limit_burst: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            key: None,
            cors_origins: vec!["*".into()],
            body_limit: 1024 * 1024,
            max_batch: 1000,
            rate_limit_per_ip: 300,
            rate_limit_burst: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    pub ip: IpMode,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerformanceConfig {
    pub batch_size: u32,
    /// Milliseconds between tracker flushes.
    pub flush_interval: u64,
    pub enable_web_vitals: bool,
    pub enable_custom_metrics: bool,
    /// Reads over more samples than this use the daily roll-up (percentiles within 2%).
    pub exact_max_samples: u64,
    /// Seconds between checks for a finished day to roll up.
    pub rollup_interval: u64,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            flush_interval: 5000,
            enable_web_vitals: true,
            enable_custom_metrics: true,
            exact_max_samples: 100_000,
            rollup_interval: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    pub cache_enabled: bool,
    /// Seconds.
    pub default_ttl: u64,
    pub max_cache_size: usize,
    /// Bytes the cached responses may take together, e.g. "64MB".
    pub cache_max_bytes: String,
    /// Per user (the `user` field, `metadata.user_id` or `x-growth-user-id`); 0 = off.
    pub rate_limit_per_minute: u32,
    /// Per gateway key; 0 = off.
    pub key_rate_limit_per_minute: u32,
    /// All gateway calls together; 0 = off.
    pub global_rate_limit_per_minute: u32,
    /// Estimated before the call, corrected after; per user; 0 = off.
    pub tokens_per_minute: u32,
    /// Keys apps send as `Authorization: Bearer` or `x-api-key`; generated when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateway_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anthropic_base_url: Option<String>,
    /// OpenAI-compatible servers (Ollama, vLLM, llama.cpp, ...), one `[[ai.providers]]` each.
    pub providers: Vec<AiProviderConfig>,
    /// Models tried in order when the requested one keeps failing (429/5xx/timeouts).
    pub fallback_models: Vec<String>,
    /// Milliseconds.
    pub connect_timeout: u64,
    /// Milliseconds until the upstream's response headers.
    pub first_byte_timeout: u64,
    /// Milliseconds for the whole upstream call, stream included.
    pub request_timeout: u64,
    pub max_retries: u32,
    /// Collapse runs of whitespace in prompts before caching and sending.
    pub normalize_whitespace: bool,
    /// USD per million tokens, by model name or name prefix.
    pub prices: std::collections::BTreeMap<String, AiPrice>,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            cache_enabled: true,
            default_ttl: 3600,
            max_cache_size: 1000,
            cache_max_bytes: "64MB".into(),
            rate_limit_per_minute: 100,
            key_rate_limit_per_minute: 0,
            global_rate_limit_per_minute: 0,
            tokens_per_minute: 0,
            gateway_keys: Vec::new(),
            openai_api_key: None,
            openai_base_url: None,
            anthropic_api_key: None,
            anthropic_base_url: None,
            providers: Vec::new(),
            fallback_models: Vec::new(),
            connect_timeout: 5_000,
            first_byte_timeout: 120_000,
            request_timeout: 600_000,
            max_retries: 2,
            normalize_whitespace: false,
            prices: std::collections::BTreeMap::new(),
        }
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub enable_cache: bool,
    /// Seconds.
    pub default_ttl: u64,
    pub max_cache_size: usize,
    /// Milliseconds above which a query counts as slow.
    pub slow_query_threshold: f64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            enable_cache: true,
            default_ttl: 300,
            max_cache_size: 1000,
            slow_query_threshold: 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalabilityConfig {
    /// Seconds between samples of this host (and between recorded recommendations);
    /// 0 turns the host sampler off.
    pub sample_interval: u64,
    /// Seconds without a sample after which an instance no longer counts as running.
    pub stale_after: u64,
    pub auto_scaling: AutoScalingConfig,
}

impl Default for ScalabilityConfig {
    fn default() -> Self {
        Self {
            sample_interval: 15,
            stale_after: 60,
            auto_scaling: AutoScalingConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoScalingConfig {
    pub enabled: bool,
    pub min_instances: u32,
    pub max_instances: u32,
    /// Percent.
    pub target_cpu: f64,
    pub scale_up_threshold: f64,
    pub scale_down_threshold: f64,
    /// Memory percent to aim for; 0 leaves memory out of the recommendation.
    pub target_memory: f64,
    /// Relative distance from the target within which nothing changes (Kubernetes: 0.1).
    pub tolerance: f64,
    /// Seconds: a scale-down takes the highest recommendation of this window.
    pub stabilization_window: u64,
    /// Hours ahead the load forecast looks for a peak.
    pub forecast_hours: u32,
}

impl Default for AutoScalingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_instances: 1,
            max_instances: 10,
            target_cpu: 70.0,
            scale_up_threshold: 80.0,
            scale_down_threshold: 30.0,
            target_memory: 80.0,
            tolerance: 0.1,
            stabilization_window: 300,
            forecast_hours: 6,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Events that stand for a feature, as `event=feature` (or just `event`, which names
    /// the feature after the event). An event's own `feature` property wins.
    pub features: Vec<String>,
}

/// What kind of value a key holds, so an environment string can be read as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Float,
    Bool,
    List,
}

/// One setting: its dotted path in the TOML file, its kind and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub path: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

macro_rules! keys {
    ($($path:literal $kind:ident $help:literal,)*) => {
        &[$(Key { path: $path, kind: Kind::$kind, help: $help },)*]
    };
}

/// Every setting. README's configuration table and `growth-stack config --keys` print it.
pub const KEYS: &[Key] = keys![
    "server.listen" Str "address and port to listen on",
    "server.data_dir" Str "folder holding growth.duckdb, the admin token and the IP salt",
    "server.admin_token" Str "token for reads and admin routes (generated on first start when unset)",
    "server.no_auth" Bool "serve reads without a token (refused unless listening on loopback)",
    "server.log_format" Str "text or json",
    "server.trust_proxy" Bool "take the client IP from X-Forwarded-For (only behind your own proxy)",
    "storage.memory_limit" Str "DuckDB memory limit, e.g. 512MB",
    "storage.threads" Int "DuckDB worker threads",
    "storage.queue_rows" Int "rows allowed to wait for the writer before ingest answers 503",
    "storage.max_commit_rows" Int "most rows in one group commit",
    "storage.read_connections" Int "parallel read connections for queries",
    "storage.wal_checkpoint" Str "WAL size that triggers a checkpoint, e.g. 64MB",
    "ingest.key" Str "when set, ingest calls must send it (X-Growth-Key header or ?key=)",
    "ingest.cors_origins" List "origins allowed to send ingest calls; * allows any",
    "ingest.body_limit" Int "largest request body in bytes",
    "ingest.max_batch" Int "most items in one ingest call",
    "ingest.rate_limit_per_ip" Int "ingest requests per second per client IP; 0 turns it off",
    "ingest.rate_limit_burst" Int "requests allowed at once above the rate; 0 means twice the rate",
    "privacy.ip" Str "how client IPs are stored: truncate, hash, full or none",
    "performance.batch_size" Int "tracker: metrics per beacon",
    "performance.flush_interval" Int "tracker: milliseconds between flushes",
    "performance.enable_web_vitals" Bool "tracker: collect Core Web Vitals",
    "performance.enable_custom_metrics" Bool "tracker: accept custom metrics",
    "performance.exact_max_samples" Int "vitals reads over more samples use the daily roll-up (within 2%)",
    "performance.rollup_interval" Int "seconds between roll-ups of finished days of web vitals",
    "ai.cache_enabled" Bool "AI gateway response cache",
    "ai.default_ttl" Int "AI cache TTL in seconds",
    "ai.max_cache_size" Int "AI cache entries",
    "ai.cache_max_bytes" Str "AI cache size budget in bytes, e.g. 64MB",
    "ai.rate_limit_per_minute" Int "AI calls per user per minute; 0 turns it off",
    "ai.key_rate_limit_per_minute" Int "AI calls per gateway key per minute; 0 turns it off",
    "ai.global_rate_limit_per_minute" Int "AI calls per minute in total; 0 turns it off",
    "ai.tokens_per_minute" Int "AI tokens per user per minute; 0 turns it off",
    "ai.gateway_keys" List "keys apps send to the AI gateway (also GROWTH_GATEWAY_KEYS; generated when empty)",
    "ai.openai_api_key" Str "OpenAI key (also OPENAI_API_KEY)",
    "ai.openai_base_url" Str "OpenAI-compatible base URL (also OPENAI_BASE_URL)",
    "ai.anthropic_api_key" Str "Anthropic key (also ANTHROPIC_API_KEY)",
    "ai.anthropic_base_url" Str "Anthropic base URL (also ANTHROPIC_BASE_URL)",
    "ai.fallback_models" List "models tried in order when the requested one keeps failing",
    "ai.connect_timeout" Int "upstream connect timeout in milliseconds",
    "ai.first_byte_timeout" Int "milliseconds until the upstream's response headers",
    "ai.request_timeout" Int "milliseconds for a whole upstream call, stream included",
    "ai.max_retries" Int "upstream retries on 429/5xx/timeouts, with backoff and jitter",
    "ai.normalize_whitespace" Bool "collapse whitespace in prompts (reports the tokens saved)",
    "database.enable_cache" Bool "query result cache",
    "database.default_ttl" Int "query cache TTL in seconds",
    "database.max_cache_size" Int "query cache entries",
    "database.slow_query_threshold" Float "milliseconds above which a query is slow",
    "scalability.sample_interval" Int "seconds between samples of this host (CPU, memory, load, disk, network); 0 turns the sampler off",
    "scalability.stale_after" Int "seconds without a sample after which an instance no longer counts",
    "scalability.auto_scaling.enabled" Bool "produce scaling recommendations",
    "scalability.auto_scaling.min_instances" Int "fewest instances to recommend",
    "scalability.auto_scaling.max_instances" Int "most instances to recommend",
    "scalability.auto_scaling.target_cpu" Float "CPU percent to aim for",
    "scalability.auto_scaling.scale_up_threshold" Float "CPU percent that calls for more instances",
    "scalability.auto_scaling.scale_down_threshold" Float "CPU percent that allows fewer instances",
    "scalability.auto_scaling.target_memory" Float "memory percent to aim for; 0 leaves memory out",
    "scalability.auto_scaling.tolerance" Float "relative distance from the target within which nothing changes (0.1)",
    "scalability.auto_scaling.stabilization_window" Int "seconds: a scale-down takes the highest recommendation of this window",
    "scalability.auto_scaling.forecast_hours" Int "hours ahead the load forecast looks for a peak",
    "analytics.features" List "events that count as feature use: event=feature, or event (feature named after it)",
];

/// Environment names other tools already use, read when the `GROWTH_*` name is unset.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("GROWTH_GATEWAY_KEYS", "ai.gateway_keys"),
    ("OPENAI_API_KEY", "ai.openai_api_key"),
    ("OPENAI_BASE_URL", "ai.openai_base_url"),
    ("ANTHROPIC_API_KEY", "ai.anthropic_api_key"),
    ("ANTHROPIC_BASE_URL", "ai.anthropic_base_url"),
];

impl Key {
    /// `server.*` keys drop their section (`GROWTH_LISTEN`); the rest keep it
    /// (`GROWTH_AI_DEFAULT_TTL`).
    pub fn env_name(&self) -> String {
        let path = self.path.strip_prefix("server.").unwrap_or(self.path);
        format!("GROWTH_{}", path.replace('.', "_").to_uppercase())
    }
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
        let a = &self.scalability.auto_scaling;
        if a.min_instances > a.max_instances {
            return Err(invalid(
                "scalability.auto_scaling.min_instances",
                "must not exceed max_instances",
            ));
        }
        for (key, v) in [
            ("scalability.auto_scaling.target_cpu", a.target_cpu),
            (
                "scalability.auto_scaling.scale_up_threshold",
                a.scale_up_threshold,
            ),
            (
                "scalability.auto_scaling.scale_down_threshold",
                a.scale_down_threshold,
            ),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(invalid(key, "must be a percentage between 0 and 100"));
            }
        }
        if !(0.0..=100.0).contains(&a.target_memory) {
            return Err(invalid(
                "scalability.auto_scaling.target_memory",
                "must be a percentage between 0 and 100 (0 leaves memory out)",
            ));
        }
        if a.target_cpu <= 0.0 {
            return Err(invalid(
                "scalability.auto_scaling.target_cpu",
                "must be above 0",
            ));
        }
        if !(0.0..1.0).contains(&a.tolerance) {
            return Err(invalid(
                "scalability.auto_scaling.tolerance",
                "must be at least 0 and below 1",
            ));
        }
        if !(1..=168).contains(&a.forecast_hours) {
            return Err(invalid(
                "scalability.auto_scaling.forecast_hours",
                "must be between 1 and 168",
            ));
        }
        if self.scalability.stale_after == 0 {
            return Err(invalid("scalability.stale_after", "must be greater than 0"));
        }
        if a.min_instances == 0 {
            return Err(invalid(
                "scalability.auto_scaling.min_instances",
                "must be at least 1",
            ));
        }
        if a.scale_down_threshold >= a.scale_up_threshold {
            return Err(invalid(
                "scalability.auto_scaling.scale_down_threshold",
                "must be below scale_up_threshold",
            ));
        }
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
        toml::to_string_pretty(&c).unwrap_or_default()
    }
}

fn merge(src: Sources<'_>) -> Result<toml::Table, ConfigError> {
    let mut table = match src.file {
        Some(path) => read_file(path)?,
        None if Path::new(DEFAULT_FILE).exists() => read_file(Path::new(DEFAULT_FILE))?,
        None => toml::Table::new(),
    };
    for key in KEYS {
        let name = key.env_name();
        // An empty variable counts as unset, as shells make it easy to leave one behind.
        if let Some(raw) = (src.env)(&name).filter(|v| !v.trim().is_empty()) {
            let value =
                parse_env(key, &raw).map_err(|m| invalid(key.path, format!("{name}: {m}")))?;
            set_path(&mut table, key.path, value);
        }
    }
    // The names the SDKs read, honoured below the GROWTH_* ones.
    for (name, path) in ENV_ALIASES {
        let Some(key) = KEYS.iter().find(|k| k.path == *path) else {
            continue;
        };
        if (src.env)(&key.env_name()).is_some_and(|v| !v.trim().is_empty()) {
            continue;
        }
        if let Some(raw) = (src.env)(name).filter(|v| !v.trim().is_empty()) {
            let value =
                parse_env(key, &raw).map_err(|m| invalid(key.path, format!("{name}: {m}")))?;
            set_path(&mut table, key.path, value);
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

fn parse_env(key: &Key, raw: &str) -> Result<toml::Value, String> {
    let raw = raw.trim();
    Ok(match key.kind {
        Kind::Str => toml::Value::String(raw.to_string()),
        Kind::Int => toml::Value::Integer(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not an integer"))?,
        ),
        Kind::Float => toml::Value::Float(
            raw.parse()
                .map_err(|_| format!("{raw:?} is not a number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("{raw:?} is not true or false")),
        }),
        Kind::List => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
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
    fn every_key_is_a_real_setting() {
        // Each listed key must land in the struct, so the list cannot drift from it.
        for key in KEYS {
            let value = match key.kind {
                Kind::Str => match key.path {
                    "server.listen" => "127.0.0.1:1",
                    "server.log_format" => "json",
                    "privacy.ip" => "hash",
                    "ai.cache_max_bytes" => "64MB",
                    "ai.openai_base_url" | "ai.anthropic_base_url" => "http://127.0.0.1:1",
                    _ => "abcdefghijklmnopqrstuvwxyz",
                },
                Kind::Int => "7",
                Kind::Float => "5",
                Kind::Bool => "false",
                Kind::List => "https://x.example",
            };
            let name = key.env_name();
            let table = merge(Sources {
                file: None,
                env: &|k| (k == name).then(|| value.to_string()),
                flags: vec![],
            })
            .unwrap();
            let config = Config::from_table(table).unwrap_or_else(|e| panic!("{}: {e}", key.path));
            let back = toml::Value::try_from(&config).unwrap();
            let found = key.path.split('.').try_fold(&back, |v, part| v.get(part));
            let expected = parse_env(key, value).unwrap();
            assert_eq!(found, Some(&expected), "{}", key.path);
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
    fn sizes_parse() {
        assert_eq!(parse_bytes("512MB"), Some(512 << 20));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("12"), Some(12));
        assert_eq!(parse_bytes("MB"), None);
        assert_eq!(parse_bytes("0MB"), None);
    }
}
