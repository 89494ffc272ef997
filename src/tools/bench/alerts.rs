//! `bench --alerts DATA_DIR`: evaluation rounds of every default rule plus N user rules on
//! a demo file, timed, with the process CPU time they cost (the CPU share at the default
//! interval follows from it). The engine is the server's, built by `app::build`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::BenchError;
use crate::app;
use crate::config::Config;

/// User rules spread over the catalogue the way people write them: most thresholds, some
/// per route or model, some declines and anomalies, over a few windows.
fn user_rules(n: usize) -> Vec<Value> {
    const MEASURES: &[(&str, &str, f64)] = &[
        ("lcp", "p75", 3000.0),
        ("inp", "p75", 300.0),
        ("cls", "p75", 0.1),
        ("ttfb", "p95", 1500.0),
        ("fcp", "p50", 2000.0),
        ("ai_latency", "p95", 4000.0),
        ("ai_error_rate", "rate", 2.0),
        ("ai_tokens", "avg", 2000.0),
        ("ai_cost", "avg", 0.01),
        ("db_query_time", "p95", 500.0),
        ("db_slow_query_rate", "rate", 5.0),
        ("page_views", "count", 10.0),
        ("active_users", "count", 5.0),
        ("conversion_rate", "rate", 1.0),
        ("frontend_error_rate", "rate", 1.0),
        ("js_errors", "count", 5.0),
    ];
    const ROUTES: &[&str] = &["/", "/recipes", "/recipes/[id]", "/meal-plan", "/pricing"];
    const WINDOWS: &[&str] = &["5m", "15m", "1h"];
    (0..n)
        .map(|i| {
            let (m, agg, t) = MEASURES[i % MEASURES.len()];
            let mut r = json!({
                "name": format!("bench_{i}"),
                "measure": m,
                "aggregation": agg,
                "threshold": t,
                "window": WINDOWS[(i / MEASURES.len()) % WINDOWS.len()],
            });
            let vital = ["lcp", "inp", "cls", "ttfb", "fcp"].contains(&m);
            if vital && i % 3 == 0 {
                r["filters"] = json!({"route": ROUTES[i % ROUTES.len()]});
            } else if vital && i % 3 == 1 {
                r["group_by"] = json!("route");
            }
            if m == "ai_latency" && i % 2 == 0 {
                r["group_by"] = json!("model");
            }
            if i % 10 == 7 {
                r["condition"] = json!("decline");
                r["threshold"] = json!(25.0);
                r["window"] = json!("1h");
            } else if i % 10 == 9 {
                r["condition"] = json!("anomaly");
            }
            r
        })
        .collect()
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

pub async fn run(
    config: &Config,
    data_dir: &Path,
    n: usize,
    rounds: usize,
) -> Result<(), BenchError> {
    if !data_dir.join("growth.duckdb").exists() {
        return Err(BenchError::Failed(format!(
            "{}/growth.duckdb does not exist; fill it first: growth-stack demo --events 10000000 --data-dir {}",
            data_dir.display(),
            data_dir.display()
        )));
    }
    let mut server_config = config.clone();
    server_config.server.data_dir = data_dir.to_path_buf();
    server_config.server.no_auth = true;
    server_config.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let app = app::build(server_config).await?;
    let store = app.state.store.clone();
    let events: i64 = store
        .query(|c| Ok(c.query_row("SELECT count(*) FROM user_events", [], |r| r.get(0))?))
        .await?;
    let engine = app.alerts.clone();
    engine
        .add_rules_in_memory(&user_rules(n))
        .map_err(BenchError::Failed)?;
    println!(
        "alerts bench: {events} events, {} rules ({n} user rules), {} cores",
        engine.rule_count(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..=rounds {
        let (t0, c0) = (Instant::now(), cpu_time());
        let info = engine
            .round(chrono::Utc::now())
            .await
            .map_err(|e| BenchError::Failed(e.to_string()))?;
        let (wall, used) = (t0.elapsed(), cpu_time() - c0);
        println!(
            "round {i}{}: {:.1} ms wall, {:.1} ms CPU, {} rules, {} queries, {} series",
            if i == 0 {
                " (cold: anomaly baselines)"
            } else {
                ""
            },
            wall.as_secs_f64() * 1000.0,
            used.as_secs_f64() * 1000.0,
            info.rules,
            info.queries,
            info.series
        );
        if i > 0 {
            times.push(wall);
            cpu.push(used);
        }
    }
    times.sort();
    cpu.sort();
    let med = |v: &[Duration]| v.get(v.len() / 2).copied().unwrap_or_default();
    let interval = config.alerts.interval.0.max(1) as f64;
    println!(
        "steady rounds: median {:.1} ms wall (max {:.1}), median {:.1} ms CPU: {:.2}% of one core at a {interval:.0} s interval",
        med(&times).as_secs_f64() * 1000.0,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        med(&cpu).as_secs_f64() * 1000.0,
        med(&cpu).as_secs_f64() / interval * 100.0
    );
    drop(app);
    store.close().await?;
    Ok(())
}
