//! Export on the ClickHouse engine: a stream ClickHouse holds, read from ClickHouse and
//! written by the node's DuckDB `COPY` exactly as `export::export_duckdb` writes it.
//!
//! ClickHouse 18.16 writes no Parquet, and its CSV and JSON differ from DuckDB's (times as
//! microseconds, `visitor_id` `''` for none, booleans as 0/1). So its answer (JSONEachRow)
//! streams to a file next to the output, and DuckDB reads that file back as the DuckDB
//! table's own column types and writes the export: the same bytes as a DuckDB node's for
//! the same rows in the same order. Rows come in event-time order (a DuckDB node writes
//! them in the order they were stored, which ClickHouse does not keep). Columns are matched
//! by name, so a stream added to `store::clickhouse::table_of_stream` exports with no
//! change here.

use std::path::Path;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::export::{sql_path, Format, Span};
use crate::store::clickhouse::{next_chunk, table_of_stream, ChError, ClickHouse};
use crate::store::{Store, StoreError, Stream};

fn err(e: ChError) -> StoreError {
    StoreError::ClickHouse(e)
}

#[derive(Deserialize)]
struct ChColumn {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// A DuckDB column of the stream's table and how it is read from ClickHouse's rows.
struct Column {
    name: String,
    /// DuckDB's type name (`information_schema.columns.data_type`).
    duck: String,
    /// The type `read_json` reads ClickHouse's value as; `None`: ClickHouse has no such
    /// column, so the export has NULL there.
    read: Option<&'static str>,
}

impl Column {
    fn quoted(&self) -> String {
        format!("\"{}\"", self.name.replace('"', "\"\""))
    }

    /// The DuckDB expression of this column over `read_json`'s row.
    fn expr(&self) -> String {
        let c = self.quoted();
        let duck = self.duck.as_str();
        let value = match (self.read, duck) {
            (None, _) => format!("CAST(NULL AS {duck})"),
            // Microseconds since the epoch; this DuckDB has no ICU time zones, so the cast
            // reads them as UTC, as the writer's bound timestamps are.
            (Some(_), "TIMESTAMP WITH TIME ZONE") => {
                format!("CAST(make_timestamp({c}) AS TIMESTAMPTZ)")
            }
            (Some(_), "TIMESTAMP") => format!("make_timestamp({c})"),
            (Some(_), "BOOLEAN") => format!("{c} <> 0"),
            // The sharding key is never NULL on ClickHouse: `''` stands for none (0001).
            (Some(_), _) if self.name == "visitor_id" => format!("CAST(nullif({c}, '') AS {duck})"),
            (Some(_), _) => format!("CAST({c} AS {duck})"),
        };
        format!("{value} AS {c}")
    }
}

/// How `read_json` reads a ClickHouse column of type `kind` from JSONEachRow.
fn read_type(kind: &str) -> &'static str {
    let inner = kind
        .strip_prefix("Nullable(")
        .and_then(|k| k.strip_suffix(')'))
        .unwrap_or(kind);
    if inner.starts_with("Float") {
        "DOUBLE"
    } else if inner.starts_with("Int") || inner.starts_with("UInt") {
        "BIGINT"
    } else {
        "VARCHAR"
    }
}

