//! The guide's `db.select(table, columns, filters, {limit, ttl})`: a parameterised SELECT
//! on the user's PostgreSQL, answered from an in-process LRU with a TTL when it can be.
//!
//! Names (table, columns, order) are looked up in the catalog and written only as the
//! catalog spells them, quoted; an unknown name is refused, never interpolated. Filter
//! values are always bound (as text, cast to the column's own type by PostgreSQL).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use utoipa::ToSchema;

use super::pg::{quote_ident, Catalog, Pg, PgError, Table, CATALOG_TTL};
use crate::http::ingest::JsonInt;

/// Rows a select returns when it names no limit, and at most.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// Longest TTL a call may ask for, in seconds.
pub const MAX_TTL: u64 = 86_400;
/// Most filters and columns one call may name.
const MAX_NAMES: usize = 64;
/// Most values in one filter list.
const MAX_LIST: usize = 1000;

/// The body of `POST /api/db/select`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectIn {
    /// A table or view, `name` (found on the search path) or `schema.name`.
    #[schema(min_length = 1, max_length = 256)]
    pub table: String,
    /// Columns to return, in this order; default every column.
    #[schema(max_items = 64)]
    pub columns: Option<Vec<String>>,
    /// Column = value; `null` matches NULL, an array matches any of its values.
    #[schema(value_type = Option<Object>)]
    pub filters: Option<serde_json::Map<String, Value>>,
    pub order: Option<OrderIn>,
    /// Rows at most, 1 to 1000; default 100.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<JsonInt>,
    /// Seconds the answer may be served from the cache, 0 to 86400 (0: not cached);
    /// default `database.default_ttl`.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 86400)]
    pub ttl: Option<JsonInt>,
}

/// ORDER BY one column.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    #[schema(min_length = 1, max_length = 256)]
    pub column: String,
    /// Default true.
    pub ascending: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(
        "no database is configured; set database.url (GROWTH_DATABASE_URL) to your PostgreSQL"
    )]
    NoDatabase,
    /// A name the catalog does not know: 400.
    #[error("{0}")]
    UnknownName(String),
    /// A field out of range: 422.
    #[error("field `{0}` {1}")]
    Invalid(&'static str, String),
    /// PostgreSQL refused a value (e.g. "abc" for an integer column): 400.
    #[error("{0}")]
    BadValue(String),
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// A select checked against the catalog: everything needed to run it and to key it.
#[derive(Debug)]
pub struct Plan {
    /// `schema.table`, for invalidation.
    pub table: String,
    pub sql: String,
    /// Bound values: text, or text arrays.
    params: Vec<Param>,
    pub key: String,
    pub ttl: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum Param {
    One(String),
    Many(Vec<String>),
    Limit(i64),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::One(s) => s,
            Param::Many(v) => v,
            Param::Limit(n) => n,
        }
    }
}

fn scalar_text(v: &Value, field: &str) -> Result<String, SelectError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(SelectError::Invalid(
            "filters",
            format!(
                "value of {field:?} must be a string, number, boolean, null or an array of them"
            ),
        )),
    }
}

fn column<'a>(t: &'a Table, name: &str, what: &str) -> Result<&'a super::pg::Column, SelectError> {
    t.column(name).ok_or_else(|| {
        SelectError::UnknownName(format!(
            "{what} {name:?} is not a column of {}.{}",
            t.schema, t.name
        ))
    })
}

