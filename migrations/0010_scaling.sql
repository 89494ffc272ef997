-- Scalability: load samples from this host (the sysinfo sampler, source 'host') and from
-- the user's app instances (POST /api/analytics/system, source 'app'), and every
-- recommendation made from them. Percentages are 0-100; bytes are bytes.
CREATE TABLE system_metrics (
    instance VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    -- When the sample was taken (the reporter's clock, or ours when it sent none).
    ts TIMESTAMP NOT NULL,
    cpu DOUBLE,
    memory DOUBLE,
    requests_per_second DOUBLE,
    -- Milliseconds.
    p95_latency DOUBLE,
    connections INTEGER,
    error_rate DOUBLE,
    load1 DOUBLE,
    load5 DOUBLE,
    load15 DOUBLE,
    memory_used BIGINT,
    memory_available BIGINT,
    -- The cgroup's memory limit when running in a container, else the machine's memory.
    memory_limit BIGINT,
    disk_free BIGINT,
    disk_total BIGINT,
    net_rx_bytes BIGINT,
    net_tx_bytes BIGINT,
    process_rss BIGINT,
    process_cpu DOUBLE,
    process_threads INTEGER,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE scaling_recommendations (
    created_at TIMESTAMP NOT NULL,
    fleet VARCHAR NOT NULL,
    current_instances INTEGER NOT NULL,
    -- Before the scale-down stabilisation window (clamped to min/max).
    raw_desired INTEGER NOT NULL,
    desired_instances INTEGER NOT NULL,
    metric VARCHAR,
    value DOUBLE,
    target DOUBLE,
    urgency VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);
