//! `growth-stack bench --database`: fingerprinting throughput on one core (every text new,
//! and the memo path ORMs' bind-parameter texts take), batched HTTP ingest of query timings
//! next to the same of events, and with `--database-url` the select-through cache's hits
//! next to the same query sent to PostgreSQL directly.

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::client::{
    http_client, load_url, percentiles, print_phase, request, BenchError, HttpClient, Server,
};
use super::ingest::bodies;
use crate::cli::BenchArgs;
use crate::dbperf::{fingerprint, memo};

/// Typical ORM statements (Prisma, ActiveRecord, Django, SQLAlchemy shapes).
const TEMPLATES: &[&str] = &[
    "SELECT \"public\".\"recipes\".\"id\", \"public\".\"recipes\".\"name\", \"public\".\"recipes\".\"user_id\" FROM \"public\".\"recipes\" WHERE \"public\".\"recipes\".\"user_id\" = {} ORDER BY \"public\".\"recipes\".\"created_at\" DESC LIMIT {} OFFSET {}",
    "SELECT \"ingredients\".* FROM \"ingredients\" WHERE \"ingredients\".\"recipe_id\" = {}",
    "SELECT \"meal_plans\".\"id\", \"meal_plans\".\"week_start\" FROM \"meal_plans\" WHERE (\"meal_plans\".\"user_id\" = {} AND \"meal_plans\".\"week_start\" >= '2026-01-0{}') LIMIT {}",
    "UPDATE \"user_profiles\" SET \"last_activity\" = now() WHERE \"user_profiles\".\"user_id\" = {}",
    "INSERT INTO \"shopping_list_items\" (\"list_id\", \"ingredient_id\", \"quantity\") VALUES ({}, {}, {}) RETURNING \"id\"",
    "SELECT COUNT(*) AS \"__count\" FROM \"favorites\" WHERE \"favorites\".\"recipe_id\" IN ({}, {}, {})",
];

fn orm_query(i: u64) -> String {
    with_literals(i, |n| (i * 7 + n * 13) % 9 + 1)
}

/// Every text distinct: literals run with `i`, as ids in real traffic do.
fn distinct_query(i: u64) -> String {
    with_literals(i, |n| i * 10 + n)
}

fn with_literals(i: u64, literal: impl Fn(u64) -> u64) -> String {
    let t = TEMPLATES[(i % TEMPLATES.len() as u64) as usize];
    let mut out = String::with_capacity(t.len() + 16);
    let mut n = 0u64;
    for (k, piece) in t.split("{}").enumerate() {
        if k > 0 {
            n += 1;
            out.push_str(&literal(n).to_string());
        }
        out.push_str(piece);
    }
    out
}

fn bind_text(i: u64) -> String {
    let t = TEMPLATES[(i % TEMPLATES.len() as u64) as usize];
    let mut out = String::new();
    for (k, piece) in t.split("{}").enumerate() {
        if k > 0 {
            out.push_str(&format!("${k}"));
        }
        out.push_str(piece);
    }
    out
}

fn fingerprinting() {
    const N: u64 = 200_000;
    let texts: Vec<String> = (0..N).map(orm_query).collect();
    let start = Instant::now();
    for t in &texts {
        black_box(fingerprint(black_box(t)));
    }
    let parsed = N as f64 / start.elapsed().as_secs_f64();
    let binds: Vec<String> = (0..N).map(bind_text).collect();
    let m = memo();
    let start = Instant::now();
    for t in &binds {
        black_box(m.get(black_box(t)));
    }
    let memo_rate = N as f64 / start.elapsed().as_secs_f64();
    // What ingest does with ORM texts that carry their literals: every text is new to
    // the exact memo, and the shape memo spares the parse.
    let distinct: Vec<String> = (0..N).map(distinct_query).collect();
    let start = Instant::now();
    for t in &distinct {
        black_box(m.get(black_box(t)));
    }
    let shape_rate = N as f64 / start.elapsed().as_secs_f64();
    println!(
        "fingerprinting, one thread: {parsed:.0} queries/s parsed (every text new), \
         {shape_rate:.0} queries/s through the ingest memo for distinct texts with literals (shape memo), \
         {memo_rate:.0} queries/s for repeated bind-parameter texts (exact memo)"
    );
}

