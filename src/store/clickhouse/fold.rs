//! What the capabilities' ClickHouse reads share: DuckDB's interpolated percentile in
//! ClickHouse SQL, and ClickHouse's JSONEachRow values read back as DuckDB's JSON shows
//! them, so both engines' answers compare equal.

use serde_json::{Map, Value};

use super::{iso_us, ChError, ClickHouse};
use crate::store::JsonRow;

/// DuckDB's `quantile_cont(col, q)` (only rows where `cond` holds): the sorted values'
/// linear interpolation at `(n - 1) * q`, exact; NULL for no values. ClickHouse's own
/// functions differ: `quantile` samples 8192 values, `quantileExact` returns a value of
/// the set without interpolating, `quantileExactInclusive` interpolates but does not exist
/// on 18.16. Like DuckDB's (and `quantileExact`), this holds a group's values in memory.
pub fn quantile_cont_if(col: &str, cond: &str, q: f64) -> String {
    let s = if cond == "1" {
        format!("arraySort(groupArray({col}))")
    } else {
        format!("arraySort(groupArrayIf({col}, {cond}))")
    };
    interpolate(&s, q)
}

/// `quantile_cont` over the sorted array `s`, bit for bit as DuckDB computes it
/// (`lo * (1 - d) + hi * d`; the algebraically equal `lo + d * (hi - lo)` differs in the
/// last bit), sent as text (`toString`) because JSON numbers are not parsed exactly: read
/// it with `float` or `value(.., Kind::Float)`. `q` is our own constant.
pub fn interpolate(s: &str, q: f64) -> String {
    let rn = format!("(toFloat64(greatest(length({s}), 1) - 1) * {q:?})");
    format!(
        "toString(if(length({s}) = 0, NULL, \
         {s}[toUInt64(floor({rn})) + 1] * (1 - ({rn} - floor({rn}))) + {s}[toUInt64(ceil({rn})) + 1] * ({rn} - floor({rn}))))"
    )
}

/// `quantile_cont(col, q)` at each of `qs` over the one group `FROM from WHERE cond`, the
/// same numbers as `quantile_cont_if`, without sorting every value into one array (over
/// 11.8M query timings that took 9.7 s, `quantileExact` 0.6 s): the rows are counted first,
/// then `quantilesExact` picks the values at the two ranks around each `(n - 1) * q`
/// (its level `l` gives the value at 0-based rank `floor(l * n)`, so `(k + 0.5) / n` is rank
/// `k`), and they are interpolated here as DuckDB does. For totals and headlines; groups
/// still use `quantile_cont_if`.
pub async fn quantiles_cont(
    ch: &ClickHouse,
    col: &str,
    cond: &str,
    from: &str,
    qs: &[f64],
) -> Result<Vec<Option<f64>>, ChError> {
    let mut all = quantiles_cont_of(ch, from, &[(col, cond, qs)]).await?;
    Ok(all.pop().map(|(_, values)| values).unwrap_or_default())
}

/// The 0-based ranks below and above `(n - 1) * q`, and the weight of the one above.
type Ranks = (u64, u64, f64);

