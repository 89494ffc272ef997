-- AI-call metrics and query timings on ClickHouse (storage.engine = "clickhouse"): the
-- apps' reports, the AI gateway's own recorded calls and the select cache's timings, so
-- every node reads the same calls. Columns keep the DuckDB tables' names (less `seq`: the
-- DuckDB timing roll-up folds by it, and ClickHouse reads the rows themselves); times
-- are UInt64 microseconds with the DateTime twin `event_at` the writer sends, as in 0001.
-- Booleans are UInt8 (18.16 has no Bool type), NULL where DuckDB keeps NULL.
-- Every read filters on the event-time window and groups by model, user or fingerprint,
-- so the key is the time: ORDER BY (day, event_time) prunes the window's granules. The
-- grouping columns stay out of the key: they are Nullable (a sort key must not be on
-- current releases), and no read filters on them.
-- No LowCardinality (model, provider, endpoint would suit it): 18.16 creates it only with
-- an experimental setting current releases refuse (README "Scale-out on ClickHouse").
CREATE TABLE IF NOT EXISTS {db}.ai_performance_metrics{local}{on_cluster} (
  id String,
  request_id Nullable(String),
  endpoint Nullable(String),
  model Nullable(String),
  tokens Nullable(Int32),
  duration Float64,
  success UInt8,
  error Nullable(String),
  cache_hit UInt8,
  user_id Nullable(String),
  ip Nullable(String),
  timestamp Int64,
  created_at UInt64,
  provider Nullable(String),
  prompt_tokens Nullable(Int32),
  completion_tokens Nullable(Int32),
  ttft Nullable(Float64),
  cost Nullable(Float64),
  stream Nullable(UInt8),
  demo Nullable(UInt8),
  tokens_saved Nullable(Int32),
  event_time UInt64,
  event_at DateTime DEFAULT toDateTime(intDiv(event_time, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(event_at)
ORDER BY (toDate(event_at), event_time);

CREATE TABLE IF NOT EXISTS {db}.database_performance_metrics{local}{on_cluster} (
  id String,
  query String,
  duration Float64,
  rows Nullable(Int32),
  cached UInt8,
  user_id Nullable(String),
  ip Nullable(String),
  timestamp Int64,
  created_at UInt64,
  fingerprint Nullable(String),
  normalized_query Nullable(String),
  request_id Nullable(String),
  route Nullable(String),
  source Nullable(String),
  event_time UInt64,
  event_at DateTime DEFAULT toDateTime(intDiv(event_time, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(event_at)
ORDER BY (toDate(event_at), event_time);
