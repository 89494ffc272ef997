-- Web-vitals samples on ClickHouse: `performance_metrics`, one row per report as in DuckDB
-- (migrations 0001, 0003, 0005, 0013); reads keep each (metric_id, metric)'s newest report.
-- Times as in 0001_streams.sql: UInt64 microseconds plus the DateTime twin `event_at`,
-- which the writer sends. `route` and `device` are '' where DuckDB has NULL (ingest never
-- stores '' for either): they lead the sort key after the day, because reads filter on
-- them, and sort-key columns must not be Nullable on current releases. The hash of the
-- metric instance (the row's own id when it has none) is the sampling key and, under
-- Distributed tables, the sharding key: every report of one instance lands on one shard.
CREATE TABLE IF NOT EXISTS {db}.performance_metrics{local}{on_cluster} (
  id String,
  user_id Nullable(String),
  session_id Nullable(String),
  route String,
  path Nullable(String),
  device String,
  lcp Nullable(Float64),
  inp Nullable(Float64),
  cls Nullable(Float64),
  fcp Nullable(Float64),
  ttfb Nullable(Float64),
  fid Nullable(Float64),
  metric Nullable(String),
  metric_id Nullable(String),
  rereport UInt8,
  navigation_type Nullable(String),
  attribution Nullable(String),
  user_agent Nullable(String),
  connection Nullable(String),
  ip Nullable(String),
  timestamp Int64,
  created_at UInt64,
  event_time UInt64,
  event_at DateTime DEFAULT toDateTime(intDiv(event_time, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(event_at)
ORDER BY (toDate(event_at), route, device, cityHash64(ifNull(metric_id, id)), event_time)
SAMPLE BY cityHash64(ifNull(metric_id, id));
