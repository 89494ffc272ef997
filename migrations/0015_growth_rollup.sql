-- The growth roll-up behind long ranges of the events page, the overview and the Growth
-- page: per UTC day, dimension (0 every event, 1 sessions, 2 page views, 3.. event name,
-- route, referring site, UTM source, medium, campaign, browser, OS, device) and value,
-- the exact event counts and a HyperLogLog sketch of the people (of the sessions for
-- dimension 1). Folded from events by their commit number: every event with `seq` up to
-- `growth_rollup_state.seq` (and every event without one) is in it. See
-- src/growth/rollup_days.rs. The first start after this migration folds the existing
-- events in the background; until then reads use the events.
CREATE TABLE growth_rollup (
    day BIGINT NOT NULL,
    dim UTINYINT NOT NULL,
    key VARCHAR NOT NULL,
    events BIGINT NOT NULL,
    events_v BIGINT NOT NULL,
    sketch BLOB NOT NULL
);
CREATE TABLE growth_rollup_state (seq BIGINT NOT NULL);
