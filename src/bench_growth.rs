//! `growth-stack bench --growth DIR`: the growth queries timed through the API and as the
//! same SQL run directly on the same file, in one run: a 4-step funnel over 30 days, an
//! 8-week retention table and the growth overview.

use std::path::Path;
use std::time::{Duration, Instant};

use duckdb::types::Value;
use duckdb::Connection;

use crate::app::store_options;
use crate::bench::{http_client, percentiles, send, BenchError, Server};
use crate::config::Config;
use crate::growth::active::{self, ActiveSpec};
use crate::growth::funnel::{self, FunnelSpec, Source, Step};
use crate::growth::overview;
use crate::growth::retention::{self, RetentionSpec};
use crate::growth::time::{Interval, DAY_US};
use crate::store::Store;

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
    let breakdown = vec![
        crate::store::ts_param(a.from_us),
        crate::store::ts_param(a.to_us),
    ];
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

    // (a) The SQL itself, on a connection of our store (same DuckDB settings as the server).
    let mut raw_p50 = Vec::new();
    {
        let opts = store_options(config);
        let store = {
            let p = db_path.clone();
            tokio::task::spawn_blocking(move || Store::open(&p, &opts))
                .await
                .map_err(|e| BenchError::Failed(e.to_string()))??
        };
        let events: i64 = store
            .query(|c| Ok(c.query_row("SELECT count(*) FROM user_events", [], |r| r.get(0))?))
            .await?;
        let users: i64 = store
            .query(|c| Ok(c.query_row("SELECT count(*) FROM user_profiles", [], |r| r.get(0))?))
            .await?;
        println!("file: {events} events, {users} user profiles");
        let names: Vec<&str> = raw_queries(0).iter().map(|q| q.0).collect();
        for i in 0..names.len() {
            let mut times = Vec::new();
            let mut rows = 0;
            for rep in 0..=reps {
                let t = Instant::now();
                rows = store
                    .query(move |c| {
                        let now = chrono::Utc::now().timestamp_micros();
                        let mut n = 0;
                        for (sql, params) in raw_queries(now).swap_remove(i).1 {
                            n += raw(c, &sql, params)
                                .map_err(|e| crate::store::StoreError::Internal(e.to_string()))?;
                        }
                        Ok(n)
                    })
                    .await?;
                if rep > 0 {
                    times.push(t.elapsed());
                }
            }
            raw_p50.push(percentiles(&mut times));
            println!(
                "raw SQL  {:<38} p50 {:>8.1} ms  p99 {:>8.1} ms  ({rows} rows)",
                names[i], raw_p50[i].0, raw_p50[i].1
            );
        }
        store.close().await?;
    }

    // (b) The same questions through the API of a server process on the same file.
    let server = Server::start(data_dir).await?;
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
    let mut api_p50 = Vec::new();
    for (method, path, body) in &calls {
        let url = format!("{}{path}", server.url);
        let mut times: Vec<Duration> = Vec::new();
        for rep in 0..=reps {
            let t = Instant::now();
            let (status, answer) = send(&client, method, &url, body.clone()).await?;
            if status != 200 {
                return Err(BenchError::Failed(format!(
                    "{method} {path} answered {status}: {}",
                    String::from_utf8_lossy(&answer)
                )));
            }
            if rep > 0 {
                times.push(t.elapsed());
            }
        }
        api_p50.push(percentiles(&mut times));
    }
    server.stop().await?;
    println!();
    println!("| query | raw SQL p50 | API p50 | API / raw |");
    println!("|---|---:|---:|---:|");
    for (i, (name, _)) in raw_queries(0).iter().enumerate() {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.2} |",
            raw_p50[i].0,
            api_p50[i].0,
            api_p50[i].0 / raw_p50[i].0
        );
    }
    Ok(())
}
