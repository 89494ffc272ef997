//! `GET /metrics`: Prometheus text exposition (format 0.0.4, written by prometheus-client)
//! of the standard `process_*` metrics, HTTP requests and latency per route, ingest rows and
//! group-commit sizes, AI gateway calls, cache sizes, the sampled host gauges and the
//! scaling recommendation. The hot paths only bump atomics (`telemetry`); all the work of
//! reading and formatting happens here, once per scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::recommend::Recommendation;
use crate::store::SystemRow;
use crate::telemetry::{self, COMMIT_BUCKETS, LATENCY_BUCKETS};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything one scrape shows, read before encoding.
#[derive(Debug, Default)]
pub struct Scrape {
    pub rows_written: u64,
    pub commits: u64,
    pub queued_rows: u64,
    pub read_cache_entries: u64,
    pub host: Option<SystemRow>,
    pub current_instances: Option<u32>,
    pub desired_instances: Option<u32>,
}

impl Scrape {
    pub fn recommendation(&mut self, rec: &Recommendation) {
        self.current_instances = Some(rec.current_instances);
        self.desired_instances = rec.desired_instances;
    }
}

pub fn render(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

type Fmt = Result<(), std::fmt::Error>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn counter_f(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Fmt {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Fmt {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn gauge_opt(e: &mut DescriptorEncoder, name: &str, help: &str, v: Option<f64>) -> Fmt {
    match v {
        Some(v) => gauge(e, name, help, v),
        None => Ok(()),
    }
}

/// (upper bound, count) pairs, the last bound +Inf, as prometheus-client wants them.
fn buckets(bounds: &[f64], counts: &[u64]) -> Vec<(f64, u64)> {
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (bounds.get(i).copied().unwrap_or(f64::INFINITY), *c))
        .collect()
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        process(&mut e)?;
        http(&mut e)?;
        self.store(&mut e)?;
        ai(&mut e)?;
        gauge(
            &mut e,
            "growth_read_cache_entries",
            "Dashboard read answers held for a few seconds.",
            self.read_cache_entries as f64,
        )?;
        for (name, help, v) in telemetry::probes() {
            gauge(&mut e, name, help, v)?;
        }
        self.host(&mut e)?;
        gauge_opt(
            &mut e,
            "growth_scaling_current_instances",
            "Instances that reported within scalability.stale_after.",
            self.current_instances.map(f64::from),
        )?;
        gauge_opt(
            &mut e,
            "growth_scaling_desired_instances",
            "Instances the scaling recommendation asks for (absent without enough data).",
            self.desired_instances.map(f64::from),
        )
    }
}

impl Scrape {
    fn store(&self, e: &mut DescriptorEncoder) -> Fmt {
        {
            let mut fam = e.encode_descriptor(
                "growth_ingest_rows",
                "Rows committed, by table.",
                None,
                MetricType::Counter,
            )?;
            for (table, _, rows) in telemetry::INGEST.snapshot() {
                ConstCounter::new(rows).encode(fam.encode_family(&[("table", table)])?)?;
            }
        }
        {
            let mut fam = e.encode_descriptor(
                "growth_ingest_batches",
                "Write batches committed (one per accepted ingest call), by table.",
                None,
                MetricType::Counter,
            )?;
            for (table, calls, _) in telemetry::INGEST.snapshot() {
                ConstCounter::new(calls).encode(fam.encode_family(&[("table", table)])?)?;
            }
        }
        let (counts, sum) = telemetry::COMMITS.snapshot();
        e.encode_descriptor(
            "growth_store_commit_rows",
            "Rows per group commit of the DuckDB writer.",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(
            sum,
            counts.iter().sum(),
            &buckets(&COMMIT_BUCKETS, &counts),
            None,
        )?;
        counter(
            e,
            "growth_store_commits",
            "Group commits of the DuckDB writer.",
            self.commits,
        )?;
        counter(
            e,
            "growth_store_rows_written",
            "Rows the DuckDB writer committed.",
            self.rows_written,
        )?;
        gauge(
            e,
            "growth_store_queued_rows",
            "Rows waiting for the writer.",
            self.queued_rows as f64,
        )
    }

    fn host(&self, e: &mut DescriptorEncoder) -> Fmt {
        let Some(h) = &self.host else { return Ok(()) };
        let g: [(&str, &str, Option<f64>); 15] = [
            (
                "growth_host_cpu_ratio",
                "Host CPU use, share of all cores (latest sample).",
                h.cpu.map(|p| p / 100.0),
            ),
            (
                "growth_host_memory_ratio",
                "Host memory use, share of the limit.",
                h.memory.map(|p| p / 100.0),
            ),
            (
                "growth_host_memory_used_bytes",
                "Host (or cgroup) memory in use.",
                h.memory_used.map(|v| v as f64),
            ),
            (
                "growth_host_memory_limit_bytes",
                "The cgroup's memory limit, else the machine's memory.",
                h.memory_limit.map(|v| v as f64),
            ),
            ("growth_host_load1", "Load average over 1 minute.", h.load1),
            ("growth_host_load5", "Load average over 5 minutes.", h.load5),
            (
                "growth_host_load15",
                "Load average over 15 minutes.",
                h.load15,
            ),
            (
                "growth_host_disk_free_bytes",
                "Free space on the disk holding the data dir.",
                h.disk_free.map(|v| v as f64),
            ),
            (
                "growth_host_disk_total_bytes",
                "Size of the disk holding the data dir.",
                h.disk_total.map(|v| v as f64),
            ),
            (
                "growth_host_network_receive_bytes",
                "Bytes received by all interfaces during the last sample interval.",
                h.net_rx_bytes.map(|v| v as f64),
            ),
            (
                "growth_host_network_transmit_bytes",
                "Bytes sent by all interfaces during the last sample interval.",
                h.net_tx_bytes.map(|v| v as f64),
            ),
            (
                "growth_host_requests_per_second",
                "HTTP requests per second over the last sample interval.",
                h.requests_per_second,
            ),
            (
                "growth_host_request_p95_seconds",
                "p95 HTTP latency over the last sample interval.",
                h.p95_latency.map(|ms| ms / 1000.0),
            ),
            (
                "growth_host_error_ratio",
                "Share of 5xx responses over the last sample interval.",
                h.error_rate,
            ),
            (
                "growth_host_sample_timestamp_seconds",
                "When the host was last sampled.",
                Some(h.ts as f64 / 1e6),
            ),
        ];
        for (name, help, v) in g {
            gauge_opt(e, name, help, v)?;
        }
        Ok(())
    }
}

fn http(e: &mut DescriptorEncoder) -> Fmt {
    const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let routes: Vec<_> = telemetry::HTTP.routes().collect();
    {
        let mut fam = e.encode_descriptor(
            "growth_http_requests",
            "HTTP responses by method, route and status class.",
            None,
            MetricType::Counter,
        )?;
        for (method, route, s) in &routes {
            for (class, c) in CLASSES.iter().zip(&s.status) {
                let n = c.load(std::sync::atomic::Ordering::Relaxed);
                if n > 0 {
                    let labels = [("method", *method), ("route", *route), ("status", *class)];
                    ConstCounter::new(n).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
    }
    {
        let mut fam = e.encode_descriptor(
            "growth_http_request_duration_seconds",
            "HTTP request latency by method and route, until the response headers.",
            None,
            MetricType::Histogram,
        )?;
        for (method, route, s) in &routes {
            let (counts, sum) = s.latency.snapshot();
            fam.encode_family(&[("method", *method), ("route", *route)])?
                .encode_histogram::<NoLabelSet>(
                    sum,
                    counts.iter().sum(),
                    &buckets(&LATENCY_BUCKETS, &counts),
                    None,
                )?;
        }
    }
    let load =
        |a: &std::sync::atomic::AtomicI64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    gauge(
        e,
        "growth_http_open_connections",
        "TCP connections open now.",
        load(&telemetry::HTTP.open_connections),
    )?;
    gauge(
        e,
        "growth_http_requests_in_flight",
        "Requests being served now.",
        load(&telemetry::HTTP.in_flight),
    )
}

fn ai(e: &mut DescriptorEncoder) -> Fmt {
    let a = &telemetry::AI;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    counter(
        e,
        "growth_ai_gateway_calls",
        "Calls the AI gateway served.",
        get(&a.calls),
    )?;
    counter(
        e,
        "growth_ai_gateway_cache_hits",
        "Gateway calls answered from the cache.",
        get(&a.cache_hits),
    )?;
    counter(
        e,
        "growth_ai_gateway_errors",
        "Gateway calls that failed.",
        get(&a.errors),
    )?;
    let mut fam = e.encode_descriptor(
        "growth_ai_gateway_tokens",
        "Tokens of gateway calls, by kind.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(get(&a.prompt_tokens)).encode(fam.encode_family(&[("kind", "prompt")])?)?;
    ConstCounter::new(get(&a.completion_tokens))
        .encode(fam.encode_family(&[("kind", "completion")])?)
}

/// The standard process metrics, as the official client libraries name them (Linux).
fn process(e: &mut DescriptorEncoder) -> Fmt {
    let Some(p) = ProcStat::read() else {
        return Ok(());
    };
    counter_f(
        e,
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        p.cpu_seconds,
    )?;
    gauge(
        e,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        p.rss_bytes,
    )?;
    gauge(
        e,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        p.vsize_bytes,
    )?;
    gauge(
        e,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        p.start_time,
    )?;
    gauge(
        e,
        "process_threads",
        "Number of OS threads in the process.",
        p.threads,
    )?;
    if let Some(fds) = p.open_fds {
        gauge(
            e,
            "process_open_fds",
            "Number of open file descriptors.",
            fds,
        )?;
    }
    if let Some(max) = p.max_fds {
        gauge(
            e,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        )?;
    }
    Ok(())
}

struct ProcStat {
    cpu_seconds: f64,
    rss_bytes: f64,
    vsize_bytes: f64,
    start_time: f64,
    threads: f64,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces and parentheses).
        let (_, after) = stat.rsplit_once(')')?;
        let f: Vec<&str> = after.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        // SAFETY: sysconf only reads a system constant.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK) as f64,
                libc::sysconf(libc::_SC_PAGESIZE) as f64,
            )
        };
        let ticks = if ticks > 0.0 { ticks } else { 100.0 };
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })?;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse().ok())
            });
        Some(ProcStat {
            // utime, stime: fields 14 and 15 (index 11 and 12 after the name).
            cpu_seconds: (num(11)? + num(12)?) / ticks,
            threads: num(17)?,
            start_time: boot + num(19)? / ticks,
            vsize_bytes: num(20)?,
            rss_bytes: num(21)? * page,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as f64),
            max_fds,
        })
    }
}

/// CPU time `clock` has counted so far (`CLOCK_PROCESS_CPUTIME_ID`: every thread of this
/// process; `CLOCK_THREAD_CPUTIME_ID`: the calling thread), in seconds.
pub fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_families() {
        telemetry::HTTP.record("GET", "/api/test-route", 200, 0.003);
        let text = render(Scrape {
            host: Some(SystemRow {
                cpu: Some(12.5),
                ts: 1_700_000_000_000_000,
                ..Default::default()
            }),
            current_instances: Some(3),
            desired_instances: Some(4),
            ..Default::default()
        })
        .unwrap();
        for needle in [
            "# TYPE process_cpu_seconds_total counter",
            "process_resident_memory_bytes ",
            "growth_http_requests_total{method=\"GET\",route=\"/api/test-route\",status=\"2xx\"} 1",
            "growth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/test-route\",le=\"0.005\"} 1",
            "growth_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/test-route\",le=\"+Inf\"} 1",
            "growth_store_commit_rows_bucket{le=\"+Inf\"}",
            "growth_host_cpu_ratio 0.125",
            "growth_scaling_desired_instances 4",
            "growth_ai_gateway_tokens_total{kind=\"prompt\"}",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
