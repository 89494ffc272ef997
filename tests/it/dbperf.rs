//! Database optimisation through HTTP: fingerprints, N+1 findings, and, against a real
//! PostgreSQL started for the test, the select-through cache, index advice, unused and
//! duplicate indexes and the pg_stat_statements poll.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{client, error_of, Server, TOKEN};

fn ok(r: crate::helpers::Response) {
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
}

#[test]
fn three_spellings_are_one_fingerprint_without_literals() {
    let s = Server::start();
    ok(s.post_json(
        "/api/analytics/database-performance",
        &json!([
            { "query": "SELECT * FROM meal_plans WHERE user_id = 42", "duration": 3 },
            { "query": "select *  from meal_plans\n where user_id=7", "duration": 5 },
            { "query": "SELECT * FROM meal_plans WHERE user_id = '0b9c'", "duration": 4 },
            { "query": "SELECT * FROM recipes WHERE id IN (1, 2, 3)", "duration": 1 },
        ]),
    ));
    let r = s.get_json("/api/analytics/database-performance/queries");
    let qs = r["queries"].as_array().unwrap();
    assert_eq!(r["totals"]["fingerprints"], 2, "{r}");
    let meal = qs
        .iter()
        .find(|q| q["query"].as_str().unwrap().contains("meal_plans"))
        .unwrap();
    assert_eq!(meal["calls"], 3, "{meal}");
    let text = meal["query"].as_str().unwrap();
    for literal in ["42", "7", "0b9c"] {
        assert!(!text.contains(literal), "{text}");
    }
    assert_eq!(meal["total_ms"], 12.0);
    assert_eq!(meal["max_ms"], 5.0);
    assert!(meal["share"].as_f64().unwrap() > 0.9);
    assert_eq!(r["sort"], "total");
    assert_eq!(qs[0]["fingerprint"], meal["fingerprint"], "most time first");
    // The guide's column keeps what was sent.
    let raw = s.get_json("/api/analytics/database-performance");
    let sent: Vec<&str> = raw["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    assert!(sent.contains(&"SELECT * FROM meal_plans WHERE user_id = 42"));
    let e = error_of(
        s.get("/api/analytics/database-performance/queries?sort=fastest"),
        400,
    );
    assert!(e["message"].as_str().unwrap().contains("sort"), "{e}");
}

#[test]
fn literals_can_be_kept_out_of_stored_text() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        dir.path(),
        &[],
        &[("GROWTH_DATABASE_STORE_LITERALS", "false")],
    );
    ok(s.post_json(
        "/api/analytics/database-performance",
        &json!({ "query": "SELECT * FROM users WHERE email = 'ann@example.com'", "duration": 2 }),
    ));
    let raw = s.get_json("/api/analytics/database-performance");
    let stored = raw["rows"][0]["query"].as_str().unwrap();
    assert!(!stored.contains("ann@example.com"), "{stored}");
    assert!(stored.contains("$1"), "{stored}");
}

#[test]
fn repeats_in_one_request_are_an_n_plus_one_finding() {
    let s = Server::start();
    let mut batch = Vec::new();
    for i in 0..8 {
        batch.push(json!({
            "query": format!("SELECT * FROM ingredients WHERE recipe_id = {i}"),
            "duration": 9.5, "request_id": "req-1", "route": "/recipes/:id",
            "source": "src/recipes.ts:42",
        }));
    }
    // Four in another request are below the rule's 5; eight fast ones stay under 50 ms.
    for i in 0..4 {
        batch.push(
            json!({ "query": format!("SELECT * FROM ingredients WHERE recipe_id = {i}"),
            "duration": 30, "requestId": "req-2" }),
        );
    }
    for i in 0..8 {
        batch.push(
            json!({ "query": format!("SELECT * FROM tags WHERE id = {i}"),
            "duration": 1, "request_id": "req-3" }),
        );
    }
    ok(s.post_json("/api/analytics/database-performance", &Value::Array(batch)));
    let r = s.get_json("/api/analytics/database-performance/n-plus-one");
    let f = r["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{r}");
    assert_eq!(f[0]["request"], "req-1");
    assert_eq!(f[0]["kind"], "request");
    assert_eq!(f[0]["count"], 8);
    assert_eq!(f[0]["total_ms"], 76.0);
    assert_eq!(f[0]["route"], "/recipes/:id");
    assert_eq!(f[0]["source"], "src/recipes.ts:42");
    assert!((f[0]["lost_ms"].as_f64().unwrap() - 66.5).abs() < 1e-9);
    assert_eq!(r["queries"][0]["requests"], 1);
    assert!(r["queries"][0]["query"]
        .as_str()
        .unwrap()
        .contains("recipe_id = $1"));
    assert_eq!(r["rule"]["min_calls"], 5);
}

