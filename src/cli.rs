//! Command-line interface: `serve` (the default), `demo`, `bench`, `config`, and the data
//! tools `export`, `import` and `restore`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{IpMode, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "growth-stack",
    version,
    about = "Web vitals, AI-call metrics, query timings and product analytics in one binary, stored in DuckDB.",
    long_about = "Web vitals, AI-call metrics, query timings and product analytics in one binary, stored in \
                  one DuckDB file.\n\nWith no subcommand it serves. Settings come from defaults, then \
                  growth-stack.toml (or --config), then GROWTH_* environment variables, then flags.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Fill a data dir with realistic synthetic data for every stream (a meal-planning app).
    Demo(DemoArgs),
    /// Measure ingest: the Appender ceiling, batched HTTP ingest and single-event beacons.
    Bench(BenchArgs),
    /// Measure the AI gateway against a mock provider: miss and hit overhead, hit throughput.
    BenchAi(BenchAiArgs),
    /// Print the effective configuration, or every setting with its environment variable.
    Config(ConfigArgs),
    /// Write one stream's rows to a Parquet, CSV or JSON Lines file (server stopped).
    Export(ExportArgs),
    /// Add the rows of an exported file to a stream (server stopped); rows already there are skipped.
    Import(ImportArgs),
    /// Build a working data dir (--data-dir) from a backup folder, checking every table's row count.
    Restore(RestoreArgs),
    /// Copy the data dir's events and conversions into ClickHouse (server stopped); resumable, checked by counts.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    /// The ClickHouse HTTP interface(s) to copy into, comma-separated (fail-over); the
    /// database, user, password and cluster come from the `clickhouse.*` settings
    #[arg(long = "to-clickhouse", value_name = "URL")]
    pub to_clickhouse: String,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// events, performance, ai, database, conversions, errors, system or recommendations
    #[arg(long)]
    pub stream: String,
    /// parquet, csv or jsonl [default: from the --out extension, else parquet]
    #[arg(long)]
    pub format: Option<String>,
    /// The file to write (replaced if it exists)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Only rows of this last span (e.g. 30d, 24h); default everything
    #[arg(long)]
    pub range: Option<String>,
    /// Only rows from this instant (RFC 3339 or a date); overrides --range
    #[arg(long)]
    pub from: Option<String>,
    /// Only rows before this instant (RFC 3339 or a date)
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// The stream the file holds
    #[arg(long)]
    pub stream: String,
    /// parquet, csv or jsonl [default: from the file's extension]
    #[arg(long)]
    pub format: Option<String>,
    /// A file written by `export` (or with the same column names)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct RestoreArgs {
    /// A backup folder (holding manifest.json), e.g. data/backups/20260101T000000.000Z
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Replace the database of a data dir that is not empty
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// TOML config file [default: ./growth-stack.toml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder for growth.duckdb, the admin token and the IP salt [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080]; port 0 picks a free one
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Admin token for reads and admin routes [default: generated on first start, kept in the data dir]
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Serve reads without a token; refused unless listening on a loopback address
    #[arg(long)]
    pub no_auth: bool,
    /// Require this key on ingest calls (X-Growth-Key header or ?key=)
    #[arg(long, value_name = "KEY")]
    pub ingest_key: Option<String>,
    /// Origin allowed to send ingest calls from a browser; repeat for several [default: any]
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// How client IP addresses are stored [default: truncate]
    #[arg(long, value_enum, value_name = "MODE")]
    pub ip: Option<IpModeArg>,
    /// Take the client IP from X-Forwarded-For (only behind your own reverse proxy)
    #[arg(long)]
    pub trust_proxy: bool,
    /// Ingest requests per second per client IP; 0 turns the limit off [default: 300]
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum IpModeArg {
    Truncate,
    Hash,
    Full,
    None,
}