fn timing_bodies(requests: usize, per_request: usize) -> Vec<String> {
    let mut i = 0u64;
    (0..requests)
        .map(|r| {
            let items: Vec<serde_json::Value> = (0..per_request)
                .map(|_| {
                    i += 1;
                    serde_json::json!({
                        "query": orm_query(i),
                        "duration": (i % 50) as f64 + 0.5,
                        "rows": i % 20,
                        "request_id": format!("req-{r}"),
                        "user_id": format!("user-{}", i % 1000),
                    })
                })
                .collect();
            serde_json::Value::Array(items).to_string()
        })
        .collect()
}

pub async fn run(args: &BenchArgs) -> Result<(), BenchError> {
    println!(
        "growth-stack bench --database: {} items, batches of {}, {} connections, {} cores",
        args.events,
        args.batch,
        args.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    fingerprinting();

    let dir = tempfile::tempdir()?;
    let env: Vec<(&str, Option<String>)> = match &args.database_url {
        Some(url) => vec![("GROWTH_DATABASE_URL", Some(url.clone()))],
        None => vec![("GROWTH_DATABASE_URL", None)],
    };
    let server = Server::start_with(dir.path(), &env).await?;
    let client = http_client(args.concurrency);
    let requests = args.events.div_ceil(args.batch as u64) as usize;
    let events = load_url(
        format!("{}/api/analytics/events", server.url),
        "batched events",
        bodies(requests, args.batch, false),
        args.batch as u64,
        args.concurrency,
        None,
    )
    .await?;
    print_phase(&events);
    let timings = load_url(
        format!("{}/api/analytics/database-performance", server.url),
        "batched query timings",
        timing_bodies(requests, args.batch),
        args.batch as u64,
        args.concurrency,
        None,
    )
    .await?;
    print_phase(&timings);
    println!(
        "ratio query timings / events: {:.2}",
        timings.events_per_sec() / events.events_per_sec()
    );
    if let Some(url) = &args.database_url {
        select(&client, &server.url, url).await?;
    }
    server.stop().await
}

async fn select(client: &HttpClient, base: &str, url: &str) -> Result<(), BenchError> {
    const REPS: usize = 2000;
    let failed = |e: tokio_postgres::Error| BenchError::Failed(format!("database: {e}"));
    let (pg, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(failed)?;
    tokio::spawn(conn);
    pg.batch_execute(
        "CREATE TABLE IF NOT EXISTS gs_bench_recipes AS SELECT i AS id, 'user-' || (i % 1000) AS user_id, \
           'recipe ' || i AS name, i % 120 AS cook_time FROM generate_series(1, 200000) i;
         CREATE INDEX IF NOT EXISTS gs_bench_recipes_user ON gs_bench_recipes (user_id, id);
         ANALYZE gs_bench_recipes;",
    )
    .await
    .map_err(failed)?;
    let sql = "SELECT coalesce(json_agg(r), '[]'::json)::text FROM (SELECT id, name, cook_time \
               FROM gs_bench_recipes WHERE user_id = $1 ORDER BY id DESC LIMIT 20) r";
    let stmt = pg.prepare(sql).await.map_err(failed)?;
    let mut direct = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let t = Instant::now();
        let row = pg.query_one(&stmt, &[&"user-42"]).await.map_err(failed)?;
        black_box(row.get::<_, String>(0));
        direct.push(t.elapsed());
    }
    let body =
        serde_json::json!({ "table": "gs_bench_recipes", "columns": ["id", "name", "cook_time"],
        "filters": { "user_id": "user-42" }, "order": { "column": "id", "ascending": false },
        "limit": 20, "ttl": 3600 })
        .to_string();
    let url = format!("{base}/api/db/select");
    let headers = [("content-type", "application/json")];
    let first = request(client, "POST", &url, body.clone(), &headers).await?;
    if first.status != 200 {
        return Err(BenchError::Failed(format!(
            "select answered {}: {}",
            first.status,
            String::from_utf8_lossy(&first.body)
        )));
    }
    let mut hits: Vec<Duration> = Vec::with_capacity(REPS);
    for _ in 0..REPS {
        let t = Instant::now();
        let r = request(client, "POST", &url, body.clone(), &headers).await?;
        hits.push(t.elapsed());
        if r.headers.get("x-growth-cache").is_none_or(|v| v != "HIT") || r.body != first.body {
            return Err(BenchError::Failed("a repeated select was not a HIT".into()));
        }
    }
    let (d50, d99) = percentiles(&mut direct);
    let (h50, h99) = percentiles(&mut hits);
    println!(
        "select, one client, sequential: direct PostgreSQL (prepared, same SQL) p50 {d50:.3} ms p99 {d99:.3} ms; \
         POST /api/db/select HIT over HTTP p50 {h50:.3} ms p99 {h99:.3} ms"
    );
    Ok(())
}
