//! The user's PostgreSQL (`database.url`): a small connection pool, and what we read from
//! its catalog and statistics views (tables and columns, indexes, `pg_stats`,
//! `pg_stat_user_tables`, `pg_stat_user_indexes`, `pg_stat_statements`).
//!
//! Every session is read-only (`default_transaction_read_only`) with a statement timeout:
//! we only ever read, and a read-only role is all the user needs to grant.

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a catalog read stays fresh for name checks before it is read again.
pub const CATALOG_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to database.url: {0}")]
    Connect(String),
    #[error("PostgreSQL error: {0}")]
    Query(String),
    #[error("timed out waiting for a connection to database.url")]
    Busy,
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message (permission denied, missing relation) says the most.
        match e.as_db_error() {
            Some(db) => PgError::Query(db.message().to_string()),
            None => PgError::Query(e.to_string()),
        }
    }
}

/// A pool of at most `size` connections, made on demand and reused while they live.
pub struct Pg {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
    catalog: Mutex<Option<(Instant, Arc<Catalog>)>>,
}

/// One borrowed connection; back to the pool when dropped (unless it broke).
pub struct Conn<'a> {
    client: Option<Client>,
    pool: &'a Pg,
    _permit: SemaphorePermit<'a>,
}

impl Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            if !c.is_closed() {
                self.pool.idle.lock().push(c);
            }
        }
    }
}

impl Pg {
    pub fn new(url: &str, size: u32) -> Result<Pg, PgError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgError::Connect(e.to_string()))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("growth-stack");
        }
        Ok(Pg {
            config,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size.max(1) as usize),
            catalog: Mutex::new(None),
        })
    }

    pub async fn get(&self) -> Result<Conn<'_>, PgError> {
        let permit = tokio::time::timeout(Duration::from_secs(10), self.permits.acquire())
            .await
            .map_err(|_| PgError::Busy)?
            .map_err(|_| PgError::Busy)?;
        let reused = {
            let mut idle = self.idle.lock();
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let client = match reused {
            Some(c) => c,
            None => self.connect().await?,
        };
        Ok(Conn {
            client: Some(client),
            pool: self,
            _permit: permit,
        })
    }

    async fn connect(&self) -> Result<Client, PgError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| PgError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database.url connection closed");
            }
        });
        client
            .batch_execute(
                "SET default_transaction_read_only = on; SET statement_timeout = '15s'; \
                 SET lock_timeout = '2s'",
            )
            .await?;
        Ok(client)
    }

    /// The catalog, read again when older than `max_age`.
    pub async fn catalog(&self, max_age: Duration) -> Result<Arc<Catalog>, PgError> {
        if let Some((at, c)) = self.catalog.lock().as_ref() {
            if at.elapsed() < max_age {
                return Ok(c.clone());
            }
        }
        let conn = self.get().await?;
        let c = Arc::new(Catalog::read(&conn).await?);
        *self.catalog.lock() = Some((Instant::now(), c.clone()));
        Ok(c)
    }
}

/// One column of a table the role may read.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column: what a bound text value is cast to.
    pub data_type: String,
    /// From `pg_stats`: share of NULLs and distinct values (negative: a share of rows).
    pub null_frac: Option<f64>,
    pub n_distinct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    /// `pg_class.reltuples` (an estimate; -1 before the first ANALYZE).
    pub rows: f64,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub idx_scan: i64,
    pub size_bytes: i64,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Index {
    pub schema: String,
    pub table: String,
    pub name: String,
    /// Key columns in order; empty for an expression index.
    pub columns: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    pub partial: bool,
    pub expression: bool,
    pub method: String,
    pub definition: String,
    pub size_bytes: i64,
    pub scans: i64,
}

/// What we know of the database: tables (with columns and statistics) and indexes.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Keyed by `schema.table`.
    pub tables: BTreeMap<String, Table>,
    pub indexes: Vec<Index>,
    /// Schemas on the search path, first first: where an unqualified name is looked up.
    pub search_path: Vec<String>,
}

const USER_SCHEMAS: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'";

#[cfg(test)]
impl Catalog {
    /// A catalog of one table `public.{name}`, on the search path, for tests.
    pub fn one_table(name: &str, columns: Vec<Column>, rows: f64) -> Catalog {
        let table = Table {
            schema: "public".into(),
            name: name.into(),
            columns,
            rows,
            seq_scan: 0,
            seq_tup_read: 0,
            idx_scan: 0,
            size_bytes: 0,
        };
        Catalog {
            tables: [(format!("public.{name}"), table)].into(),
            indexes: Vec::new(),
            search_path: vec!["public".into()],
        }
    }
}

