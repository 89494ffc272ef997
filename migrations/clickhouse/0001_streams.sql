-- Product events and conversions on ClickHouse (storage.engine = "clickhouse").
-- Columns keep the DuckDB tables' names; times are UInt64 microseconds since the epoch
-- (18.16 has no DateTime64) with a DateTime twin for partitions and the key. The twin is
-- DEFAULT, not MATERIALIZED, and the writer sends it: an 18.16 Distributed table forwards
-- materialized columns to the shards, which refuse them (Code 44).
-- visitor_id is '' where DuckDB has NULL: it is the sharding and sampling key, and sort
-- keys must not be Nullable on current releases. Placeholders: {db}, {local} (`_local`
-- under Distributed tables), {on_cluster}, {engine}; every statement is IF NOT EXISTS, so
-- nodes starting at once apply it side by side.
CREATE TABLE IF NOT EXISTS {db}.user_events{local}{on_cluster} (
  id String,
  user_id Nullable(String),
  session_id Nullable(String),
  event String,
  properties Nullable(String),
  route Nullable(String),
  referrer Nullable(String),
  user_agent Nullable(String),
  ip Nullable(String),
  timestamp Int64,
  created_at UInt64,
  visitor_id String,
  feature Nullable(String),
  browser Nullable(String),
  os Nullable(String),
  device Nullable(String),
  referrer_domain Nullable(String),
  utm_source Nullable(String),
  utm_medium Nullable(String),
  utm_campaign Nullable(String),
  event_time UInt64,
  event_at DateTime DEFAULT toDateTime(intDiv(event_time, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(event_at)
ORDER BY (toDate(event_at), event, cityHash64(visitor_id), event_time)
SAMPLE BY cityHash64(visitor_id);

CREATE TABLE IF NOT EXISTS {db}.conversions{local}{on_cluster} (
  id String,
  user_id Nullable(String),
  session_id Nullable(String),
  funnel String,
  step String,
  timestamp Int64,
  created_at UInt64,
  properties Nullable(String),
  visitor_id String,
  event_time UInt64,
  event_at DateTime DEFAULT toDateTime(intDiv(event_time, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(event_at)
ORDER BY (toDate(event_at), funnel, step, cityHash64(visitor_id), event_time)
SAMPLE BY cityHash64(visitor_id);
