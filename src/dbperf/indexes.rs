//! `GET /api/analytics/database-performance/index-advice`: advice for the window's slow
//! and frequent fingerprints (with EXPLAIN before, and after on a hypothetical index when
//! the `hypopg` extension is there), unused and duplicate indexes, tables read whole.

use serde::Serialize;

use super::advice::{self, Advice};
use super::pg::{self, Pg, PgError, CATALOG_TTL};
use super::query::Candidate;
use crate::http::window::{Window, WindowJson};
use crate::store::Store;

/// Fingerprints looked at per report, most total time first.
const MAX_CANDIDATES: u32 = 20;

#[derive(Debug, Serialize)]
pub struct IndexReport {
    pub range: WindowJson,
    /// Whether `database.url` is set; without it only `candidates` is filled.
    pub database: bool,
    /// Why the database could not be read, when it could not.
    pub database_error: Option<String>,
    pub advice: Vec<QueryAdvice>,
    pub unused_indexes: Vec<pg::Index>,
    pub duplicate_indexes: Vec<DuplicateIndex>,
    pub seq_scan_tables: Vec<pg::SeqScanTable>,
}

#[derive(Debug, Serialize)]
pub struct QueryAdvice {
    #[serde(flatten)]
    pub candidate: Candidate,
    #[serde(flatten)]
    pub advice: Advice,
    /// `EXPLAIN` (never ANALYZE) with the example's values, before and (with `hypopg`)
    /// after the suggested index.
    pub explain_before: Option<String>,
    pub explain_after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DuplicateIndex {
    pub index: String,
    pub table: String,
    pub columns: Vec<String>,
    pub covered_by: String,
    pub covered_by_columns: Vec<String>,
    pub size_bytes: i64,
    pub statement: String,
}

pub async fn report(
    store: &Store,
    pg: Option<&Pg>,
    window: Window,
    slow: f64,
) -> Result<IndexReport, crate::store::StoreError> {
    let candidates = super::reads::candidates(store, window, slow, MAX_CANDIDATES).await?;
    let mut out = IndexReport {
        range: window.json(),
        database: pg.is_some(),
        database_error: None,
        advice: Vec::new(),
        unused_indexes: Vec::new(),
        duplicate_indexes: Vec::new(),
        seq_scan_tables: Vec::new(),
    };
    let Some(pg) = pg else {
        out.advice = candidates
            .into_iter()
            .map(|c| QueryAdvice {
                candidate: c,
                advice: Advice {
                    table: None,
                    columns: Vec::new(),
                    statement: None,
                    covered_by: None,
                    reason: "set database.url to your PostgreSQL for index advice".into(),
                    rows: None,
                    estimated_rows: None,
                },
                explain_before: None,
                explain_after: None,
            })
            .collect();
        return Ok(out);
    };
    match with_database(pg, candidates, &mut out).await {
        Ok(()) => {}
        Err(e) => out.database_error = Some(e.to_string()),
    }
    Ok(out)
}

async fn with_database(
    pg: &Pg,
    candidates: Vec<Candidate>,
    out: &mut IndexReport,
) -> Result<(), PgError> {
    let catalog = pg.catalog(CATALOG_TTL).await?;
    let conn = pg.get().await?;
    let version: i32 = conn
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await?
        .get(0);
    let hypopg = conn
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'", &[])
        .await?
        .is_some();
    for c in candidates {
        let advice = advice::advise(&c.query, &catalog);
        let (mut before, mut after) = (None, None);
        if advice.table.is_some() && (advice.statement.is_some() || advice.covered_by.is_some()) {
            // The example with its real values when there is one; the normalised text
            // as a generic plan on PostgreSQL 16 and later.
            let text = c
                .example
                .as_deref()
                .and_then(advice::explainable)
                .filter(|(_, generic)| !generic)
                .or_else(|| advice::explainable(&c.query).filter(|_| version >= 160_000));
            if let Some((sql, generic)) = text {
                let opts = if generic { "(GENERIC_PLAN)" } else { "" };
                before = explain(&conn, opts, &sql).await;
                if hypopg {
                    if let Some(stmt) = &advice.statement {
                        let create = stmt
                            .trim_end_matches(';')
                            .replace("CREATE INDEX CONCURRENTLY", "CREATE INDEX");
                        if conn
                            .query("SELECT * FROM hypopg_create_index($1)", &[&create])
                            .await
                            .is_ok()
                        {
                            after = explain(&conn, opts, &sql).await;
                            let _ = conn.batch_execute("SELECT hypopg_reset()").await;
                        }
                    }
                }
            }
        }
        out.advice.push(QueryAdvice {
            candidate: c,
            advice,
            explain_before: before,
            explain_after: after,
        });
    }
    out.unused_indexes = pg::unused_indexes(&catalog).into_iter().cloned().collect();
    out.duplicate_indexes = pg::duplicate_indexes(&catalog)
        .into_iter()
        .map(|d| DuplicateIndex {
            index: d.index.name.clone(),
            table: format!("{}.{}", d.index.schema, d.index.table),
            columns: d.index.columns.clone(),
            covered_by: d.covered_by.name.clone(),
            covered_by_columns: d.covered_by.columns.clone(),
            size_bytes: d.index.size_bytes,
            statement: format!(
                "DROP INDEX CONCURRENTLY {}.{};",
                pg::quote_ident(&d.index.schema),
                pg::quote_ident(&d.index.name)
            ),
        })
        .collect();
    out.seq_scan_tables = pg::seq_scan_tables(&catalog);
    Ok(())
}

/// The plan as text, or `None` when PostgreSQL refuses (a missing column, a value of the
/// wrong type): advice stands without it.
async fn explain(conn: &tokio_postgres::Client, opts: &str, sql: &str) -> Option<String> {
    let rows = conn
        .query(&format!("EXPLAIN {opts} {sql}"), &[])
        .await
        .ok()?;
    Some(
        rows.iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}