impl Catalog {
    async fn read(client: &Client) -> Result<Catalog, PgError> {
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        let rows = client
            .query(
                &format!(
                    "SELECT n.nspname::text, t.relname::text, t.reltuples::float8, \
                     coalesce(s.seq_scan, 0)::int8, coalesce(s.seq_tup_read, 0)::int8, \
                     coalesce(s.idx_scan, 0)::int8, pg_total_relation_size(t.oid)::int8 \
                     FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace \
                     LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid \
                     WHERE t.relkind IN ('r', 'p', 'v', 'm') AND {USER_SCHEMAS} \
                     AND has_table_privilege(t.oid, 'SELECT')"
                ),
                &[],
            )
            .await?;
        for r in rows {
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            tables.insert(
                format!("{schema}.{name}"),
                Table {
                    schema,
                    name,
                    columns: Vec::new(),
                    rows: r.get(2),
                    seq_scan: r.get(3),
                    seq_tup_read: r.get(4),
                    idx_scan: r.get(5),
                    size_bytes: r.get(6),
                },
            );
        }
        let rows = client
            .query(
                &format!(
                    "SELECT n.nspname::text, t.relname::text, a.attname::text, \
                     format_type(a.atttypid, a.atttypmod), s.null_frac::float8, s.n_distinct::float8 \
                     FROM pg_attribute a JOIN pg_class t ON t.oid = a.attrelid \
                     JOIN pg_namespace n ON n.oid = t.relnamespace \
                     LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname \
                       AND s.attname = a.attname \
                     WHERE a.attnum > 0 AND NOT a.attisdropped AND t.relkind IN ('r', 'p', 'v', 'm') \
                     AND {USER_SCHEMAS} ORDER BY n.nspname, t.relname, a.attnum"
                ),
                &[],
            )
            .await?;
        for r in rows {
            let key = format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1));
            if let Some(t) = tables.get_mut(&key) {
                t.columns.push(Column {
                    name: r.get(2),
                    data_type: r.get(3),
                    null_frac: r.get(4),
                    n_distinct: r.get(5),
                });
            }
        }
        let rows = client
            .query(
                &format!(
                    "SELECT n.nspname::text, t.relname::text, i.relname::text, ix.indisunique, \
                     ix.indisprimary, ix.indpred IS NOT NULL, ix.indexprs IS NOT NULL, am.amname::text, \
                     pg_get_indexdef(i.oid), pg_relation_size(i.oid)::int8, coalesce(s.idx_scan, 0)::int8, \
                     ARRAY(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) \
                       WITH ORDINALITY k(attnum, ord) \
                       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                       WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord) \
                     FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
                     JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
                     JOIN pg_am am ON am.oid = i.relam \
                     LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.oid \
                     WHERE {USER_SCHEMAS} ORDER BY 1, 2, 3"
                ),
                &[],
            )
            .await?;
        let indexes = rows
            .into_iter()
            .map(|r| Index {
                schema: r.get(0),
                table: r.get(1),
                name: r.get(2),
                unique: r.get(3),
                primary: r.get(4),
                partial: r.get(5),
                expression: r.get(6),
                method: r.get(7),
                definition: r.get(8),
                size_bytes: r.get(9),
                scans: r.get(10),
                columns: r.get(11),
            })
            .collect();
        let search_path: Vec<String> = client
            .query_one("SELECT current_schemas(false)::text[]", &[])
            .await?
            .get(0);
        Ok(Catalog {
            tables,
            indexes,
            search_path,
        })
    }

    /// A table by the name a caller gives: `schema.table`, or a bare name found on the
    /// search path. Names are compared exactly (PostgreSQL keeps unquoted names lower case).
    pub fn table(&self, name: &str) -> Option<&Table> {
        if let Some(t) = self.tables.get(name) {
            return Some(t);
        }
        self.search_path
            .iter()
            .find_map(|s| self.tables.get(&format!("{s}.{name}")))
    }

    pub fn indexes_of<'a>(&'a self, t: &'a Table) -> impl Iterator<Item = &'a Index> + 'a {
        self.indexes
            .iter()
            .filter(move |i| i.schema == t.schema && i.table == t.name)
    }
}

/// PostgreSQL's reserved key words: never written bare as a name.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

