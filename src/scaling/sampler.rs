//! The host sampler: every `scalability.sample_interval` seconds, this machine's CPU,
//! memory (and cgroup limit), load, disk free under the data dir, network bytes, this
//! process's RSS/CPU/threads (sysinfo), plus requests/s, open connections, p95 latency and
//! 5xx rate from our own HTTP counters. One row per tick, through the store's writer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use sysinfo::{
    DiskRefreshKind, Disks, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System,
};

use crate::store::{Batch, Store, StoreError, SystemRow};
use crate::telemetry::{self, LATENCY_BUCKETS};

/// The newest host sample, for `/metrics` and the headline (one process = one host).
static LATEST: RwLock<Option<SystemRow>> = parking_lot::const_rwlock(None);

pub fn latest() -> Option<SystemRow> {
    LATEST.read().clone()
}

/// What this host calls itself in `instance`.
pub fn host_name() -> String {
    System::host_name()
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "growth-stack".into())
}

pub struct Sampler {
    system: System,
    networks: Networks,
    disks: Disks,
    /// Index into `disks` of the disk holding the data dir.
    disk: Option<usize>,
    pid: Option<Pid>,
    instance: String,
    last: Option<(Instant, HttpTotals)>,
}

#[derive(Clone, Copy)]
struct HttpTotals {
    requests: u64,
    errors: u64,
    buckets: [u64; 15],
}

fn http_totals() -> HttpTotals {
    let (requests, errors, buckets) = telemetry::HTTP.totals();
    HttpTotals {
        requests,
        errors,
        buckets,
    }
}

impl Sampler {
    /// Takes the first CPU reading, so the first sample already has a usage figure: CPU
    /// usage is the difference between two readings at least
    /// `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` apart.
    pub fn new(data_dir: &Path) -> Option<Sampler> {
        let mut system = System::new().ok()?;
        let pid = sysinfo::get_current_pid().ok();
        let disks =
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
                .ok()?;
        let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| PathBuf::from(data_dir));
        let disk = disks
            .iter()
            .enumerate()
            .filter(|(_, d)| dir.starts_with(d.mount_point()))
            .max_by_key(|(_, d)| d.mount_point().as_os_str().len())
            .map(|(i, _)| i);
        let networks = Networks::new_with_refreshed_list().ok()?;
        system.refresh_cpu_usage();
        if let Some(pid) = pid {
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
        }
        Some(Sampler {
            system,
            networks,
            disks,
            disk,
            pid,
            instance: super::node_instance(),
            last: Some((Instant::now(), http_totals())),
        })
    }

    /// One sample; blocking (it reads /proc), so run it off the async runtime.
    pub fn sample(&mut self, now_us: i64) -> SystemRow {
        let s = &mut self.system;
        s.refresh_cpu_usage();
        s.refresh_memory();
        let (memory_limit, memory_used, memory_available) = match s.cgroup_limits() {
            Some(cg) if cg.total_memory > 0 => (
                cg.total_memory,
                cg.total_memory.saturating_sub(cg.free_memory),
                cg.free_memory,
            ),
            _ => (s.total_memory(), s.used_memory(), s.available_memory()),
        };
        let load = System::load_average().ok();
        let mut process = (None, None, None);
        if let Some(pid) = self.pid {
            s.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            if let Some(p) = s.process(pid) {
                process = (
                    Some(to_i64(p.memory())),
                    Some(f64::from(p.cpu_usage())),
                    threads(),
                );
            }
        }
        let (mut disk_free, mut disk_total) = (None, None);
        if let Some(i) = self.disk {
            if let Some(d) = (&mut self.disks).into_iter().nth(i) {
                d.refresh_specifics(DiskRefreshKind::nothing().with_storage());
                disk_free = Some(to_i64(d.available_space()));
                disk_total = Some(to_i64(d.total_space()));
            }
        }
        self.networks.refresh(true);
        let (rx, tx) = self.networks.iter().fold((0u64, 0u64), |(r, t), (_, n)| {
            (
                r.saturating_add(n.received()),
                t.saturating_add(n.transmitted()),
            )
        });

        let now = Instant::now();
        let http = http_totals();
        let (rps, error_rate, p95) = match self.last {
            Some((then, prev)) => {
                let secs = now.duration_since(then).as_secs_f64().max(1e-3);
                let requests = http.requests.saturating_sub(prev.requests);
                let errors = http.errors.saturating_sub(prev.errors);
                let deltas: [u64; 15] =
                    std::array::from_fn(|i| http.buckets[i].saturating_sub(prev.buckets[i]));
                (
                    Some(requests as f64 / secs),
                    (requests > 0).then(|| errors as f64 / requests as f64),
                    quantile(&deltas, 0.95).map(|s| s * 1000.0),
                )
            }
            None => (None, None, None),
        };
        self.last = Some((now, http));
        let percent = |used: u64, of: u64| (of > 0).then(|| used as f64 * 100.0 / of as f64);
        SystemRow {
            instance: self.instance.clone(),
            source: "host",
            ts: now_us,
            cpu: Some(f64::from(s.global_cpu_usage())),
            memory: percent(memory_used, memory_limit),
            requests_per_second: rps,
            p95_latency: p95,
            connections: i32::try_from(
                telemetry::HTTP
                    .open_connections
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .max(0),
            )
            .ok(),
            error_rate,
            load1: load.as_ref().map(|l| l.one),
            load5: load.as_ref().map(|l| l.five),
            load15: load.as_ref().map(|l| l.fifteen),
            memory_used: Some(to_i64(memory_used)),
            memory_available: Some(to_i64(memory_available)),
            memory_limit: Some(to_i64(memory_limit)),
            disk_free,
            disk_total,
            net_rx_bytes: Some(to_i64(rx)),
            net_tx_bytes: Some(to_i64(tx)),
            process_rss: process.0,
            process_cpu: process.1,
            process_threads: process.2,
            created_at: now_us,
        }
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// This process's thread count (Linux: field 20 of /proc/self/stat).
fn threads() -> Option<i32> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name, which may itself hold spaces and parentheses.
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(17)?.parse().ok()
}

