//! The fixed catalogue of what a rule can measure, and the SQL behind each measure. Rules
//! name a measure and filters; identifiers come from this file only and every value a user
//! gives (window, route, model, ...) is a bound parameter, never SQL text.

use std::collections::HashMap;

use duckdb::types::Value;
use serde::{Deserialize, Serialize};

use crate::http::params::present;
use crate::store::{ts_param, StoreError};

/// What the product records, as something a rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    // Web vitals, per page view (milliseconds; CLS unitless).
    Lcp,
    Inp,
    Cls,
    Fcp,
    Ttfb,
    Fid,
    /// JavaScript errors per page view, in percent.
    FrontendErrorRate,
    JsErrors,
    /// 5xx answers of this server and its AI gateway.
    ServerErrors,
    PageViews,
    // AI calls.
    AiLatency,
    AiErrorRate,
    AiCacheHitRate,
    AiTokens,
    AiCost,
    // Query timings.
    DbQueryTime,
    DbSlowQueryRate,
    DbCacheHitRate,
    // Growth.
    ActiveUsers,
    ConversionRate,
    /// Share of sessions with a page view that also saw a JavaScript error, in percent.
    SessionErrorRate,
    // This server's own state.
    /// Free space on the data dir's disk, in percent of its size.
    DiskFree,
    /// 1 while ingest is refused because the data disk is full, else 0.
    DiskFull,
}

/// How a window of samples becomes one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    P50,
    P75,
    P95,
    Avg,
    Max,
    /// A share in percent (the measure's own ratio).
    Rate,
    Count,
}

impl Agg {
    pub const ALL: [Agg; 7] = [
        Agg::P50,
        Agg::P75,
        Agg::P95,
        Agg::Avg,
        Agg::Max,
        Agg::Rate,
        Agg::Count,
    ];
}

/// A label a rule may filter on or split its series by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Route,
    Device,
    Model,
    Fingerprint,
}

impl Dim {
    pub const ALL: [Dim; 4] = [Dim::Route, Dim::Device, Dim::Model, Dim::Fingerprint];

    pub fn name(self) -> &'static str {
        match self {
            Dim::Route => "route",
            Dim::Device => "device",
            Dim::Model => "model",
            Dim::Fingerprint => "fingerprint",
        }
    }
}

/// Equality filters, each on one label; a filter is left out, never `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub route: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub device: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub fingerprint: Option<String>,
}

impl Filters {
    pub fn iter(&self) -> impl Iterator<Item = (Dim, &str)> {
        [
            (Dim::Route, &self.route),
            (Dim::Device, &self.device),
            (Dim::Model, &self.model),
            (Dim::Fingerprint, &self.fingerprint),
        ]
        .into_iter()
        .filter_map(|(d, v)| v.as_deref().map(|v| (d, v)))
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Performance,
    Ai,
    Database,
    Events,
    Conversions,
    Errors,
}

impl Table {
    pub(super) fn name(self) -> &'static str {
        match self {
            Table::Performance => "performance_metrics",
            Table::Ai => "ai_performance_metrics",
            Table::Database => "database_performance_metrics",
            Table::Events => "user_events",
            Table::Conversions => "conversions",
            Table::Errors => "app_errors",
        }
    }

    /// The column (or expression over our own columns) holding a label, if the table has it.
    fn dim(self, d: Dim) -> Option<&'static str> {
        match (self, d) {
            (Table::Performance | Table::Events | Table::Errors, Dim::Route) => Some("route"),
            (Table::Performance | Table::Events, Dim::Device) => Some("device"),
            (Table::Ai, Dim::Model) => Some("model"),
            // Literals out, so one statement's timings share a fingerprint; the database
            // issue's own fingerprints can replace this expression when they land.
            (Table::Database, Dim::Fingerprint) => Some(
                "left(md5(regexp_replace(regexp_replace(lower(query), '''[^'']*''|\\b[0-9]+(\\.[0-9]+)?\\b', '?', 'g'), '\\s+', ' ', 'g')), 16)",
            ),
            _ => None,
        }
    }
}

/// One side of a count: rows of a table meeting a fixed condition, optionally distinct.
#[derive(Debug, Clone, Copy)]
pub struct Count {
    pub(super) table: Table,
    pub(super) cond: &'static str,
    pub(super) distinct: Option<&'static str>,
}

/// How a measure is computed.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// One value per row (`x`); percentiles, average, max over the window.
    Values {
        table: Table,
        x: &'static str,
        /// Web vitals are re-reported: the newest report of a page view counts.
        newest_per_view: bool,
    },
    /// A number of rows (or distinct values).
    Count(Count),
    /// 100 * num / den; the samples are the denominator.
    Ratio { num: Count, den: Count },
    /// Read from this process when the round runs, not from stored rows: a full disk
    /// cannot be seen in rows that could not be written.
    Gauge(Gauge),
}