/// The stream's DuckDB columns in table order (without the writer's `seq`), each with
/// how ClickHouse's rows give it.
async fn columns(
    store: &Store,
    ch: &ClickHouse,
    table: &'static str,
) -> Result<Vec<Column>, StoreError> {
    let duck: Vec<(String, String)> = store
        .query(move |c| {
            let mut stmt = c.prepare(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_schema = 'main' AND table_name = ? AND column_name <> 'seq' \
                 ORDER BY ordinal_position",
            )?;
            let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let held: Vec<ChColumn> = ch
        .rows(&format!(
            "SELECT name, type FROM system.columns WHERE database = {} AND table = {}",
            crate::store::clickhouse::quote(ch.database()),
            crate::store::clickhouse::quote(table)
        ))
        .await
        .map_err(err)?;
    Ok(duck
        .into_iter()
        .map(|(name, duck)| {
            let read = held
                .iter()
                .find(|c| c.name == name)
                .map(|c| read_type(&c.kind));
            Column { name, duck, read }
        })
        .collect())
}

/// `super::export_to` on ClickHouse (see the module comment); returns the rows written.
pub async fn export_to(
    store: &Store,
    ch: &ClickHouse,
    stream: Stream,
    format: Format,
    span: Span,
    out: &Path,
) -> Result<u64, StoreError> {
    let table = table_of_stream(stream).ok_or_else(|| {
        err(ChError::NotPorted(format!(
            "export of stream {:?}, which each node keeps in its own DuckDB file,",
            stream.name()
        )))
    })?;
    let columns = columns(store, ch, table).await?;
    let held: Vec<&Column> = columns.iter().filter(|c| c.read.is_some()).collect();
    if held.is_empty() {
        return Err(StoreError::Internal(format!(
            "ClickHouse table {table} has none of DuckDB's columns"
        )));
    }
    // Times are numbers we computed, never text from a request.
    let age = stream.age_column();
    let mut cond = vec!["1".to_string()];
    if let Some(f) = span.from_us {
        cond.push(format!("{age} >= {}", f.max(0)));
    }
    if let Some(t) = span.to_us {
        cond.push(format!("{age} < {}", t.max(0)));
    }
    let names = held
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    // Ties on the age column in a fixed order: by the row's columns, `id` first where the
    // stream has one (load samples and recommendations have none).
    let select = format!(
        "SELECT {names} FROM {} WHERE {} ORDER BY {age}, {names} FORMAT JSONEachRow",
        ch.table(table),
        cond.join(" AND ")
    );
    let dir = out.parent().unwrap_or(Path::new("."));
    let rows_file = tempfile::Builder::new()
        .prefix(".export-rows-")
        .suffix(".jsonl")
        .tempfile_in(dir)
        .map_err(|e| StoreError::Internal(format!("cannot make a temporary file: {e}")))?;
    let io = |e: std::io::Error| StoreError::Internal(format!("cannot write the rows file: {e}"));
    let mut body = ch.stream(&select).await.map_err(err)?;
    let mut file = tokio::fs::File::create(rows_file.path())
        .await
        .map_err(io)?;
    while let Some(chunk) = next_chunk(&mut body).await.map_err(err)? {
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    let read_columns: Vec<String> = held
        .iter()
        .map(|c| {
            format!(
                "{}: '{}'",
                sql_literal(&c.name),
                c.read.unwrap_or("VARCHAR")
            )
        })
        .collect();
    let sql = format!(
        "COPY (SELECT {} FROM read_json({}, format = 'newline_delimited', records = true, columns = {{{}}})) TO {} ({})",
        columns.iter().map(Column::expr).collect::<Vec<_>>().join(", "),
        sql_path(rows_file.path()),
        read_columns.join(", "),
        sql_path(out),
        format.copy_options()
    );
    let n = store.query(move |c| Ok(c.execute(&sql, [])? as u64)).await;
    drop(rows_file);
    n
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clickhouse_types_read_as_duckdb_types() {
        assert_eq!(read_type("Nullable(Float64)"), "DOUBLE");
        assert_eq!(read_type("UInt64"), "BIGINT");
        assert_eq!(read_type("Nullable(Int32)"), "BIGINT");
        assert_eq!(read_type("String"), "VARCHAR");
        let col = |name: &str, duck: &str, read| Column {
            name: name.into(),
            duck: duck.into(),
            read,
        };
        assert_eq!(
            col("visitor_id", "VARCHAR", Some("VARCHAR")).expr(),
            "CAST(nullif(\"visitor_id\", '') AS VARCHAR) AS \"visitor_id\""
        );
        assert_eq!(
            col("gone", "DOUBLE", None).expr(),
            "CAST(NULL AS DOUBLE) AS \"gone\""
        );
        assert!(
            col("event_time", "TIMESTAMP WITH TIME ZONE", Some("BIGINT"))
                .expr()
                .starts_with("CAST(make_timestamp(")
        );
    }
}
