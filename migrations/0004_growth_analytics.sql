-- Growth analytics. Apps identify users with their own ids ("user-42", an email hash),
-- not UUIDs: user_id becomes text. The guide's columns keep their names and places.
ALTER TABLE user_events ALTER COLUMN user_id TYPE VARCHAR;
ALTER TABLE conversions ALTER COLUMN user_id TYPE VARCHAR;

-- Who did it, for every count of people: the user_id when the app sent one, otherwise a
-- cookieless visitor id (a daily-rotating salted hash of site, IP and user agent; the IP
-- itself is never stored in clear for it).
ALTER TABLE user_events ADD COLUMN visitor_id VARCHAR;
ALTER TABLE conversions ADD COLUMN visitor_id VARCHAR;
UPDATE user_events SET visitor_id = coalesce(user_id, 'session:' || session_id);
UPDATE conversions SET visitor_id = coalesce(user_id, 'session:' || session_id);

-- Derived once at ingest, so breakdowns are plain GROUP BYs over narrow columns:
-- the feature an event stands for (property `feature` or analytics.features), the
-- parsed user agent, the referring site, and the campaign parameters.
ALTER TABLE user_events ADD COLUMN feature VARCHAR;
ALTER TABLE user_events ADD COLUMN browser VARCHAR;
ALTER TABLE user_events ADD COLUMN os VARCHAR;
ALTER TABLE user_events ADD COLUMN device VARCHAR;
ALTER TABLE user_events ADD COLUMN referrer_domain VARCHAR;
ALTER TABLE user_events ADD COLUMN utm_source VARCHAR;
ALTER TABLE user_events ADD COLUMN utm_medium VARCHAR;
ALTER TABLE user_events ADD COLUMN utm_campaign VARCHAR;

-- Profiles are upserted by user id in the same commit as their events: the key must
-- hold the app's ids, and it is the one index the table needs.
CREATE TABLE user_profiles_v4 (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id VARCHAR PRIMARY KEY,
  last_activity TIMESTAMPTZ,
  total_events INTEGER DEFAULT 0,
  features_used VARCHAR[],
  updated_at TIMESTAMPTZ DEFAULT current_timestamp,
  first_seen TIMESTAMPTZ
);
INSERT INTO user_profiles_v4
  SELECT id, user_id::VARCHAR, last_activity, total_events, features_used, updated_at, last_activity
  FROM user_profiles WHERE user_id IS NOT NULL;
DROP TABLE user_profiles;
ALTER TABLE user_profiles_v4 RENAME TO user_profiles;
