//! Load samples for `growth-stack demo`: four app instances and this host every five
//! minutes over the demo's days, with a daily rhythm (so the forecast has a season to
//! learn), a busier last day, and a data disk that slowly fills.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::store::{Batch, Store, StoreError, SystemRow};

const STEP_US: i64 = 300_000_000;
const DAY_US: i64 = 86_400_000_000;
const INSTANCES: [&str; 4] = ["web-1", "web-2", "web-3", "web-4"];
const CHUNK: usize = 5_000;

/// Writes the samples; returns how many.
pub async fn generate(store: &Store, days: u32, seed: u64) -> Result<u64, StoreError> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5ca1_ab1e);
    let now = chrono::Utc::now().timestamp_micros();
    let days = i64::from(days.max(1));
    let start = now - days * DAY_US;
    let host = crate::scaling::host_instance();
    let disk_total: i64 = 200 << 30;
    let mut rows = Vec::with_capacity(CHUNK);
    let mut written = 0u64;
    let mut t = start;
    while t <= now {
        let hour = (t % DAY_US) as f64 / 3_600_000_000.0;
        // Quiet at night, a peak in the afternoon; the last day runs 25% hotter.
        let daily = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * (hour - 3.0) / 24.0).cos();
        let boost = if now - t < DAY_US { 1.25 } else { 1.0 };
        let load = (20.0 + 55.0 * daily) * boost;
        for name in INSTANCES {
            let cpu = (load + rng.gen_range(-6.0..6.0)).clamp(1.0, 100.0);
            rows.push(SystemRow {
                instance: name.to_string(),
                source: "app",
                ts: t,
                cpu: Some(cpu),
                memory: Some(45.0 + cpu * 0.3 + rng.gen_range(-3.0..3.0)),
                requests_per_second: Some(cpu * 1.8 + rng.gen_range(0.0..5.0)),
                p95_latency: Some(90.0 + cpu * cpu / 40.0 + rng.gen_range(0.0..20.0)),
                connections: Some((cpu * 2.0) as i32),
                error_rate: Some(if cpu > 85.0 { 0.01 } else { 0.001 }),
                created_at: t,
                ..Default::default()
            });
        }
        let used = (t - start) as f64 / DAY_US as f64 * (1_200 << 20) as f64;
        rows.push(SystemRow {
            instance: host.clone(),
            source: "host",
            ts: t,
            cpu: Some((load * 0.25 + rng.gen_range(0.0..4.0)).min(100.0)),
            memory: Some(38.0 + rng.gen_range(0.0..4.0)),
            requests_per_second: Some(load * 0.6),
            p95_latency: Some(3.0 + rng.gen_range(0.0..2.0)),
            connections: Some(12),
            memory_used: Some(3 << 30),
            memory_limit: Some(8 << 30),
            memory_available: Some(5 << 30),
            disk_total: Some(disk_total),
            disk_free: Some(disk_total / 2 - used as i64),
            created_at: t,
            ..Default::default()
        });
        if rows.len() >= CHUNK {
            written += rows.len() as u64;
            store
                .append(Batch::System(std::mem::take(&mut rows)))
                .await?;
        }
        t += STEP_US;
    }
    written += rows.len() as u64;
    store.append(Batch::System(rows)).await?;
    Ok(written)
}
