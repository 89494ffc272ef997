-- Scaling on ClickHouse: every node's host samples and the apps' posted samples in one
-- table, so each node's recommendation, forecast and charts see the whole fleet; and the
-- recommendations one node a period records (store/clickhouse/lease.rs), so the history
-- is the same from every node. Columns keep the DuckDB tables' names (migration 0010);
-- times are UInt64 microseconds with a DateTime twin for partitions and the key, sent by
-- the writer as in 0001. Rows go as RowBinary, so a posted float reads back exactly.
-- A host sample's `instance` is its node's name (host:port), so two nodes on one machine
-- count as two.
CREATE TABLE IF NOT EXISTS {db}.system_metrics{local}{on_cluster} (
  instance String,
  source String,
  ts UInt64,
  cpu Nullable(Float64),
  memory Nullable(Float64),
  requests_per_second Nullable(Float64),
  p95_latency Nullable(Float64),
  connections Nullable(Int32),
  error_rate Nullable(Float64),
  load1 Nullable(Float64),
  load5 Nullable(Float64),
  load15 Nullable(Float64),
  memory_used Nullable(Int64),
  memory_available Nullable(Int64),
  memory_limit Nullable(Int64),
  disk_free Nullable(Int64),
  disk_total Nullable(Int64),
  net_rx_bytes Nullable(Int64),
  net_tx_bytes Nullable(Int64),
  process_rss Nullable(Int64),
  process_cpu Nullable(Float64),
  process_threads Nullable(Int32),
  created_at UInt64,
  ts_at DateTime DEFAULT toDateTime(intDiv(ts, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(ts_at)
ORDER BY (toDate(ts_at), source, instance, ts);

CREATE TABLE IF NOT EXISTS {db}.scaling_recommendations{local}{on_cluster} (
  created_at UInt64,
  fleet String,
  current_instances Int32,
  raw_desired Int32,
  desired_instances Int32,
  metric Nullable(String),
  value Nullable(Float64),
  target Nullable(Float64),
  urgency String,
  reason String,
  created_on DateTime DEFAULT toDateTime(intDiv(created_at, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(created_on)
ORDER BY (toDate(created_on), created_at);
