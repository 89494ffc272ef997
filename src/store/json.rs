//! Query results as JSON objects, for read endpoints that return rows as they are stored.

use chrono::DateTime;
use duckdb::types::{TimeUnit, ValueRef};
use duckdb::{Connection, Params};
use serde_json::{Map, Value};

use super::StoreError;

pub type JsonRow = Map<String, Value>;

/// Runs `sql` and turns each row into an object keyed by column name. Columns named in
/// `json_columns` hold JSON text and are embedded as JSON rather than as strings.
pub fn query_json<P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    json_columns: &[&str],
) -> Result<Vec<JsonRow>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let names: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut obj = Map::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let value = to_json(row.get_ref(i)?);
            let value = match value {
                Value::String(s) if json_columns.contains(&name.as_str()) => {
                    serde_json::from_str(&s).unwrap_or(Value::String(s))
                }
                v => v,
            };
            obj.insert(name.clone(), value);
        }
        out.push(obj);
    }
    Ok(out)
}

fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Boolean(b) => Value::Bool(b),
        ValueRef::TinyInt(n) => n.into(),
        ValueRef::SmallInt(n) => n.into(),
        ValueRef::Int(n) => n.into(),
        ValueRef::BigInt(n) => n.into(),
        ValueRef::HugeInt(n) => {
            i64::try_from(n).map_or_else(|_| Value::String(n.to_string()), Value::from)
        }
        ValueRef::UTinyInt(n) => n.into(),
        ValueRef::USmallInt(n) => n.into(),
        ValueRef::UInt(n) => n.into(),
        ValueRef::UBigInt(n) => n.into(),
        ValueRef::Float(f) => finite(f64::from(f)),
        ValueRef::Double(f) => finite(f),
        ValueRef::Timestamp(unit, t) => {
            let us = unit.to_micros(t);
            DateTime::from_timestamp_micros(us).map_or(Value::Null, |d| {
                Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            })
        }
        ValueRef::Text(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        other => Value::String(format!("{other:?}")),
    }
}

fn finite(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Microseconds as a DuckDB timestamp parameter.
pub fn ts_param(us: i64) -> duckdb::types::Value {
    duckdb::types::Value::Timestamp(TimeUnit::Microsecond, us)
}

/// Rows of `table` whose `column` falls in `[from_us, to_us)`. `table` and `column` come
/// from our own constants, never from input.
pub fn count_between(
    conn: &Connection,
    table: &str,
    column: &str,
    from_us: i64,
    to_us: i64,
) -> Result<u64, StoreError> {
    Ok(conn.query_row(
        &format!("SELECT count(*) FROM {table} WHERE {column} >= ? AND {column} < ?"),
        duckdb::params![ts_param(from_us), ts_param(to_us)],
        |r| r.get(0),
    )?)
}

/// The UTC days (day numbers `[d0, d1)`) of `[from_us, to_us)` that a roll-up by day of
/// `table`'s event time can serve whole: the days inside the window, widened by an edge
/// day whose part outside the window holds no row (a window ending now then needs no
/// read of today's rows). Empty when `d1 <= d0`.
pub fn rolled_days(
    conn: &Connection,
    table: &str,
    from_us: i64,
    to_us: i64,
) -> Result<(i64, i64), StoreError> {
    const DAY_US: i64 = 86_400_000_000;
    let first = from_us.div_euclid(DAY_US);
    let (mut d0, mut d1) = (
        first + i64::from(from_us.rem_euclid(DAY_US) != 0),
        to_us.div_euclid(DAY_US),
    );
    if first < d0 && count_between(conn, table, "event_time", first * DAY_US, from_us)? == 0 {
        d0 = first;
    }
    if to_us.rem_euclid(DAY_US) != 0
        && count_between(conn, table, "event_time", to_us, (d1 + 1) * DAY_US)? == 0
    {
        d1 += 1;
    }
    Ok((d0, d1))
}

/// What a windowed read covers: event times `[from_us, to_us)`, chart buckets of
/// `bucket_us`, and one page (`limit`, `offset`) of the newest rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from_us: i64,
    pub to_us: i64,
    pub bucket_us: i64,
    pub limit: u32,
    pub offset: u32,
}