/// Checks `req` against `catalog` and writes its SQL.
pub fn plan(req: &SelectIn, catalog: &Catalog, default_ttl: u64) -> Result<Plan, SelectError> {
    let t = catalog.table(&req.table).ok_or_else(|| {
        SelectError::UnknownName(format!(
            "table {:?} does not exist or may not be read by database.url's role",
            req.table
        ))
    })?;
    let limit = req.limit.map_or(i64::from(DEFAULT_LIMIT), |l| l.0);
    if !(1..=i64::from(MAX_LIMIT)).contains(&limit) {
        return Err(SelectError::Invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let ttl = req.ttl.map_or(default_ttl as i64, |t| t.0);
    if !(0..=MAX_TTL as i64).contains(&ttl) {
        return Err(SelectError::Invalid(
            "ttl",
            format!("must be between 0 and {MAX_TTL} seconds"),
        ));
    }
    let names: Vec<&str> = match &req.columns {
        Some(c) if c.len() > MAX_NAMES => {
            return Err(SelectError::Invalid(
                "columns",
                format!("names at most {MAX_NAMES} columns"),
            ))
        }
        Some(c) if !c.is_empty() => c.iter().map(String::as_str).collect(),
        _ => t.columns.iter().map(|c| c.name.as_str()).collect(),
    };
    let mut select = Vec::with_capacity(names.len());
    for n in &names {
        select.push(quote_ident(&column(t, n, "column")?.name));
    }
    let filters: BTreeMap<&str, &Value> = req
        .filters
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    if filters.len() > MAX_NAMES {
        return Err(SelectError::Invalid(
            "filters",
            format!("names at most {MAX_NAMES} columns"),
        ));
    }
    let mut conds = Vec::new();
    let mut params = Vec::new();
    for (name, value) in &filters {
        let c = column(t, name, "filter")?;
        let ident = quote_ident(&c.name);
        match value {
            Value::Null => conds.push(format!("{ident} IS NULL")),
            Value::Array(items) => {
                if items.len() > MAX_LIST {
                    return Err(SelectError::Invalid(
                        "filters",
                        format!("a list holds at most {MAX_LIST} values"),
                    ));
                }
                let list = items
                    .iter()
                    .map(|v| scalar_text(v, name))
                    .collect::<Result<Vec<_>, _>>()?;
                params.push(Param::Many(list));
                conds.push(format!(
                    "{ident} = ANY((${}::text[])::{}[])",
                    params.len(),
                    c.data_type
                ));
            }
            v => {
                params.push(Param::One(scalar_text(v, name)?));
                conds.push(format!(
                    "{ident} = (${}::text)::{}",
                    params.len(),
                    c.data_type
                ));
            }
        }
    }
    let order = match &req.order {
        Some(o) => {
            let c = column(t, &o.column, "order column")?;
            let dir = if o.ascending.unwrap_or(true) {
                "ASC"
            } else {
                "DESC"
            };
            format!(" ORDER BY {} {dir}", quote_ident(&c.name))
        }
        None => String::new(),
    };
    params.push(Param::Limit(limit));
    let where_ = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let inner = format!(
        "SELECT {} FROM {}{where_}{order} LIMIT ${}::int8",
        select.join(", "),
        t.qualified(),
        params.len()
    );
    let key = serde_json::json!({
        "t": format!("{}.{}", t.schema, t.name),
        "c": names,
        "p": params,
        "s": inner,
    })
    .to_string();
    Ok(Plan {
        table: format!("{}.{}", t.schema, t.name),
        sql: inner,
        params,
        key,
        ttl: ttl as u64,
    })
}

/// Runs `plan` and returns the answer's body: `{"rows":[...]}`, rows as JSON objects.
pub async fn run(pg: &Pg, plan: &Plan) -> Result<Bytes, SelectError> {
    let conn = pg.get().await?;
    let sql = format!(
        "SELECT coalesce(json_agg(r), '[]'::json)::text FROM ({}) r",
        plan.sql
    );
    let params: Vec<&(dyn ToSql + Sync)> = plan.params.iter().map(Param::as_sql).collect();
    let row = conn.query_one(&sql, &params).await.map_err(|e| {
        match e.as_db_error() {
            // Class 22 (data exception: a value that is not of the column's type) and
            // 42 (an operator the column's type lacks) are the caller's to fix.
            Some(db)
                if db.code().code().starts_with("22") || db.code().code().starts_with("42") =>
            {
                SelectError::BadValue(db.message().to_string())
            }
            _ => SelectError::Pg(PgError::from(e)),
        }
    })?;
    let rows: String = row.get(0);
    let mut body = Vec::with_capacity(rows.len() + 10);
    body.extend_from_slice(b"{\"rows\":");
    body.extend_from_slice(rows.as_bytes());
    body.push(b'}');
    Ok(Bytes::from(body))
}

/// Looks the table up with a fresh catalog when the cached one does not know a name: a
/// table made a minute ago is found, an unknown one costs one extra catalog read.
pub async fn plan_fresh(pg: &Pg, req: &SelectIn, default_ttl: u64) -> Result<Plan, SelectError> {
    let catalog = pg.catalog(CATALOG_TTL).await?;
    match plan(req, &catalog, default_ttl) {
        Err(SelectError::UnknownName(_)) => {
            let fresh = pg.catalog(Duration::from_secs(1)).await?;
            plan(req, &fresh, default_ttl)
        }
        other => other,
    }
}

struct Entry {
    table: String,
    body: Bytes,
    expires: Instant,
}

/// The answers cache: least recently used dropped first, each entry with its own TTL.
pub struct SelectCache {
    entries: Mutex<lru::LruCache<String, Entry>>,
    capacity: usize,
    pub enabled: bool,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What the Database page shows of the cache.
#[derive(Debug, Serialize, ToSchema)]
pub struct CacheStats {
    pub enabled: bool,
    pub entries: usize,
    pub capacity: usize,
    /// Since the server started.
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: Option<f64>,
}

impl SelectCache {
    pub fn new(capacity: usize, enabled: bool) -> SelectCache {
        SelectCache {
            entries: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            capacity,
            enabled: enabled && capacity > 0,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        if !self.enabled {
            return None;
        }
        let mut entries = self.entries.lock();
        let found = match entries.get(key) {
            Some(e) if e.expires > Instant::now() => Some(e.body.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        };
        drop(entries);
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    pub fn put(&self, plan: &Plan, body: Bytes) {
        if !self.enabled || plan.ttl == 0 {
            return;
        }
        self.entries.lock().put(
            plan.key.clone(),
            Entry {
                table: plan.table.clone(),
                body,
                expires: Instant::now() + Duration::from_secs(plan.ttl),
            },
        );
    }

    /// Drops every entry, or those of one table (`schema.table` or a bare name).
    pub fn invalidate(&self, table: Option<&str>) -> usize {
        let mut entries = self.entries.lock();
        match table {
            None => {
                let n = entries.len();
                entries.clear();
                n
            }
            Some(t) => {
                let keys: Vec<String> = entries
                    .iter()
                    .filter(|(_, e)| {
                        e.table == t || e.table.rsplit_once('.').is_some_and(|(_, n)| n == t)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in &keys {
                    entries.pop(k);
                }
                keys.len()
            }
        }
    }

    pub fn stats(&self) -> CacheStats {
        let (hits, misses) = (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        );
        CacheStats {
            enabled: self.enabled,
            entries: self.entries.lock().len(),
            capacity: self.capacity,
            hits,
            misses,
            hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbperf::pg::Column;

    fn catalog() -> Catalog {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            data_type: t.into(),
            null_frac: None,
            n_distinct: None,
        };
        let columns = vec![
            col("id", "integer"),
            col("user_id", "text"),
            col("order", "integer"),
        ];
        Catalog::one_table("recipes", columns, 10.0)
    }

    fn req(v: Value) -> SelectIn {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn names_come_from_the_catalog_and_values_are_bound() {
        let p = plan(
            &req(serde_json::json!({"table": "recipes", "columns": ["id", "order"],
                "filters": {"user_id": "x'; DROP TABLE recipes; --"}, "order": {"column": "id", "ascending": false}})),
            &catalog(),
            300,
        )
        .unwrap();
        assert_eq!(
            p.sql,
            "SELECT id, \"order\" FROM public.recipes WHERE user_id = ($1::text)::text ORDER BY id DESC LIMIT $2::int8"
        );
        assert!(!p.sql.contains("DROP"));
        for bad in [
            serde_json::json!({"table": "recipes; DROP TABLE x"}),
            serde_json::json!({"table": "recipes", "columns": ["id\" FROM pg_shadow --"]}),
            serde_json::json!({"table": "recipes", "filters": {"1=1 OR id": 1}}),
            serde_json::json!({"table": "recipes", "order": {"column": "random()"}}),
        ] {
            assert!(matches!(
                plan(&req(bad), &catalog(), 300),
                Err(SelectError::UnknownName(_))
            ));
        }
    }

    #[test]
    fn cache_expires_and_invalidates_by_table() {
        let c = SelectCache::new(2, true);
        let p = plan(
            &req(serde_json::json!({"table": "recipes"})),
            &catalog(),
            300,
        )
        .unwrap();
        assert!(c.get(&p.key).is_none());
        c.put(&p, Bytes::from_static(b"{\"rows\":[]}"));
        assert_eq!(c.get(&p.key).unwrap(), Bytes::from_static(b"{\"rows\":[]}"));
        assert_eq!(c.invalidate(Some("recipes")), 1);
        assert!(c.get(&p.key).is_none());
        let zero = plan(
            &req(serde_json::json!({"table": "recipes", "ttl": 0})),
            &catalog(),
            300,
        )
        .unwrap();
        c.put(&zero, Bytes::from_static(b"x"));
        assert!(c.get(&zero.key).is_none());
    }
}
