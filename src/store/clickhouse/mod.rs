//! The ClickHouse engine (`storage.engine = "clickhouse"`): product events, conversions
//! and web-vitals samples live in a ClickHouse server or cluster that every growth-stack node shares.
//!
//! - `client`: HTTP on the hyper-util pool we already depend on (no new crates; the
//!   official crate needs formats 18.16 lacks and would rebuild DuckDB), with fail-over
//!   along `clickhouse.url`.
//! - `schema`: versioned migrations from `migrations/clickhouse/`, safe when several nodes
//!   start at once (every statement is IF NOT EXISTS; the versions table tolerates doubles).
//!   With `clickhouse.cluster`: `*_local` MergeTree tables under `Distributed` tables sharded
//!   by `cityHash64(visitor_id)`, so per-person queries stay shard-local.
//! - `writer`: the group commit as one `INSERT` per table per group (JSONEachRow; web
//!   vitals as RowBinary, whose floats arrive exactly: `rows::format`),
//!   with `insert_distributed_sync=1`: a request is acknowledged only after every shard
//!   holding its rows confirmed them.
//!
//! Reads: each query module keeps its DuckDB SQL and puts its ClickHouse SQL side by side
//! in a sibling file (`growth/clickhouse.rs`, `vitals/clickhouse.rs`), both folded by the
//! same Rust code; `Store` says which engine runs (`Store::clickhouse`). See README
//! "Scale-out on ClickHouse".

mod client;
pub mod copy;
pub mod escape;
pub mod fold;
pub mod freeze;
pub mod lease;
mod parts;
mod rows;
mod schema;
pub(super) mod writer;

use serde::de::DeserializeOwned;

pub use client::{next_chunk, parse_error, ChError, Lines};
pub use escape::{quote, quote_list};
pub use freeze::{FrozenServer, FrozenTable};
pub use schema::MIGRATIONS;

use crate::config::ClickHouseConfig;

/// A connected, migrated ClickHouse: the client plus what the SQL needs to know.
pub struct ClickHouse {
    client: client::Client,
    database: String,
    /// Whether the tables are Distributed over a cluster.
    distributed: bool,
    /// The cluster to send DDL and mutations to `ON CLUSTER` (servers with ZooKeeper);
    /// without it they go to every server of `clickhouse.url` in turn.
    on_cluster: Option<String>,
}

impl ClickHouse {
    /// Connects to the first server of `clickhouse.url` that answers and migrates the
    /// schema (on every listed server, or once ON CLUSTER when ZooKeeper coordinates DDL).
    pub async fn connect(cfg: &ClickHouseConfig) -> Result<ClickHouse, ChError> {
        for (key, name) in [
            ("clickhouse.database", Some(&cfg.database)),
            ("clickhouse.cluster", cfg.cluster.as_ref()),
        ] {
            if let Some(n) = name {
                if !is_identifier(n) {
                    return Err(ChError::Decode(format!(
                        "{key} = {n:?}: use letters, digits and _ only"
                    )));
                }
            }
        }
        let client = client::Client::new(&cfg.url, &cfg.user, cfg.password.as_deref(), cfg.gzip);
        let ch = ClickHouse {
            client,
            database: cfg.database.clone(),
            distributed: cfg.cluster.is_some(),
            on_cluster: None,
        };
        let on_cluster = schema::migrate(&ch, cfg).await?;
        Ok(ClickHouse { on_cluster, ..ch })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// `db.table`: the table to read and write (Distributed on a cluster).
    pub fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    pub fn is_distributed(&self) -> bool {
        self.distributed
    }

    /// Runs a SELECT (without FORMAT) and reads its rows.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ChError> {
        self.client.rows(sql, &[]).await
    }

    /// Runs a SELECT (without FORMAT) and reads its rows as they arrive: for results too
    /// large to hold at once.
    pub async fn lines(&self, sql: &str) -> Result<Lines, ChError> {
        self.stream(&format!("{sql} FORMAT JSONEachRow"))
            .await
            .map(Lines::new)
    }