#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    DiskFree,
    DiskFull,
}

/// The gauges' readings for one round.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readings {
    pub disk_free_percent: Option<f64>,
    pub disk_full: bool,
}

impl Readings {
    fn get(&self, g: Gauge) -> Option<f64> {
        match g {
            Gauge::DiskFree => self.disk_free_percent,
            Gauge::DiskFull => Some(if self.disk_full { 1.0 } else { 0.0 }),
        }
    }
}

const PAGEVIEWS: Count = Count {
    table: Table::Events,
    cond: "event = 'pageview'",
    distinct: None,
};

/// What the catalogue says about one measure.
pub struct Info {
    pub id: &'static str,
    pub area: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub shape: Shape,
}

impl Measure {
    pub const ALL: [Measure; 23] = [
        Measure::Lcp,
        Measure::Inp,
        Measure::Cls,
        Measure::Fcp,
        Measure::Ttfb,
        Measure::Fid,
        Measure::FrontendErrorRate,
        Measure::JsErrors,
        Measure::ServerErrors,
        Measure::PageViews,
        Measure::AiLatency,
        Measure::AiErrorRate,
        Measure::AiCacheHitRate,
        Measure::AiTokens,
        Measure::AiCost,
        Measure::DbQueryTime,
        Measure::DbSlowQueryRate,
        Measure::DbCacheHitRate,
        Measure::ActiveUsers,
        Measure::ConversionRate,
        Measure::SessionErrorRate,
        Measure::DiskFree,
        Measure::DiskFull,
    ];

    pub fn info(self) -> Info {
        use Measure as M;
        let vital = |id, label, x, unit| Info {
            id,
            area: "vitals",
            label,
            unit,
            shape: Shape::Values {
                table: Table::Performance,
                x,
                newest_per_view: true,
            },
        };
        let values = |id, area, label, unit, table, x| Info {
            id,
            area,
            label,
            unit,
            shape: Shape::Values {
                table,
                x,
                newest_per_view: false,
            },
        };
        let count = |id, area, label, unit, table, cond, distinct| Info {
            id,
            area,
            label,
            unit,
            shape: Shape::Count(Count {
                table,
                cond,
                distinct,
            }),
        };
        let gauge = |id, label, unit, g| Info {
            id,
            area: "storage",
            label,
            unit,
            shape: Shape::Gauge(g),
        };
        match self {
            M::Lcp => vital("lcp", "Largest Contentful Paint", "lcp", "ms"),
            M::Inp => vital("inp", "Interaction to Next Paint", "inp", "ms"),
            M::Cls => vital("cls", "Cumulative Layout Shift", "cls", ""),
            M::Fcp => vital("fcp", "First Contentful Paint", "fcp", "ms"),
            M::Ttfb => vital("ttfb", "Time to First Byte", "ttfb", "ms"),
            M::Fid => vital("fid", "First Input Delay", "fid", "ms"),
            M::FrontendErrorRate => Info {
                id: "frontend_error_rate",
                area: "vitals",
                label: "JavaScript errors per page view",
                unit: "%",
                shape: Shape::Ratio {
                    num: Count {
                        table: Table::Errors,
                        cond: "kind = 'js'",
                        distinct: None,
                    },
                    den: PAGEVIEWS,
                },
            },
            M::JsErrors => count(
                "js_errors",
                "vitals",
                "JavaScript errors",
                "errors",
                Table::Errors,
                "kind = 'js'",
                None,
            ),
            M::ServerErrors => count(
                "server_errors",
                "vitals",
                "Server errors (5xx, gateway included)",
                "errors",
                Table::Errors,
                "kind = 'server'",
                None,
            ),
            M::PageViews => count(
                "page_views",
                "growth",
                "Page views",
                "views",
                Table::Events,
                "event = 'pageview'",
                None,
            ),
            M::AiLatency => values(
                "ai_latency",
                "ai",
                "AI response time",
                "ms",
                Table::Ai,
                "duration",
            ),
            M::AiErrorRate => values(
                "ai_error_rate",
                "ai",
                "AI error rate",
                "%",
                Table::Ai,
                "CASE WHEN success THEN 0.0 ELSE 100.0 END",
            ),
            M::AiCacheHitRate => values(
                "ai_cache_hit_rate",
                "ai",
                "AI cache hit rate",
                "%",
                Table::Ai,
                "CASE WHEN cache_hit THEN 100.0 ELSE 0.0 END",
            ),
            M::AiTokens => values(
                "ai_tokens",
                "ai",
                "AI tokens per request",
                "tokens",
                Table::Ai,
                "tokens::DOUBLE",
            ),
            M::AiCost => values(
                "ai_cost",
                "ai",
                "AI cost per request",
                "USD",
                Table::Ai,
                "cost",
            ),
            M::DbQueryTime => values(
                "db_query_time",
                "database",
                "Query time",
                "ms",
                Table::Database,
                "duration",
            ),
            M::DbSlowQueryRate => values(
                "db_slow_query_rate",
                "database",
                "Slow query rate",
                "%",
                Table::Database,
                "CASE WHEN duration > $slow THEN 100.0 ELSE 0.0 END",
            ),
            M::DbCacheHitRate => values(
                "db_cache_hit_rate",
                "database",
                "Query cache hit rate",
                "%",
                Table::Database,
                "CASE WHEN cached THEN 100.0 ELSE 0.0 END",
            ),
            M::ActiveUsers => count(
                "active_users",
                "growth",
                "Active users",
                "users",
                Table::Events,
                "visitor_id IS NOT NULL",
                Some("visitor_id"),
            ),
            M::ConversionRate => Info {
                id: "conversion_rate",
                area: "growth",
                label: "Conversion rate (converting / active users)",
                unit: "%",
                shape: Shape::Ratio {
                    num: Count {
                        table: Table::Conversions,
                        cond: "visitor_id IS NOT NULL",
                        distinct: Some("visitor_id"),
                    },
                    den: Count {
                        table: Table::Events,
                        cond: "visitor_id IS NOT NULL",
                        distinct: Some("visitor_id"),
                    },
                },
            },
            M::SessionErrorRate => Info {
                id: "session_error_rate",
                area: "growth",
                label: "Sessions that saw a JavaScript error",
                unit: "%",
                shape: Shape::Ratio {
                    num: Count {
                        table: Table::Errors,
                        cond: "kind = 'js' AND session_id IS NOT NULL",
                        distinct: Some("session_id"),
                    },
                    den: Count {
                        table: Table::Events,
                        cond: "event = 'pageview' AND session_id IS NOT NULL",
                        distinct: Some("session_id"),
                    },
                },
            },
            M::DiskFree => gauge(
                "disk_free",
                "Free space on the data disk",
                "%",
                Gauge::DiskFree,
            ),
            M::DiskFull => gauge(
                "disk_full",
                "Ingest refused: data disk full (1) or not (0)",
                "",
                Gauge::DiskFull,
            ),
        }
    }