#[test]
fn select_without_a_database_is_404_and_needs_a_key() {
    let s = Server::start();
    let url = format!("{}/api/db/select", s.url);
    let body = json!({ "table": "recipes" });
    let r = client().post(&url).json(&body).send().unwrap();
    error_of(r, 401);
    let r = client()
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .unwrap();
    let e = error_of(r, 404);
    assert!(
        e["message"].as_str().unwrap().contains("database.url"),
        "{e}"
    );
    let advice = s.get_json("/api/analytics/database-performance/index-advice");
    assert_eq!(advice["database"], false);
}

/// A PostgreSQL cluster in a temp dir on a free loopback port, run as the `postgres` user
/// (PostgreSQL refuses to run as root), stopped when dropped.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    let path = bin.join(tool);
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Postgres {
    pub fn start() -> Postgres {
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("postgres").exists())
            .collect();
        bins.sort();
        let bin = bins.pop().expect("no /usr/lib/postgresql/*/bin/postgres");
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let data = dir.path().join("data");
        let mut c = as_postgres(&bin, "initdb");
        c.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        run(c, "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = as_postgres(&bin, "pg_ctl");
        c.arg("-D").arg(&data).arg("-l").arg(dir.path().join("log")).arg("-o").arg(format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements \
             -c fsync=off -c track_io_timing=on",
            dir.path().display()
        ));
        c.args(["-w", "-t", "60", "start"]);
        run(c, "pg_ctl start");
        let pg = Postgres { bin, dir, port };
        pg.psql("CREATE EXTENSION pg_stat_statements");
        pg
    }

    pub fn psql(&self, sql: &str) -> String {
        let mut c = as_postgres(&self.bin, "psql");
        c.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .args([
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-c", sql]);
        run(c, "psql")
    }

    pub fn url(&self, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut c = as_postgres(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = c.output();
    }
}

fn select(s: &Server, body: &Value) -> crate::helpers::Response {
    client()
        .post(format!("{}/api/db/select", s.url))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .unwrap()
}

#[test]
fn postgres_select_cache_advice_and_statements() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE recipes (id serial PRIMARY KEY, user_id text NOT NULL, name text NOT NULL, \
           description text, cook_time int, created_at timestamptz NOT NULL);
         INSERT INTO recipes (user_id, name, description, cook_time, created_at) \
           SELECT 'user-' || (i % 1000), 'recipe ' || i, 'tasty', i % 120, \
           timestamptz '2026-01-01' + i * interval '1 minute' FROM generate_series(1, 200000) i;
         CREATE INDEX recipes_name_idx ON recipes (name);
         CREATE INDEX recipes_name_cook_idx ON recipes (name, cook_time);
         ANALYZE recipes;
         CREATE ROLE reader LOGIN;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
         GRANT pg_read_all_stats TO reader;",
    );
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url("reader");
    let s = Server::start_in(
        dir.path(),
        &[],
        &[
            ("GROWTH_DATABASE_URL", url.as_str()),
            ("GROWTH_DATABASE_POLL_INTERVAL", "1"),
        ],
    );

    // MISS, then HIT with the very same bytes.
    let q = json!({ "table": "recipes", "columns": ["id", "name", "cook_time"],
        "filters": { "user_id": "user-42" }, "order": { "column": "id", "ascending": false },
        "limit": 3, "ttl": 300 });
    let first = select(&s, &q);
    assert_eq!(first.status(), 200, "{}", first.text().unwrap());
    assert_eq!(first.headers()["x-growth-cache"], "MISS");
    let rows: Value = first.json().unwrap();
    let rows = rows["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], 199_042);
    assert_eq!(rows[0]["name"], "recipe 199042");
    // Columns in the order asked for.
    let text = first.text().unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(
        at("id") < at("name") && at("name") < at("cook_time"),
        "{text}"
    );
    let second = select(&s, &q);
    assert_eq!(second.headers()["x-growth-cache"], "HIT");
    assert_eq!(first.bytes(), second.bytes());
    // The gateway key works as well as the admin token.
    let key = std::fs::read_to_string(dir.path().join("data/gateway_key")).unwrap();
    let r = client()
        .post(format!("{}/api/db/select", s.url))
        .header("x-api-key", key.trim())
        .json(&q)
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-growth-cache"], "HIT");

    // Hostile names are 400 and never reach SQL; hostile values are only values.
    for bad in [
        json!({ "table": "recipes; DROP TABLE recipes" }),
        json!({ "table": "recipes\" ; DROP TABLE recipes; --" }),
        json!({ "table": "pg_authid" }),
        json!({ "table": "recipes", "columns": ["id, (SELECT rolpassword FROM pg_authid)"] }),
        json!({ "table": "recipes", "filters": { "1=1 OR user_id": "x" } }),
        json!({ "table": "recipes", "order": { "column": "random()" } }),
        json!({ "table": "recipes", "filters": { "id": "1 OR 1=1" } }),
    ] {
        let e = error_of(select(&s, &bad), 400);
        assert!(e["message"].is_string(), "{bad}: {e}");
    }
    let r = select(
        &s,
        &json!({ "table": "recipes", "filters": { "user_id": "x' OR '1'='1" }, "ttl": 0 }),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["rows"], json!([]));
    let e = error_of(
        select(&s, &json!({ "table": "recipes", "limit": 5000 })),
        422,
    );
    assert_eq!(e["field"], "limit");
    assert_eq!(pg.psql("SELECT count(*) FROM recipes").trim(), "200000");

    // Invalidation by table, then a MISS again.
    let r = client()
        .delete(format!("{}/api/db/cache?table=recipes", s.url))
        .bearer_auth(TOKEN)
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["removed"], 1);
    assert_eq!(select(&s, &q).headers()["x-growth-cache"], "MISS");
    let stats = s.get_json("/api/db/cache");
    assert_eq!(stats["entries"], 1);
    assert!(stats["hits"].as_u64().unwrap() >= 2, "{stats}");

    // Ten slow reports of one query on the 200k-row table without an index on user_id.
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.push(json!({
            "query": format!("SELECT id, name FROM recipes WHERE user_id = 'user-{i}' ORDER BY created_at DESC LIMIT 20"),
            "duration": 1500 + i,
        }));
    }
    ok(s.post_json("/api/analytics/database-performance", &Value::Array(batch)));

    // Every select call filed its own timing row (cached on a hit).
    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let r = s.get_json("/api/analytics/database-performance");
        if r["totals"]["cached"].as_u64().unwrap_or(0) >= 2 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(stats["totals"]["cached"].as_u64().unwrap() >= 2, "{stats}");

    let a = s.get_json("/api/analytics/database-performance/index-advice");
    assert_eq!(a["database"], true, "{a}");
    assert!(a["database_error"].is_null(), "{a}");
    let advice = a["advice"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["query"].as_str().unwrap().contains("user_id = $1"))
        .unwrap_or_else(|| panic!("no advice for the slow query: {a}"));
    assert_eq!(advice["columns"][0], "user_id", "{advice}");
    assert_eq!(advice["columns"][1], "created_at", "{advice}");
    let stmt = advice["statement"].as_str().unwrap();
    assert!(
        stmt.starts_with("CREATE INDEX CONCURRENTLY ON public.recipes (user_id"),
        "{stmt}"
    );
    assert!(advice["reason"].as_str().unwrap().contains("user_id"));
    let before = advice["explain_before"].as_str().unwrap_or_default();
    assert!(before.contains("recipes"), "{advice}");
    let dup = a["duplicate_indexes"].as_array().unwrap();
    assert!(
        dup.iter()
            .any(|d| d["index"] == "recipes_name_idx" && d["covered_by"] == "recipes_name_cook_idx"),
        "{a}"
    );
    let unused: Vec<&str> = a["unused_indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(unused.contains(&"recipes_name_cook_idx"), "{unused:?}");
    assert!(
        !unused.contains(&"recipes_pkey"),
        "unique indexes are never unused"
    );

    // The index the advice names answers the query; once made, the advice says so.
    pg.psql("CREATE INDEX recipes_user_created_idx ON recipes (user_id, created_at)");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = s.get_json("/api/analytics/database-performance/index-advice");
        let covered = a["advice"].as_array().unwrap().iter().any(|x| {
            x["query"].as_str().unwrap().contains("user_id = $1")
                && x["covered_by"] == "recipes_user_created_idx"
        });
        if covered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "advice never saw the new index: {a}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // pg_stat_statements is polled and merged beside the reported timings.
    pg.psql("SELECT count(*) FROM recipes WHERE cook_time = 7");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.get_json("/api/analytics/database-performance/queries");
        let found = r["postgres"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["query"].as_str().unwrap_or("").contains("cook_time"));
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pg_stat_statements never polled: {r}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