impl From<IpModeArg> for IpMode {
    fn from(m: IpModeArg) -> Self {
        match m {
            IpModeArg::Truncate => IpMode::Truncate,
            IpModeArg::Hash => IpMode::Hash,
            IpModeArg::Full => IpMode::Full,
            IpModeArg::None => IpMode::None,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Number of product events to generate; the other streams scale with it
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Spread the data over this many days up to now
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Random seed, for repeatable data
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write only web vitals: this many page views (for `bench --vitals-query`)
    #[arg(long, value_name = "N")]
    pub page_views: Option<u64>,
    /// Distinct signed-in users [default: events / 40, at most 200,000]
    #[arg(long)]
    pub users: Option<u64>,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Events for the Appender ceiling and for batched HTTP ingest
    #[arg(long, default_value_t = 300_000)]
    pub events: u64,
    /// Events per batched HTTP request
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Single-event beacon requests to send
    #[arg(long, default_value_t = 60_000)]
    pub beacons: u64,
    /// Concurrent client connections
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Connections of the single-beacon phases, one phase each, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    pub beacon_connections: Vec<usize>,
    /// Measure the server of this binary instead of this one's (the same load generator
    /// for a before/after side by side)
    #[arg(long, value_name = "PATH")]
    pub server_exe: Option<PathBuf>,
    /// Only time start-up to ready (and idle RSS) on this existing data dir, e.g. after `demo`
    #[arg(long, value_name = "DATA_DIR")]
    pub startup: Option<PathBuf>,
    /// Web vitals instead: --beacons single-report beacons, then (with --vitals-data) reads
    #[arg(long)]
    pub vitals: bool,
    /// Database optimisation instead: fingerprinting, query-timing ingest next to events
    #[arg(long)]
    pub database: bool,
    /// With --database: a PostgreSQL to time select-cache hits against direct queries on
    /// (the bench creates and fills a table gs_bench_recipes there)
    #[arg(long, value_name = "URL", requires = "database")]
    pub database_url: Option<String>,
    /// Data dir filled by `demo --page-views N` to time per-route × device reads on
    #[arg(long, value_name = "DATA_DIR", requires = "vitals")]
    pub vitals_data: Option<PathBuf>,
    /// Only time growth queries (funnel, retention, overview) on this data dir, API vs raw SQL
    #[arg(long, value_name = "DATA_DIR")]
    pub growth: Option<PathBuf>,
    /// Only time alert evaluation rounds (built-in rules + --user-rules) on this data dir
    #[arg(long, value_name = "DATA_DIR")]
    pub alerts: Option<PathBuf>,
    /// Only time export, online backup, restore and a 20-of-30-days prune under beacons on this data dir (filled by `demo --days 30`)
    #[arg(long, value_name = "DATA_DIR")]
    pub lifecycle: Option<PathBuf>,
    /// User rules added for --alerts
    #[arg(long, default_value_t = 100)]
    pub user_rules: usize,
    /// Timed evaluation rounds for --alerts, after one cold round
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Send events without user_id (visitor ids, no profile upserts)
    #[arg(long)]
    pub anonymous: bool,
    /// Timed repetitions per query with --growth
    #[arg(long, default_value_t = 15)]
    pub reps: usize,
}

#[derive(Debug, Args, Clone)]
pub struct BenchAiArgs {
    /// Requests per path (direct, gateway miss, gateway hit), sent one at a time, interleaved
    #[arg(long, default_value_t = 5_000)]
    pub requests: usize,
    /// Cache hits for the throughput phase
    #[arg(long, default_value_t = 100_000)]
    pub hits: usize,
    /// Concurrent connections in the throughput phase
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// List every setting with its environment variable, default and meaning instead
    #[arg(long)]
    pub keys: bool,
    /// With --keys: as a Markdown table (README's)
    #[arg(long, requires = "keys")]
    pub markdown: bool,
}

impl ServeArgs {
    /// Flags as config overrides, by key path; only flags actually given.
    pub fn overrides(&self) -> Vec<(&'static str, toml::Value)> {
        use toml::Value;
        let mut o = Vec::new();
        if let Some(v) = &self.listen {
            o.push(("server.listen", Value::String(v.clone())));
        }
        if let Some(v) = &self.admin_token {
            o.push(("server.admin_token", Value::String(v.clone())));
        }
        if self.no_auth {
            o.push(("server.no_auth", Value::Boolean(true)));
        }
        if let Some(v) = &self.ingest_key {
            o.push(("ingest.key", Value::String(v.clone())));
        }
        if !self.cors_origins.is_empty() {
            let list = self
                .cors_origins
                .iter()
                .cloned()
                .map(Value::String)
                .collect();
            o.push(("ingest.cors_origins", Value::Array(list)));
        }
        if let Some(m) = self.ip {
            let name = match IpMode::from(m) {
                IpMode::Truncate => "truncate",
                IpMode::Hash => "hash",
                IpMode::Full => "full",
                IpMode::None => "none",
            };
            o.push(("privacy.ip", Value::String(name.into())));
        }
        if self.trust_proxy {
            o.push(("server.trust_proxy", Value::Boolean(true)));
        }
        if let Some(n) = self.rate_limit {
            o.push(("ingest.rate_limit_per_ip", Value::Integer(i64::from(n))));
        }
        o
    }
}

impl GlobalArgs {
    pub fn overrides(&self) -> Vec<(&'static str, toml::Value)> {
        let mut o = Vec::new();
        if let Some(d) = &self.data_dir {
            o.push((
                "server.data_dir",
                toml::Value::String(d.display().to_string()),
            ));
        }
        if let Some(f) = self.log_format {
            let name = match LogFormat::from(f) {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            o.push(("server.log_format", toml::Value::String(name.into())));
        }
        o
    }
}
