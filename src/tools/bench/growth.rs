//! `growth-stack bench --growth DIR`: the growth queries timed through the API and as the
//! same SQL run directly on the same file, in one run: a 4-step funnel over 30 days, an
//! 8-week retention table and the growth overview. Then the long-range table of issue 12:
//! the overview, events and Growth reads, the funnel and daily retention at 24 hours and
//! at 30 days through the API.

use std::path::Path;
use std::time::Instant;

use duckdb::types::Value;
use duckdb::Connection;

use super::client::{http_client, percentiles, send, BenchError};
use crate::config::Config;
use crate::growth::active::{self, ActiveSpec};
use crate::growth::funnel::{self, FunnelSpec, Source, Step};
use crate::growth::overview;
use crate::growth::retention::{self, RetentionSpec};
use crate::growth::time::{Interval, DAY_US};
use crate::store::{ts_param, StoreError};
use crate::{ai, app, dbperf, growth, vitals};

const FUNNEL_STEPS: [&str; 4] = [
    "recipe_searched",
    "recipe_viewed",
    "recipe_saved",
    "meal_added_to_plan",
];

fn funnel_spec(now_us: i64) -> FunnelSpec {
    FunnelSpec {
        source: Source::Events,
        steps: FUNNEL_STEPS
            .iter()
            .map(|e| Step {
                event: e.to_string(),
                filters: Vec::new(),
            })
            .collect(),
        window_us: 7 * DAY_US,
        from_us: now_us - 30 * DAY_US,
        to_us: now_us,
        breakdown: None,
    }
}

fn retention_spec(now_us: i64) -> RetentionSpec {
    RetentionSpec {
        start_event: None,
        return_event: None,
        interval: Interval::Week,
        periods: 8,
        to_us: now_us,
        offset_us: 0,
    }
}

fn active_spec(now_us: i64) -> ActiveSpec {
    ActiveSpec {
        from_us: now_us - 30 * DAY_US,
        to_us: now_us,
        offset_us: 0,
    }
}

/// Runs `sql` and reads every row, as any client of DuckDB would.
fn raw(conn: &Connection, sql: &str, params: Vec<Value>) -> Result<usize, BenchError> {
    let db = |e: duckdb::Error| BenchError::Failed(e.to_string());
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let mut rows = stmt.query(duckdb::params_from_iter(params)).map_err(db)?;
    let mut n = 0;
    while rows.next().map_err(db)?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// One statement's text and parameters.
type Sql = (String, Vec<Value>);

/// The raw SQL of each measured query, built for "now".
fn raw_queries(now_us: i64) -> Vec<(&'static str, Vec<Sql>)> {
    let a = active_spec(now_us);
    let breakdown = vec![ts_param(a.from_us), ts_param(a.to_us)];
    vec![
        (
            "4-step funnel, 30 days",
            vec![funnel::sql(&funnel_spec(now_us))],
        ),
        (
            "8-week retention",
            vec![retention::sql(&retention_spec(now_us))],
        ),
        (
            "overview (breakdowns + DAU/WAU/MAU)",
            vec![(overview::breakdown_sql(), breakdown), active::sql(&a)],
        ),
    ]
}

/// The issue-12 table: each long-range read at 24 hours and at 30 days through the API,
/// the two alternating in every repetition, p50 after one warm-up.
async fn ranges(
    client: &super::client::HttpClient,
    url: &str,
    reps: usize,
) -> Result<(), BenchError> {
    let funnel = |range: &str| {
        serde_json::json!({ "steps": FUNNEL_STEPS, "window": "7d", "range": range }).to_string()
    };
    let reads: [(&str, &str, &str); 5] = [
        ("`GET /api/overview`", "GET", "/api/overview"),
        (
            "`GET /api/analytics/events`",
            "GET",
            "/api/analytics/events",
        ),
        (
            "`GET /api/analytics/growth`",
            "GET",
            "/api/analytics/growth",
        ),
        (
            "4-step funnel (`POST /api/analytics/funnels`)",
            "POST",
            "/api/analytics/funnels",
        ),
        (
            "retention, daily cohorts (`?interval=day&periods=N`)",
            "GET",
            "/api/analytics/retention?interval=day",
        ),
    ];
    println!();
    println!("| read | 24h p50 | 30d p50 | 30d / 24h |");
    println!("|---|---:|---:|---:|");
    'reads: for (label, method, path) in reads {
        let mut times = [Vec::new(), Vec::new()];
        for rep in 0..=reps {
            for (i, (range, periods)) in [("24h", 1), ("30d", 29)].into_iter().enumerate() {
                let (target, body) = match method {
                    "POST" => (path.to_string(), funnel(range)),
                    _ if path.contains("retention") => {
                        (format!("{path}&periods={periods}"), String::new())
                    }
                    _ => (format!("{path}?range={range}"), String::new()),
                };
                let t = Instant::now();
                let (status, answer) =
                    send(client, method, &format!("{url}{target}"), body).await?;
                let took = t.elapsed();
                if status != 200 {
                    // Shown, not fatal: e.g. another capability's part of the overview
                    // running out of `storage.memory_limit` on a large file.
                    let why = String::from_utf8_lossy(&answer);
                    println!(
                        "| {label} | {range}: {status} {} | | |",
                        why.chars().take(120).collect::<String>()
                    );
                    continue 'reads;
                }
                if rep > 0 {
                    times[i].push(took);
                }
            }
        }
        let (day, _) = percentiles(&mut times[0]);
        let (month, _) = percentiles(&mut times[1]);
        println!(
            "| {label} | {day:.0} ms | {month:.0} ms | {:.1}x |",
            month / day.max(0.001)
        );
    }
    Ok(())
}