/// The `q` quantile in seconds from per-bucket counts (bounds `LATENCY_BUCKETS`, last
/// bucket +Inf), interpolated inside its bucket as Prometheus' `histogram_quantile` does.
pub fn quantile(counts: &[u64; 15], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut seen = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        let next = seen + c as f64;
        if next >= rank && c > 0 {
            let lo = if i == 0 { 0.0 } else { LATENCY_BUCKETS[i - 1] };
            let Some(&hi) = LATENCY_BUCKETS.get(i) else {
                // The +Inf bucket: its lower bound is the best we know.
                return Some(lo);
            };
            return Some(lo + (hi - lo) * (rank - seen) / c as f64);
        }
        seen = next;
    }
    None
}

/// Samples every `every` on a thread of its own until the store closes. The first
/// reading was taken in `Sampler::new`, so the first row comes one interval later.
pub fn spawn(store: Store, data_dir: PathBuf, every: Duration) {
    let handle = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new()
        .name("gs-sampler".into())
        .spawn(move || {
            let Some(mut sampler) = Sampler::new(&data_dir) else {
                tracing::warn!("host sampling is not supported here; no host samples");
                return;
            };
            // The first CPU figure needs the minimum interval after the first reading.
            std::thread::sleep(every.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL));
            loop {
                let row = sampler.sample(chrono::Utc::now().timestamp_micros());
                *LATEST.write() = Some(row.clone());
                match handle.block_on(store.append(Batch::System(vec![row]))) {
                    Ok(()) => {}
                    Err(StoreError::Closed) => break,
                    Err(e) => tracing::warn!(error = %e, "host sample not stored"),
                }
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the host sampler");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        let mut c = [0u64; 15];
        c[4] = 100; // (5 ms, 10 ms]
        let p95 = quantile(&c, 0.95).unwrap();
        assert!((p95 - 0.00975).abs() < 1e-9, "{p95}");
        assert_eq!(quantile(&[0; 15], 0.95), None);
        let mut inf = [0u64; 15];
        inf[14] = 3;
        assert_eq!(quantile(&inf, 0.5), Some(10.0));
    }

    fn thread_cpu() -> f64 {
        crate::scaling::cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID)
    }

    /// BENCHMARKS.md: `cargo test --release --lib scaling::sampler -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark"]
    fn bench_sample_cost() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sampler::new(dir.path()).unwrap();
        let mut costs = Vec::new();
        for i in 0..200 {
            std::thread::sleep(Duration::from_millis(10));
            let (cpu0, wall0) = (thread_cpu(), Instant::now());
            let row = s.sample(i);
            costs.push((thread_cpu() - cpu0, wall0.elapsed().as_secs_f64()));
            assert!(row.cpu.is_some());
        }
        let mut cpu: Vec<f64> = costs.iter().map(|c| c.0 * 1e3).collect();
        let mut wall: Vec<f64> = costs.iter().map(|c| c.1 * 1e3).collect();
        cpu.sort_by(f64::total_cmp);
        wall.sort_by(f64::total_cmp);
        let (cpu_med, wall_med) = (cpu[cpu.len() / 2], wall[wall.len() / 2]);
        println!(
            "per sample: CPU median {cpu_med:.3} ms (p90 {:.3} ms), wall median {wall_med:.3} ms; \
             at the default 15 s interval that is {:.4}% of one core",
            cpu[cpu.len() * 9 / 10],
            cpu_med / 15_000.0 * 100.0
        );
    }

    #[test]
    fn a_sample_reads_this_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sampler::new(dir.path()).expect("sysinfo works on Linux");
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let row = s.sample(1);
        assert_eq!(row.source, "host");
        assert!(row.cpu.is_some_and(|c| (0.0..=100.0).contains(&c)));
        assert!(row.memory.is_some_and(|m| m > 0.0 && m <= 100.0));
        assert!(row.memory_limit.is_some_and(|m| m > 0));
        assert!(row.disk_free.is_some_and(|d| d > 0), "{row:?}");
        assert!(row.process_rss.is_some_and(|r| r > 0));
        assert!(row.process_threads.is_some_and(|t| t >= 1));
        assert!(row.requests_per_second.is_some());
    }
}
