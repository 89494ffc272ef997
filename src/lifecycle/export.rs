//! Export and import of one stream as Parquet, CSV or JSON Lines, written and read by
//! DuckDB's own `COPY` and readers. Column names are the tables' (the guide's).

use std::path::Path;
use std::str::FromStr;

use crate::store::profiles::TOP_SEQ;
use crate::store::{Store, StoreError, Stream};

/// A file format for export and import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Parquet,
    Csv,
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Parquet, Format::Csv, Format::Jsonl];

    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Jsonl => "application/x-ndjson",
        }
    }

    pub(super) fn copy_options(self) -> &'static str {
        match self {
            Format::Parquet => "FORMAT parquet, COMPRESSION zstd",
            Format::Csv => "FORMAT csv, HEADER true",
            Format::Jsonl => "FORMAT json",
        }
    }

    /// DuckDB's reader of this format, for import.
    fn reader(self) -> &'static str {
        match self {
            Format::Parquet => "read_parquet",
            Format::Csv => "read_csv",
            Format::Jsonl => "read_json",
        }
    }

    /// The format a file name's extension names.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" | "json" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "parquet" => Ok(Format::Parquet),
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            _ => Err(format!("{s:?} is not a format; one of parquet, csv, jsonl")),
        }
    }
}

/// Which rows: `[from, to)` by the stream's age column, in microseconds; open ends allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
}

/// A path as a SQL string literal. Paths are ours (data dir, a CLI argument), but a quote
/// in one must still not end the literal.
pub fn sql_path(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}

/// The `SELECT` of a stream's rows in `span`: every column but the writer's internal ones.
fn select(stream: Stream, span: Span) -> String {
    let (table, age) = (stream.table(), stream.age_column());
    let columns = match stream {
        // `seq` is the writer's commit-order number; an import numbers rows afresh.
        Stream::Events | Stream::Ai | Stream::Database => "* EXCLUDE (seq)",
        _ => "*",
    };
    // Numbers we computed, never text from a request.
    let mut cond = Vec::new();
    if let Some(f) = span.from_us {
        cond.push(format!("{age} >= make_timestamp({f}::BIGINT)"));
    }
    if let Some(t) = span.to_us {
        cond.push(format!("{age} < make_timestamp({t}::BIGINT)"));
    }
    let filter = if cond.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", cond.join(" AND "))
    };
    format!("SELECT {columns} FROM {table}{filter}")
}

/// `super::export_to` on DuckDB: one `COPY` statement, so the file is one consistent
/// snapshot even while ingest continues.
pub(super) async fn export_duckdb(
    store: &Store,
    stream: Stream,
    format: Format,
    span: Span,
    out: &Path,
) -> Result<u64, StoreError> {
    let sql = format!(
        "COPY ({}) TO {} ({})",
        select(stream, span),
        sql_path(out),
        format.copy_options()
    );
    store.query(move |c| Ok(c.execute(&sql, [])? as u64)).await
}

/// Appends a file written by `super::export_to` (or any file with the table's column names) to
/// the stream. Rows whose `id` is already stored are skipped, so importing the same file
/// twice adds nothing; events are numbered after the stored ones. Returns rows added.
pub async fn import_from(
    store: &Store,
    stream: Stream,
    format: Format,
    file: &Path,
) -> Result<u64, StoreError> {
    let table = stream.table();
    let source = format!("{}({})", format.reader(), sql_path(file));
    let has_id = !matches!(stream, Stream::System | Stream::Recommendations);
    let fresh = if has_id {
        format!(" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = src.id)")
    } else {
        String::new()
    };
    let sql = match stream {
        // Numbered after every stored row, so the roll-ups and profiles fold them in.
        Stream::Events | Stream::Ai | Stream::Database => format!(
            "INSERT INTO {table} BY NAME \
             SELECT COLUMNS(lambda c: c <> 'seq'), (SELECT {TOP_SEQ}) + row_number() OVER () AS seq \
             FROM {source} src{fresh}"
        ),
        _ => format!("INSERT INTO {table} BY NAME SELECT * FROM {source} src{fresh}"),
    };
    store
        .maintain(move |c| {
            c.execute_batch("BEGIN TRANSACTION")?;
            match c.execute(&sql, []) {
                Ok(n) => {
                    c.execute_batch("COMMIT")?;
                    Ok(n as u64)
                }
                Err(e) => {
                    let _ = c.execute_batch("ROLLBACK");
                    Err(e.into())
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_spans() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert_eq!(
            Format::from_path(Path::new("/x/e.PARQUET")),
            Some(Format::Parquet)
        );
        assert!("xml".parse::<Format>().is_err());
        let all = select(Stream::Ai, Span::default());
        assert_eq!(all, "SELECT * EXCLUDE (seq) FROM ai_performance_metrics");
        let some = select(
            Stream::Events,
            Span {
                from_us: Some(1),
                to_us: Some(2),
            },
        );
        assert!(
            some.contains("EXCLUDE (seq)")
                && some.contains("event_time < make_timestamp(2::BIGINT)"),
            "{some}"
        );
        assert_eq!(sql_path(Path::new("/a'b")), "'/a''b'");
    }
}