pub async fn run(config: &Config, data_dir: &Path, reps: usize) -> Result<(), BenchError> {
    let reps = reps.max(1);
    let db_path = data_dir.join("growth.duckdb");
    if !db_path.exists() {
        return Err(BenchError::Failed(format!(
            "{} does not exist; fill it first: growth-stack demo --events 10000000 --data-dir {}",
            db_path.display(),
            data_dir.display()
        )));
    }
    println!(
        "growth-stack bench --growth {}: {reps} timed runs per query after one warm-up, {} cores",
        data_dir.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // The real server, built as `serve` builds it, in this process on the same store, so
    // each API call and its raw SQL alternate under the same load and DuckDB caches.
    let mut server_config = config.clone();
    server_config.server.data_dir = data_dir.to_path_buf();
    server_config.server.no_auth = true;
    server_config.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let app = app::build(server_config).await?;
    let url = app.url();
    let store = app.state.store.clone();
    let events: i64 = store
        .query(|c| Ok(c.query_row("SELECT count(*) FROM user_events", [], |r| r.get(0))?))
        .await?;
    let users: i64 = store
        .query(|c| Ok(c.query_row("SELECT count(*) FROM user_profiles", [], |r| r.get(0))?))
        .await?;
    println!("file: {events} events, {users} user profiles");
    // Reads are timed in the steady state a running server keeps: every roll-up current.
    let t = Instant::now();
    growth::catch_up(&store).await?;
    vitals::catch_up(&store).await?;
    ai::catch_up(&store).await?;
    dbperf::catch_up(&store).await?;
    println!(
        "roll-ups brought up to date in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = http_client(1);
    let funnel_body =
        serde_json::json!({ "steps": FUNNEL_STEPS, "window": "7d", "range": "30d" }).to_string();
    let calls: [(&str, &str, String); 3] = [
        ("POST", "/api/analytics/funnels", funnel_body),
        (
            "GET",
            "/api/analytics/retention?interval=week&periods=8",
            String::new(),
        ),
        ("GET", "/api/analytics/growth?range=30d", String::new()),
    ];
    let names: Vec<&str> = raw_queries(0).iter().map(|q| q.0).collect();
    println!();
    println!("| query | raw SQL p50 | API p50 | API / raw | raw p99 | API p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, (method, path, body)) in calls.iter().enumerate() {
        let mut raw_times = Vec::new();
        let mut api_times = Vec::new();
        for rep in 0..=reps {
            let t = Instant::now();
            store
                .query(move |c| {
                    let now = chrono::Utc::now().timestamp_micros();
                    let mut n = 0;
                    for (sql, params) in raw_queries(now).swap_remove(i).1 {
                        n += raw(c, &sql, params)
                            .map_err(|e| StoreError::Internal(e.to_string()))?;
                    }
                    Ok(n)
                })
                .await?;
            let raw_took = t.elapsed();
            let t = Instant::now();
            let (status, answer) =
                send(&client, method, &format!("{url}{path}"), body.clone()).await?;
            let api_took = t.elapsed();
            if status != 200 {
                return Err(BenchError::Failed(format!(
                    "{method} {path} answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                )));
            }
            if rep > 0 {
                raw_times.push(raw_took);
                api_times.push(api_took);
            }
        }
        let (raw50, raw99) = percentiles(&mut raw_times);
        let (api50, api99) = percentiles(&mut api_times);
        println!(
            "| {} | {raw50:.1} ms | {api50:.1} ms | {:.2} | {raw99:.1} ms | {api99:.1} ms |",
            names[i],
            api50 / raw50
        );
    }
    ranges(&client, &url, reps).await?;
    let _ = stop.send(());
    server
        .await
        .map_err(|e| BenchError::Failed(e.to_string()))??;
    Ok(())
}
