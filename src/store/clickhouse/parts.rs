//! What each server holds of the database's tables (`system.parts`, active parts), for
//! backups (`freeze`) and the storage page (`sizes`). A node reads it from every server of
//! `clickhouse.url` in turn: each server lists only its own parts.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;

use super::{quote, rows, ChError, ClickHouse};

/// One table's active parts on one server.
#[derive(Debug, Deserialize)]
pub(super) struct Parts {
    /// The server's table (`*_local` under Distributed tables).
    pub table: String,
    /// One part's folder, which shows where the server keeps its data.
    pub path: String,
    pub rows: u64,
    pub parts: u64,
    pub bytes: u64,
}

/// What `ClickHouse::sizes` counts of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableSize {
    pub rows: u64,
    /// The oldest row's age (`rows::age_column`), µs.
    pub oldest_us: Option<i64>,
    /// Bytes on disk of its active parts on every server.
    pub bytes: u64,
}

#[derive(Deserialize)]
struct Counted {
    t: String,
    n: u64,
    oldest: u64,
}

impl ClickHouse {
    /// The tables with active parts on server `at`, by name.
    pub(super) async fn parts_on(&self, at: usize) -> Result<Vec<Parts>, ChError> {
        let sql = format!(
            "SELECT table, any(path) AS path, sum(rows) AS rows, count() AS parts, \
             sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = {} AND active \
             GROUP BY table ORDER BY table FORMAT JSONEachRow",
            quote(&self.database)
        );
        let body = self.client.post_to(at, &[], Bytes::from(sql)).await?;
        body.split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(serde_json::from_slice::<Parts>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ChError::Decode(e.to_string()))
    }

    /// Rows and the oldest age of each stream table of `names`, counted through the
    /// (Distributed) tables in one query, and their bytes on disk summed over every server.
    pub async fn sizes(&self, names: &[&str]) -> Result<HashMap<String, TableSize>, ChError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let counts = names
            .iter()
            .map(|name| {
                format!(
                    "SELECT {} AS t, count() AS n, min({}) AS oldest FROM {}",
                    quote(name),
                    rows::age_column(name),
                    self.table(name)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut out: HashMap<String, TableSize> = HashMap::new();
        for c in self.rows::<Counted>(&counts).await? {
            let size = TableSize {
                rows: c.n,
                oldest_us: (c.n > 0).then_some(c.oldest as i64),
                bytes: 0,
            };
            out.insert(c.t, size);
        }
        for at in 0..self.client.urls().len() {
            for p in self.parts_on(at).await? {
                let name = p.table.strip_suffix("_local").unwrap_or(&p.table);
                if let Some(size) = out.get_mut(name) {
                    size.bytes += p.bytes;
                }
            }
        }
        Ok(out)
    }
}