    /// The aggregation a rule gets when it names none.
    pub fn default_agg(self) -> Agg {
        match self.info().shape {
            Shape::Values { x, .. } if x.starts_with("CASE") => Agg::Rate,
            Shape::Values {
                table: Table::Performance,
                ..
            } => Agg::P75,
            Shape::Values { .. } | Shape::Gauge(_) => Agg::Avg,
            Shape::Count(_) => Agg::Count,
            Shape::Ratio { .. } => Agg::Rate,
        }
    }

    pub fn allows(self, agg: Agg) -> bool {
        match self.info().shape {
            Shape::Values { x, .. } if x.starts_with("CASE") => {
                matches!(agg, Agg::Rate | Agg::Count)
            }
            Shape::Values { .. } => agg != Agg::Rate,
            Shape::Count(_) => agg == Agg::Count,
            Shape::Ratio { .. } => matches!(agg, Agg::Rate | Agg::Count),
            // One reading: every statistic of it is the reading itself.
            Shape::Gauge(_) => matches!(agg, Agg::Avg | Agg::Max),
        }
    }

    /// Whether every table behind the measure has this label.
    pub fn has_dim(self, d: Dim) -> bool {
        let tables = self.tables();
        !tables.is_empty() && tables.iter().all(|t| t.dim(d).is_some())
    }

    fn tables(self) -> Vec<Table> {
        match self.info().shape {
            Shape::Values { table, .. } => vec![table],
            Shape::Count(c) => vec![c.table],
            Shape::Ratio { num, den } => vec![num.table, den.table],
            Shape::Gauge(_) => Vec::new(),
        }
    }

    /// Counts and gauges are judged at any size; other measures need enough samples.
    pub fn needs_samples(self) -> bool {
        !matches!(self.info().shape, Shape::Count(_) | Shape::Gauge(_))
    }

    #[cfg(test)]
    pub fn from_id(id: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.info().id == id)
    }
}