    /// Runs a SELECT that names its own FORMAT; the answer's body as it arrives.
    pub async fn stream(&self, sql: &str) -> Result<hyper::body::Incoming, ChError> {
        self.client
            .post_stream(&[], bytes::Bytes::from(sql.to_string()))
            .await
    }

    /// Runs a SELECT expected to return exactly one row.
    pub async fn row<T: DeserializeOwned>(&self, sql: &str) -> Result<T, ChError> {
        self.rows(sql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ChError::Decode("expected one row, got none".into()))
    }

    /// Runs a statement that returns nothing.
    pub async fn execute(&self, sql: &str) -> Result<(), ChError> {
        self.client.execute(sql).await
    }

    /// Deletes the rows of stream table `name` whose age (`rows::age_column`) is before `cutoff_us` and
    /// returns how many there were. ClickHouse deletes by mutation, in the background: the
    /// count is what was scheduled. On a cluster the mutation goes to the local tables, of
    /// every server or `ON CLUSTER`.
    pub async fn delete_before(&self, name: &str, cutoff_us: i64) -> Result<u64, ChError> {
        #[derive(serde::Deserialize)]
        struct N {
            n: u64,
        }
        let cutoff = cutoff_us.max(0);
        let col = rows::age_column(name);
        let found: N = self
            .row(&format!(
                "SELECT count() AS n FROM {} WHERE {col} < {cutoff}",
                self.table(name)
            ))
            .await?;
        if found.n == 0 {
            return Ok(0);
        }
        let local = if self.distributed {
            format!("{}_local", self.table(name))
        } else {
            self.table(name)
        };
        let delete = |on: &str| format!("ALTER TABLE {local}{on} DELETE WHERE {col} < {cutoff}");
        match &self.on_cluster {
            Some(c) => self.execute(&delete(&format!(" ON CLUSTER {c}"))).await?,
            None if self.distributed => {
                for at in 0..self.client.urls().len() {
                    self.client.execute_on(at, &delete("")).await?;
                }
            }
            None => self.execute(&delete("")).await?,
        }
        Ok(found.n)
    }

    /// Inserts `rows` into table `name` and returns once every shard holding them
    /// confirmed (a synchronous distributed insert), as the writer does for the streams.
    pub async fn insert<T: serde::Serialize>(&self, name: &str, rows: &[T]) -> Result<(), ChError> {
        let mut body = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut body, row).map_err(|e| ChError::Decode(e.to_string()))?;
            body.push(b'\n');
        }
        self.client
            .insert(
                &self.table(name),
                " FORMAT JSONEachRow",
                bytes::Bytes::from(body),
                writer::INSERT_SETTINGS,
            )
            .await
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[from_us, to_us)` of a UInt64 µs column `col` (`event_time`) with its DateTime twin
/// `at` for partition and key pruning. Our own numbers only.
pub fn time_range(col: &str, at: &str, from_us: i64, to_us: i64) -> String {
    let (from, to) = (from_us.max(0), to_us.max(0));
    format!(
        "{col} >= {from} AND {col} < {to} AND {at} >= toDateTime({}) AND {at} <= toDateTime({})",
        from / 1_000_000,
        (to / 1_000_000).max(from / 1_000_000)
    )
}

/// Microseconds since the epoch as DuckDB's JSON shows a timestamp (RFC 3339, ms, `Z`).
pub fn iso_us(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether this engine stores the batch's stream (the others stay in the node's DuckDB).
pub fn stores(batch: &crate::store::Batch) -> bool {
    rows::table_of(batch).is_some()
}

/// The table holding `stream` on this engine, when it is one ClickHouse holds.
pub fn table_of_stream(stream: crate::store::Stream) -> Option<&'static str> {
    rows::table_of_stream(stream)
}
