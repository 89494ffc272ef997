-- Alerts on ClickHouse (storage.engine = "clickhouse"): the errors stream, and the alert
-- state every node must see. `app_errors` keeps DuckDB's columns (migration 0011); its
-- `event_time` is the receive time `created_at` (DuckDB ages and reads errors by
-- created_at), so the prune, the copy and the reads treat it as every other stream, with
-- the DateTime twin `event_at` the writer sends (see 0001_streams.sql).
CREATE TABLE IF NOT EXISTS {db}.app_errors{local}{on_cluster} (
  id String,
  kind String,
  message String,
  source Nullable(String),
  line Nullable(Int32),
  col Nullable(Int32),
  stack Nullable(String),
  route Nullable(String),
  session_id Nullable(String),
  user_agent Nullable(String),
  fingerprint String,
  status Nullable(Int16),
  timestamp Int64,
  created_at UInt64,
  event_time UInt64,
  event_at DateTime DEFAULT toDateTime(intDiv(event_time, 1000000))
) ENGINE = {engine}
PARTITION BY toYYYYMM(event_at)
ORDER BY (toDate(event_at), kind, event_time);

-- Rules made through the API, silences, series states and the notification log
-- (Alertmanager's groups), each a JSON `body` under its `kind` and `state_key`. ClickHouse has no
-- UPDATE: a change appends a row, the newest `version` (microseconds) of a key wins
-- (argMax), and an empty body deletes the key. One JSON column rather than typed ones,
-- because aggregates skip NULL arguments: argMax over a Nullable column would return an
-- older non-NULL value instead of a newer NULL.
CREATE TABLE IF NOT EXISTS {db}.alert_state{local}{on_cluster} (
  kind String,
  state_key String,
  body String,
  version UInt64
) ENGINE = {engine}
ORDER BY (kind, state_key, version);

-- Every state change, newest last, as DuckDB's alert_history.
CREATE TABLE IF NOT EXISTS {db}.alert_history{local}{on_cluster} (
  changed_at UInt64,
  rule_id String,
  series String,
  fingerprint String,
  labels String,
  from_state String,
  to_state String,
  value Nullable(Float64)
) ENGINE = {engine}
PARTITION BY toYYYYMM(toDate(intDiv(changed_at, 1000000)))
ORDER BY (changed_at, rule_id, series);

-- Notifications to deliver: each change of one (queued, attempted, sent, failed) appends
-- the whole notification as `body` with its `status`; the newest version of an id wins.
CREATE TABLE IF NOT EXISTS {db}.alert_outbox{local}{on_cluster} (
  id Int64,
  channel String,
  status String,
  body String,
  version UInt64
) ENGINE = {engine}
ORDER BY (id, version);
