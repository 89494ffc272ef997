-- Profiles are derived from the events themselves: the writer numbers every event it
-- appends (`seq`, increasing in commit order), `user_profiles` holds everything up to
-- `user_profile_watermark.seq`, and a reader adds the events after it. So a profile is
-- current in the very commit that stores its events, at no cost to that commit; a
-- background task folds the newer events into `user_profiles` now and then.
-- Rows written before this migration have no number: their profiles are already folded.
ALTER TABLE user_events ADD COLUMN seq BIGINT;
CREATE TABLE user_profile_watermark (seq BIGINT NOT NULL);
INSERT INTO user_profile_watermark VALUES (0);