/// A name as SQL text: bare when PostgreSQL would read it back unchanged, otherwise in
/// double quotes with inner quotes doubled. Only ever given names from the catalog.
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RESERVED.contains(&name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// One row of `pg_stat_statements`, cumulative since its last reset.
#[derive(Debug, Clone)]
pub struct Statement {
    pub queryid: i64,
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub rows: i64,
    pub shared_blks_hit: i64,
    pub shared_blks_read: i64,
}

/// Reads `pg_stat_statements` of the current database (the extension must be installed
/// there and preloaded); `Ok(None)` when it is not.
pub async fn statements(pg: &Pg) -> Result<Option<Vec<Statement>>, PgError> {
    let conn = pg.get().await?;
    let installed = conn
        .query_opt(
            "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'",
            &[],
        )
        .await?
        .is_some();
    if !installed {
        return Ok(None);
    }
    let rows = conn
        .query(
            "SELECT coalesce(queryid, 0)::int8, query, calls::int8, total_exec_time::float8, rows::int8, \
             shared_blks_hit::int8, shared_blks_read::int8 FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND query IS NOT NULL ORDER BY total_exec_time DESC LIMIT 1000",
            &[],
        )
        .await?;
    Ok(Some(
        rows.into_iter()
            .map(|r| Statement {
                queryid: r.get(0),
                query: r.get(1),
                calls: r.get(2),
                total_ms: r.get(3),
                rows: r.get(4),
                shared_blks_hit: r.get(5),
                shared_blks_read: r.get(6),
            })
            .collect(),
    ))
}

/// Per table, how often it is read whole.
#[derive(Debug, Serialize)]
pub struct SeqScanTable {
    pub table: String,
    pub rows: f64,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub idx_scan: i64,
    /// Share of scans that read the whole table.
    pub seq_scan_share: f64,
}

/// Tables of at least 10,000 rows read mostly by sequential scans, most rows read first.
pub fn seq_scan_tables(c: &Catalog) -> Vec<SeqScanTable> {
    let mut out: Vec<SeqScanTable> = c
        .tables
        .values()
        .filter(|t| t.rows >= 10_000.0 && t.seq_scan > 0 && t.seq_scan >= t.idx_scan)
        .map(|t| SeqScanTable {
            table: format!("{}.{}", t.schema, t.name),
            rows: t.rows,
            seq_scan: t.seq_scan,
            seq_tup_read: t.seq_tup_read,
            idx_scan: t.idx_scan,
            seq_scan_share: t.seq_scan as f64 / (t.seq_scan + t.idx_scan).max(1) as f64,
        })
        .collect();
    out.sort_by_key(|t| std::cmp::Reverse(t.seq_tup_read));
    out.truncate(50);
    out
}

/// An index no scan has used since the statistics were reset (unique ones excluded: they
/// enforce a rule even when never read).
pub fn unused_indexes(c: &Catalog) -> Vec<&Index> {
    let mut out: Vec<&Index> = c
        .indexes
        .iter()
        .filter(|i| i.scans == 0 && !i.unique && !i.primary)
        .collect();
    out.sort_by_key(|i| std::cmp::Reverse(i.size_bytes));
    out
}

/// An index whose columns are a leading part of another index of the same table and
/// method (PgHero's rule): the other one answers every query it answers.
#[derive(Debug, Serialize)]
pub struct Duplicate<'a> {
    pub index: &'a Index,
    pub covered_by: &'a Index,
}

pub fn duplicate_indexes(c: &Catalog) -> Vec<Duplicate<'_>> {
    let mut by_table: HashMap<(&str, &str), Vec<&Index>> = HashMap::new();
    for i in &c.indexes {
        by_table
            .entry((i.schema.as_str(), i.table.as_str()))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for list in by_table.values() {
        for a in list {
            if a.unique || a.primary || a.partial || a.expression || a.columns.is_empty() {
                continue;
            }
            let cover = list.iter().find(|b| {
                b.name != a.name
                    && b.method == a.method
                    && !b.partial
                    && !b.expression
                    && b.columns.len() >= a.columns.len()
                    && b.columns[..a.columns.len()] == a.columns[..]
                    // Of two identical ones, only the later name is reported.
                    && (b.columns.len() > a.columns.len() || b.name < a.name)
            });
            if let Some(b) = cover {
                out.push(Duplicate {
                    index: a,
                    covered_by: b,
                });
            }
        }
    }
    out.sort_by(|x, y| x.index.name.cmp(&y.index.name));
    out
}