/// One query's worth of work: a measure over a time range, filtered, maybe split by a label
/// and into buckets. Rules that need the same key share one query.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub measure: Measure,
    pub filters: Filters,
    pub group_by: Option<Dim>,
    pub from_us: i64,
    pub to_us: i64,
    /// Bucket length in microseconds, for previews and baselines; `None` is one bucket.
    pub bucket_us: Option<i64>,
}

/// One group's numbers over its window (or bucket).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// The series label value (route, model, ...), `None` when not split.
    pub group: Option<String>,
    /// Start of the bucket, epoch microseconds (the window's start when not bucketed).
    pub bucket_us: i64,
    /// Samples: rows, page views or sessions behind the value.
    pub n: f64,
    pub avg: Option<f64>,
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

impl Stats {
    pub fn get(&self, agg: Agg) -> Option<f64> {
        match agg {
            Agg::P50 => self.p50,
            Agg::P75 => self.p75,
            Agg::P95 => self.p95,
            Agg::Avg | Agg::Rate => self.avg,
            Agg::Max => self.max,
            Agg::Count => Some(self.n),
        }
    }
}

fn where_clause(
    table: Table,
    cond: &str,
    key: &Key,
    params: &mut Vec<Value>,
) -> Result<String, StoreError> {
    let mut w = String::from("created_at >= ? AND created_at < ?");
    params.push(ts_param(key.from_us));
    params.push(ts_param(key.to_us));
    if !cond.is_empty() {
        w.push_str(" AND ");
        w.push_str(cond);
    }
    for (d, v) in key.filters.iter() {
        let col = table
            .dim(d)
            .ok_or_else(|| StoreError::Internal(format!("{} has no {}", table.name(), d.name())))?;
        w.push_str(&format!(" AND {col} = ?"));
        params.push(Value::Text(v.to_string()));
    }
    Ok(w)
}

fn group_expr(table: Table, key: &Key) -> Result<String, StoreError> {
    match key.group_by {
        None => Ok("NULL::VARCHAR".into()),
        Some(d) => table
            .dim(d)
            .map(|c| format!("{c}::VARCHAR"))
            .ok_or_else(|| StoreError::Internal(format!("{} has no {}", table.name(), d.name()))),
    }
}

fn bucket_expr(key: &Key) -> String {
    match key.bucket_us {
        // An integer of our own, not input text.
        Some(b) => format!("(epoch_us(created_at) // {b}) * {b}"),
        None => format!("{}::BIGINT", key.from_us),
    }
}

fn count_sql(c: Count, key: &Key, params: &mut Vec<Value>) -> Result<String, StoreError> {
    let w = where_clause(c.table, c.cond, key, params)?;
    let k = match c.distinct {
        Some(col) => format!("count(DISTINCT {col})"),
        None => "count(*)".into(),
    };
    Ok(format!(
        "SELECT {g} AS g, {b} AS b, {k}::DOUBLE AS k FROM {t} WHERE {w} GROUP BY ALL",
        g = group_expr(c.table, key)?,
        b = bucket_expr(key),
        t = c.table.name(),
    ))
}

/// The statement and its parameters; columns: g, b, n, avg, p50, p75, p95, max.
pub fn sql(key: &Key, slow_ms: f64) -> Result<(String, Vec<Value>), StoreError> {
    let mut params = Vec::new();
    let sql = match key.measure.info().shape {
        Shape::Values {
            table,
            x,
            newest_per_view,
        } => {
            let x = format!("({})::DOUBLE", x.replace("$slow", &format!("{slow_ms:?}")));
            let cond = format!("{x} IS NOT NULL");
            let w = where_clause(table, &cond, key, &mut params)?;
            let g = group_expr(table, key)?;
            let b = bucket_expr(key);
            let inner = if newest_per_view {
                // A page view's metric can be reported again (CLS, INP grow): its newest
                // report counts, as in the Performance page.
                format!(
                    "SELECT {g} AS g, {b} AS b, max_by({x}, created_at) AS x FROM {t} WHERE {w} \
                     GROUP BY coalesce(metric_id, id::VARCHAR), coalesce(metric, ''), 1, 2",
                    t = table.name()
                )
            } else {
                format!(
                    "SELECT {g} AS g, {b} AS b, {x} AS x FROM {t} WHERE {w}",
                    t = table.name()
                )
            };
            format!(
                "SELECT g, b, count(*)::DOUBLE, avg(x), quantile_cont(x, 0.5), \
                 quantile_cont(x, 0.75), quantile_cont(x, 0.95), max(x) FROM ({inner}) GROUP BY g, b"
            )
        }
        Shape::Count(c) => {
            let q = count_sql(c, key, &mut params)?;
            format!("SELECT g, b, k, k, k, k, k, k FROM ({q})")
        }
        Shape::Ratio { num, den } => {
            let n = count_sql(num, key, &mut params)?;
            let d = count_sql(den, key, &mut params)?;
            format!(
                "WITH num AS ({n}), den AS ({d}), r AS ( \
                   SELECT coalesce(den.g, num.g) AS g, coalesce(den.b, num.b) AS b, \
                          coalesce(den.k, 0) AS n, \
                          CASE WHEN coalesce(den.k, 0) > 0 THEN least(100.0, 100.0 * coalesce(num.k, 0) / den.k) END AS v \
                   FROM den FULL JOIN num ON den.g IS NOT DISTINCT FROM num.g AND den.b = num.b) \
                 SELECT g, b, n, v, v, v, v, v FROM r"
            )
        }
        Shape::Gauge(_) => {
            return Err(StoreError::Internal(
                "a gauge is read from the process, not queried".into(),
            ))
        }
    };
    Ok((sql, params))
}

