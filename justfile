# growth-stack tasks. Everything uses the release profile: DuckDB is compiled from
# source, and building a second profile would double a ~25 minute build.

# Start the server on http://127.0.0.1:8080 with data in ./data
run *ARGS:
    cargo run --release -- {{ARGS}}

test:
    cargo test --release

# Lints as CI's reviewers expect them
lint:
    cargo fmt --check
    cargo clippy --release --all-targets -- -D warnings

# Ingest benchmark: appender ceiling vs batched HTTP vs single beacons at 64 and 256
# connections (server CPU per beacon; rows counted in the file after stop), one run.
# Before/after with one load generator: just bench --server-exe path/to/other/growth-stack
bench *ARGS:
    cargo run --release -- bench {{ARGS}}

# Ingest on the ClickHouse engine: URLS = the servers' HTTP interfaces (comma-separated),
# CLUSTER = their remote_servers name (README "Scale-out on ClickHouse")
bench-clickhouse URLS CLUSTER="gs":
    GROWTH_STORAGE_ENGINE=clickhouse GROWTH_CLICKHOUSE_URL={{URLS}} GROWTH_CLICKHOUSE_CLUSTER={{CLUSTER}} cargo run --release -- bench --events 100000 --beacons 2000

# AI gateway: direct-to-mock vs gateway miss vs gateway hit, hit throughput, rows verified
bench-ai *ARGS:
    cargo run --release -- bench-ai {{ARGS}}

# Start-up time on a large file: fills a data dir with N demo events, then times readiness
bench-startup N="10000000":
    rm -rf target/bench-startup
    cargo run --release -- demo --events {{N}} --data-dir target/bench-startup
    cargo run --release -- bench --startup target/bench-startup

# Growth queries on a large file: fills DIR with N demo events for 200k users once, then
# times a 4-step funnel, an 8-week retention table and the overview, API vs raw SQL
bench-growth N="10000000" DIR="target/bench-growth":
    test -f {{DIR}}/growth.duckdb || cargo run --release -- demo --events {{N}} --users 200000 --data-dir {{DIR}}
    cargo run --release -- bench --growth {{DIR}}

# Database optimisation: fingerprinting per second, query-timing ingest next to events,
# and with URL (a PostgreSQL you own; the bench fills a table gs_bench_recipes there)
# select-cache hits next to the same query sent directly
bench-db URL="":
    cargo run --release -- bench --database {{ if URL == "" { "" } else { "--database-url " + URL } }}

# Fill ./data with demo data
demo N="100000":
    cargo run --release -- demo --events {{N}}

# Web vitals: N demo page views over 30 days (data under ~/.cache, not the repo), then
# beacon ingest and the Performance page's 30-day reads on them
bench-vitals N="5000000":
    rm -rf $HOME/.cache/growth-stack/bench-vitals
    cargo run --release -- demo --page-views {{N}} --days 30 --data-dir $HOME/.cache/growth-stack/bench-vitals
    cargo run --release -- bench --vitals --vitals-data $HOME/.cache/growth-stack/bench-vitals

# Migration 0013 (event time) in place on a 10M-event file of the schema before it
bench-migrate N="10000000":
    GS_MIGRATE_EVENTS={{N}} cargo test --release --lib store::migrate::tests::bench_event_time_migration -- --ignored --nocapture

# Alert evaluation on the 10M-event file (the bench-growth one, filled once): every
# built-in rule plus RULES user rules, one cold round then timed rounds, wall and CPU
bench-alerts RULES="100" DIR="target/bench-growth":
    test -f {{DIR}}/growth.duckdb || cargo run --release -- demo --events 10000000 --users 200000 --data-dir {{DIR}}
    cargo run --release -- bench --alerts {{DIR}} --user-rules {{RULES}}
# Scaling: the host sampler's CPU per sample, then the recommendation, forecast, 30-day
# samples read and /metrics over 30 days of 15-second samples from 50 instances
bench-scaling:
    cargo test --release --lib scaling::sampler::tests::bench_sample_cost -- --ignored --nocapture
    cargo test --release --test it scaling::bench_ -- --ignored --nocapture

# Data lifecycle on a 30-day file (filled once with N demo events): export to Parquet, an
# online backup and its restore, then a prune of 20 of the 30 days while beacons arrive
bench-lifecycle N="10000000" DIR="target/bench-lifecycle":
    test -f {{DIR}}/growth.duckdb || cargo run --release -- demo --events {{N}} --days 30 --data-dir {{DIR}}
    cargo run --release -- bench --lifecycle {{DIR}} --beacons 20000 --concurrency 16
