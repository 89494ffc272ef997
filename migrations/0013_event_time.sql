-- Analytics run on the time people acted, not on the time the server received it: our
-- tracker queues events for seconds and sends many in one beacon, and imports backfill.
-- `event_time` is set at ingest by one rule (src/http/event_time.rs, README "Event time"):
-- the client `timestamp` corrected by its `sent_at`, else the `timestamp`, else the receive
-- time; its microsecond digits keep the order of the items of one request.
-- `created_at` keeps its meaning: when the server received the row (or its backfill).
ALTER TABLE user_events ADD COLUMN event_time TIMESTAMPTZ;
ALTER TABLE conversions ADD COLUMN event_time TIMESTAMPTZ;
ALTER TABLE performance_metrics ADD COLUMN event_time TIMESTAMPTZ;
ALTER TABLE ai_performance_metrics ADD COLUMN event_time TIMESTAMPTZ;
ALTER TABLE database_performance_metrics ADD COLUMN event_time TIMESTAMPTZ;

-- Rows written before: their client `timestamp` when it is sane (at most an hour before
-- the receive time and not after it: the old tracker sent within seconds, and a default
-- timestamp was the receive time itself), else `created_at`. One pass per table, in place.
UPDATE user_events SET event_time = CASE
  WHEN timestamp BETWEEN epoch_ms(created_at::TIMESTAMP) - 3600000 AND epoch_ms(created_at::TIMESTAMP)
  THEN make_timestamp(timestamp * 1000) ELSE created_at::TIMESTAMP END;
UPDATE conversions SET event_time = CASE
  WHEN timestamp BETWEEN epoch_ms(created_at::TIMESTAMP) - 3600000 AND epoch_ms(created_at::TIMESTAMP)
  THEN make_timestamp(timestamp * 1000) ELSE created_at::TIMESTAMP END;
UPDATE performance_metrics SET event_time = CASE
  WHEN timestamp BETWEEN epoch_ms(created_at::TIMESTAMP) - 3600000 AND epoch_ms(created_at::TIMESTAMP)
  THEN make_timestamp(timestamp * 1000) ELSE created_at::TIMESTAMP END;
UPDATE ai_performance_metrics SET event_time = CASE
  WHEN timestamp BETWEEN epoch_ms(created_at::TIMESTAMP) - 3600000 AND epoch_ms(created_at::TIMESTAMP)
  THEN make_timestamp(timestamp * 1000) ELSE created_at::TIMESTAMP END;
UPDATE database_performance_metrics SET event_time = CASE
  WHEN timestamp BETWEEN epoch_ms(created_at::TIMESTAMP) - 3600000 AND epoch_ms(created_at::TIMESTAMP)
  THEN make_timestamp(timestamp * 1000) ELSE created_at::TIMESTAMP END;

-- Active people per UTC day, for DAU/WAU/MAU: each (day of event_time, hash of visitor_id)
-- once. Folded from events by their commit number: every event with `seq` up to
-- `active_days_state.seq` (and every event without one) is in it. See src/growth/rollup.rs.
CREATE TABLE active_days (day BIGINT NOT NULL, v UBIGINT NOT NULL);
CREATE TABLE active_days_state (seq BIGINT NOT NULL);
