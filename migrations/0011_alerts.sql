-- Alerts. `app_errors` is an ingest stream like the guide's tables: JavaScript errors that
-- gs.js reports (`kind = 'js'`) and the 5xx answers of this server and its AI gateway
-- (`kind = 'server'`). `fingerprint` groups one error's occurrences (message, source, line).
CREATE TABLE app_errors (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  kind VARCHAR NOT NULL,
  message VARCHAR NOT NULL,
  source VARCHAR,
  line INTEGER,
  col INTEGER,
  stack VARCHAR,
  route VARCHAR,
  session_id VARCHAR,
  user_agent VARCHAR,
  fingerprint VARCHAR NOT NULL,
  status SMALLINT,
  timestamp BIGINT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- Rules made or edited through the API (the built-in defaults live in code; an edited
-- default is stored here under its own id). `spec` is the rule as the API shows it.
CREATE TABLE alert_rules (
  id VARCHAR PRIMARY KEY,
  spec JSON NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- The state of every series (a rule, or a rule and one route) as of the last evaluation,
-- so pending and firing survive a restart.
CREATE TABLE alert_states (
  rule_id VARCHAR NOT NULL,
  series VARCHAR NOT NULL,
  fingerprint VARCHAR NOT NULL,
  labels JSON NOT NULL,
  state VARCHAR NOT NULL,
  value DOUBLE,
  active_since TIMESTAMPTZ,
  firing_since TIMESTAMPTZ,
  last_true TIMESTAMPTZ,
  resolved_at TIMESTAMPTZ,
  evaluated_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (rule_id, series)
);

-- Every state change, newest last.
CREATE TABLE alert_history (
  changed_at TIMESTAMPTZ NOT NULL,
  rule_id VARCHAR NOT NULL,
  series VARCHAR NOT NULL,
  fingerprint VARCHAR NOT NULL,
  labels JSON NOT NULL,
  from_state VARCHAR NOT NULL,
  to_state VARCHAR NOT NULL,
  value DOUBLE
);

CREATE TABLE alert_silences (
  id VARCHAR PRIMARY KEY,
  matchers JSON NOT NULL,
  starts_at TIMESTAMPTZ NOT NULL,
  ends_at TIMESTAMPTZ NOT NULL,
  comment VARCHAR,
  created_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- Alertmanager's notification log: per channel and group, what was last sent and when,
-- so group_interval and repeat_interval hold across restarts.
CREATE TABLE alert_groups (
  channel VARCHAR NOT NULL,
  group_key VARCHAR NOT NULL,
  first_at TIMESTAMPTZ NOT NULL,
  sent_at TIMESTAMPTZ,
  sent_hash VARCHAR,
  PRIMARY KEY (channel, group_key)
);

-- Notifications to deliver: written in the same step that decides to send them, removed
-- from the queue only by a 2xx, so a receiver that is down or a restart loses nothing.
CREATE TABLE alert_outbox (
  id BIGINT PRIMARY KEY,
  channel VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  url VARCHAR NOT NULL,
  body JSON NOT NULL,
  status VARCHAR NOT NULL,
  summary VARCHAR,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at TIMESTAMPTZ NOT NULL,
  next_at TIMESTAMPTZ NOT NULL,
  sent_at TIMESTAMPTZ,
  last_error VARCHAR
);
