-- The guide's analytics.conversion(funnel, step, props) carries properties that its
-- conversions table had no column for.
ALTER TABLE conversions ADD COLUMN properties JSON;
