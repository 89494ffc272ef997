-- Dashboard sessions that survive a restart. Only a SHA-256 of the cookie's random id is
-- kept, so a copy of the file (a backup) holds no usable session.
CREATE TABLE dashboard_sessions (
  id_hash VARCHAR PRIMARY KEY,
  created_at TIMESTAMP NOT NULL,
  expires_at TIMESTAMP NOT NULL
);