/// A gauge key's answer: one sample, the reading, in the key's newest bucket; `None`
/// for a key that is not a gauge (it is queried).
pub fn gauge(key: &Key, readings: Readings) -> Option<Vec<Stats>> {
    let Shape::Gauge(g) = key.measure.info().shape else {
        return None;
    };
    let rows = readings.get(g).map(|v| Stats {
        group: None,
        bucket_us: match key.bucket_us {
            Some(b) => (key.to_us - 1).div_euclid(b) * b,
            None => key.from_us,
        },
        n: 1.0,
        avg: Some(v),
        p50: Some(v),
        p75: Some(v),
        p95: Some(v),
        max: Some(v),
    });
    Some(rows.into_iter().collect())
}

/// Runs every key once; the answers by key. Gauges give one sample, the reading, in
/// the key's newest bucket.
pub fn run(
    conn: &duckdb::Connection,
    keys: &[Key],
    slow_ms: f64,
    readings: Readings,
) -> Result<HashMap<Key, Vec<Stats>>, StoreError> {
    let mut out = HashMap::with_capacity(keys.len());
    for key in keys {
        if out.contains_key(key) {
            continue;
        }
        if let Some(rows) = gauge(key, readings) {
            out.insert(key.clone(), rows);
            continue;
        }
        let (sql, params) = sql(key, slow_ms)?;
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(duckdb::params_from_iter(params.iter()), |r| {
                Ok(Stats {
                    group: r.get(0)?,
                    bucket_us: r.get(1)?,
                    n: r.get::<_, Option<f64>>(2)?.unwrap_or(0.0),
                    avg: r.get(3)?,
                    p50: r.get(4)?,
                    p75: r.get(5)?,
                    p95: r.get(6)?,
                    max: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(key.clone(), rows);
    }
    Ok(out)
}

/// The catalogue as the rule editor shows it.
#[derive(Debug, Serialize)]
pub struct CatalogueEntry {
    pub id: &'static str,
    pub area: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub default_aggregation: Agg,
    pub aggregations: Vec<Agg>,
    pub dimensions: Vec<&'static str>,
}

pub fn catalogue() -> Vec<CatalogueEntry> {
    Measure::ALL
        .into_iter()
        .map(|m| {
            let i = m.info();
            CatalogueEntry {
                id: i.id,
                area: i.area,
                label: i.label,
                unit: i.unit,
                default_aggregation: m.default_agg(),
                aggregations: Agg::ALL.into_iter().filter(|a| m.allows(*a)).collect(),
                dimensions: Dim::ALL
                    .into_iter()
                    .filter(|d| m.has_dim(*d))
                    .map(Dim::name)
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_measure_builds_sql_with_bound_filters() {
        for m in Measure::ALL {
            if let Shape::Gauge(_) = m.info().shape {
                assert!(Dim::ALL.into_iter().all(|d| !m.has_dim(d)), "{m:?}");
                continue;
            }
            let mut filters = Filters::default();
            if m.has_dim(Dim::Route) {
                filters.route = Some("'; DROP TABLE user_events; --".into());
            }
            let key = Key {
                measure: m,
                filters,
                group_by: Dim::ALL.into_iter().find(|d| m.has_dim(*d)),
                from_us: 0,
                to_us: 1,
                bucket_us: Some(3_600_000_000),
            };
            let (sql, params) = sql(&key, 1000.0).unwrap();
            assert!(!sql.contains("DROP TABLE"), "{sql}");
            assert!(params.len() >= 2);
            assert_eq!(Measure::from_id(m.info().id), Some(m));
            assert!(m.allows(m.default_agg()), "{m:?}");
        }
    }
}
