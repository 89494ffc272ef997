-- The guide's six tables, with its column names and DuckDB types.
-- High-volume tables carry no PRIMARY KEY or secondary indexes: DuckDB's per-block
-- min/max zone maps already serve time-range scans, while ART indexes would have to
-- be updated on every append and held in memory, costing ingest throughput.

CREATE TABLE performance_metrics (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id UUID,
  session_id VARCHAR,
  route VARCHAR,
  lcp DOUBLE,
  fid DOUBLE,
  cls DOUBLE,
  fcp DOUBLE,
  ttfb DOUBLE,
  user_agent VARCHAR,
  connection VARCHAR,
  ip VARCHAR,
  timestamp BIGINT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE ai_performance_metrics (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  request_id VARCHAR,
  endpoint VARCHAR,
  model VARCHAR,
  tokens INTEGER,
  duration DOUBLE,
  success BOOLEAN,
  error VARCHAR,
  cache_hit BOOLEAN,
  user_id UUID,
  ip VARCHAR,
  timestamp BIGINT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE database_performance_metrics (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  query VARCHAR,
  duration DOUBLE,
  rows INTEGER,
  cached BOOLEAN,
  user_id UUID,
  ip VARCHAR,
  timestamp BIGINT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE user_events (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id UUID,
  session_id VARCHAR,
  event VARCHAR NOT NULL,
  properties JSON,
  route VARCHAR,
  referrer VARCHAR,
  user_agent VARCHAR,
  ip VARCHAR,
  timestamp BIGINT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE conversions (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id UUID,
  session_id VARCHAR,
  funnel VARCHAR NOT NULL,
  step VARCHAR NOT NULL,
  timestamp BIGINT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE user_profiles (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID UNIQUE,
  last_activity TIMESTAMPTZ,
  total_events INTEGER DEFAULT 0,
  features_used VARCHAR[],
  updated_at TIMESTAMPTZ DEFAULT current_timestamp
);