/// The newest rows of `table` by event time in the span, newest first, one page of them.
/// `table` and `columns` come from our own constants, never from input.
pub fn newest_rows(
    conn: &Connection,
    table: &str,
    columns: &str,
    json_columns: &[&str],
    span: &Span,
) -> Result<Vec<JsonRow>, StoreError> {
    let Span {
        mut from_us,
        to_us,
        limit,
        offset,
        ..
    } = *span;
    let skip = u64::from(limit) + u64::from(offset);
    if skip > 0 {
        from_us = recent_enough(conn, table, from_us, to_us, skip)?;
    }
    // The page's oldest event time first, from that one narrow column: then the wide
    // rows are read only from the row groups at or after it (zone maps), not the window's.
    let oldest: Option<i64> = if skip == 0 {
        None
    } else {
        conn.query_row(
            &format!(
                "SELECT epoch_us(event_time::TIMESTAMP) FROM {table} WHERE event_time >= ? AND event_time < ? \
                 ORDER BY event_time DESC LIMIT 1 OFFSET ?"
            ),
            duckdb::params![ts_param(from_us), ts_param(to_us), skip - 1],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            duckdb::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?
    };
    let from_us = oldest.map_or(from_us, |t| t.max(from_us));
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE event_time >= ? AND event_time < ? \
         ORDER BY event_time DESC, id LIMIT ? OFFSET ?"
    );
    query_json(
        conn,
        &sql,
        duckdb::params![ts_param(from_us), ts_param(to_us), limit, offset],
        json_columns,
    )
}

/// Where the page of `skip` newest rows can start looking: the last hour or day of the
/// window when it already holds them, so a 30-day window does not sort 30 days of times.
fn recent_enough(
    conn: &Connection,
    table: &str,
    from_us: i64,
    to_us: i64,
    skip: u64,
) -> Result<i64, StoreError> {
    const HOUR_US: i64 = 3_600_000_000;
    for span in [HOUR_US, 24 * HOUR_US] {
        let from = (to_us - span).max(from_us);
        let n = count_between(conn, table, "event_time", from, to_us)?;
        if n >= skip || from == from_us {
            return Ok(from);
        }
    }
    Ok(from_us)
}

/// Rows per event-time bucket of the span, oldest first; `t` is the bucket's start.
/// `aggregates` is our own SQL, never input.
pub fn series(
    conn: &Connection,
    table: &str,
    aggregates: &str,
    span: &Span,
) -> Result<Vec<JsonRow>, StoreError> {
    let (from_us, to_us) = (span.from_us, span.to_us);
    let bucket_us = span.bucket_us.max(1);
    // Cast to plain TIMESTAMP first: the bundled DuckDB has no ICU, and epoch_us on a
    // TIMESTAMPTZ needs it. Stored values are UTC, so the cast changes nothing.
    let sql = format!(
        "SELECT make_timestamp((epoch_us(event_time::TIMESTAMP) // {bucket_us}) * {bucket_us}) AS t, {aggregates} \
         FROM {table} WHERE event_time >= ? AND event_time < ? GROUP BY 1 ORDER BY 1"
    );
    query_json(
        conn,
        &sql,
        duckdb::params![ts_param(from_us), ts_param(to_us)],
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER, v DOUBLE, props JSON, event_time TIMESTAMPTZ)",
        )
        .unwrap();
        let base = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
        let mut app = conn.appender("t").unwrap();
        for i in 0..6i64 {
            let props = format!(r#"{{"i":{i}}}"#);
            app.append_row(duckdb::params![
                i,
                i as f64 * 1.5,
                props,
                ts_param(base + i * HOUR / 2)
            ])
            .unwrap();
        }
        app.flush().unwrap();
        drop(app);
        conn
    }

    #[test]
    fn window_and_page_of_newest_rows() {
        let conn = db();
        let base = 1_767_225_600_000_000;
        let span = |limit, offset| Span {
            from_us: base,
            to_us: base + 2 * HOUR,
            bucket_us: HOUR,
            limit,
            offset,
        };
        let rows =
            newest_rows(&conn, "t", "id, props, event_time", &["props"], &span(3, 1)).unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(
            ids,
            [2, 1, 0],
            "window [0h, 2h) holds ids 0..=3, newest first, offset 1"
        );
        assert_eq!(rows[0]["props"]["i"], 2);
        assert_eq!(rows[0]["event_time"], "2026-01-01T01:00:00.000Z");
        // A page reaching past the window's rows: what there is.
        let rows = newest_rows(&conn, "t", "id", &[], &span(10, 2)).unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, [1, 0]);
    }

    #[test]
    fn series_buckets_by_hour() {
        let conn = db();
        let base = 1_767_225_600_000_000;
        let span = Span {
            from_us: base,
            to_us: base + 10 * HOUR,
            bucket_us: HOUR,
            limit: 0,
            offset: 0,
        };
        let s = series(&conn, "t", "count(*) AS n, sum(v) AS total", &span).unwrap();
        let got: Vec<(String, i64)> = s
            .iter()
            .map(|r| {
                (
                    r["t"].as_str().unwrap().to_string(),
                    r["n"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("2026-01-01T00:00:00.000Z".to_string(), 2),
                ("2026-01-01T01:00:00.000Z".to_string(), 2),
                ("2026-01-01T02:00:00.000Z".to_string(), 2),
            ]
        );
        assert_eq!(s[2]["total"], 6.0 + 7.5);
    }
}