/// `quantiles_cont` for several `(col, cond, qs)` over one `from`, in two scans in all;
/// each with the number of values it was taken over.
pub async fn quantiles_cont_of(
    ch: &ClickHouse,
    from: &str,
    specs: &[(&str, &str, &[f64])],
) -> Result<Vec<(u64, Vec<Option<f64>>)>, ChError> {
    let kept = |col: &str, cond: &str| format!("isNotNull({col}) AND {cond}");
    let counts: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, (col, cond, _))| format!("countIf({}) AS n{i}", kept(col, cond)))
        .collect();
    let counted: Value = ch
        .row(&format!("SELECT {} FROM {from}", counts.join(", ")))
        .await?;
    // Per spec: its row count and, per q, the two ranks and the weight between them.
    let plans: Vec<(u64, Vec<Ranks>)> = specs
        .iter()
        .enumerate()
        .map(|(i, (_, _, qs))| {
            let n = count(&counted, &format!("n{i}"));
            let ranks = qs
                .iter()
                .map(|q| {
                    let rn = n.saturating_sub(1) as f64 * q;
                    (rn.floor() as u64, rn.ceil() as u64, rn - rn.floor())
                })
                .collect();
            (n, ranks)
        })
        .collect();
    let picks: Vec<String> = specs
        .iter()
        .zip(&plans)
        .enumerate()
        .filter(|(_, (_, (n, _)))| *n > 0)
        .map(|(i, ((col, cond, _), (n, ranks)))| {
            let levels: Vec<String> = ranks
                .iter()
                .flat_map(|(lo, hi, _)| [*lo, *hi])
                .map(|k| format!("{:?}", (k as f64 + 0.5) / *n as f64))
                .collect();
            format!(
                "arrayMap(x -> toString(x), quantilesExactIf({})({col}, {})) AS v{i}",
                levels.join(", "),
                kept(col, cond)
            )
        })
        .collect();
    let picked: Value = if picks.is_empty() {
        Value::Null
    } else {
        ch.row(&format!("SELECT {} FROM {from}", picks.join(", ")))
            .await?
    };
    plans
        .iter()
        .enumerate()
        .map(|(i, (n, ranks))| {
            if *n == 0 {
                return Ok((0, vec![None; ranks.len()]));
            }
            let values: Vec<f64> = picked[format!("v{i}")]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
                .unwrap_or_default();
            if values.len() != 2 * ranks.len() {
                return Err(ChError::Decode(format!("quantilesExact gave {picked}")));
            }
            let at = ranks
                .iter()
                .enumerate()
                .map(|(k, (_, _, d))| {
                    let (lo, hi) = (values[2 * k], values[2 * k + 1]);
                    Some(lo * (1.0 - d) + hi * d)
                })
                .collect();
            Ok((*n, at))
        })
        .collect()
}

/// `quantile_cont(col, q)` over every row of the group.
pub fn quantile_cont(col: &str, q: f64) -> String {
    quantile_cont_if(col, "1", q)
}

/// How a column shows in DuckDB's JSON (`store::json::query_json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Strings and integers: as ClickHouse writes them.
    Same,
    /// DOUBLE: always a JSON float (ClickHouse writes 3.0 as `3`).
    Float,
    /// BOOLEAN, stored as UInt8.
    Bool,
    /// TIMESTAMPTZ, stored as UInt64 µs: RFC 3339 with milliseconds.
    Time,
}

/// One value as DuckDB's JSON shows it.
pub fn value(v: &Value, kind: Kind) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match kind {
        Kind::Same => v.clone(),
        Kind::Float => as_f64(v)
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Kind::Bool => Value::Bool(v.as_u64().is_some_and(|b| b != 0)),
        Kind::Time => Value::String(iso_us(v.as_i64().unwrap_or(0))),
    }
}

/// A row of `columns`, in their order, as DuckDB's JSON shows it.
pub fn json_row(v: &Value, columns: &[(&str, Kind)]) -> JsonRow {
    let mut m = Map::with_capacity(columns.len());
    for &(name, kind) in columns {
        m.insert(name.to_string(), value(&v[name], kind));
    }
    m
}

/// A count (UInt64; 0 when absent).
pub fn count(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

/// A DOUBLE that may be NULL (an average of nothing).
pub fn float(v: &Value, k: &str) -> Option<f64> {
    as_f64(&v[k])
}

/// A JSON number, or a float ClickHouse sent as text (`toString`), parsed exactly.
fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        _ => v.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_sql_names_its_parts() {
        let sql = quantile_cont_if("ttft", "ifNull(stream, 0) = 1", 0.5);
        assert!(
            sql.contains("groupArrayIf(ttft, ifNull(stream, 0) = 1)"),
            "{sql}"
        );
        assert!(sql.contains("* 0.5)"), "{sql}");
        assert!(quantile_cont("duration", 0.95).contains("groupArray(duration)"));
    }

    #[test]
    fn values_read_as_duckdb_shows_them() {
        let row = serde_json::json!({ "a": 3, "b": 1, "c": 1_700_000_000_123_456u64, "d": null, "e": "x" });
        let r = json_row(
            &row,
            &[
                ("a", Kind::Float),
                ("b", Kind::Bool),
                ("c", Kind::Time),
                ("d", Kind::Float),
                ("e", Kind::Same),
            ],
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"a":3.0,"b":true,"c":"2023-11-14T22:13:20.123Z","d":null,"e":"x"}"#
        );
    }
}
