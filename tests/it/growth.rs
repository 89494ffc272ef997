//! Growth analytics over HTTP: beacons from the tracker, visitor ids, bots, profiles in the
//! same commit, funnels (ad hoc and from conversions), retention, adoption, overview.

use serde_json::{json, Value};

use crate::helpers::{client, error_of, row_where, Response, Server, TOKEN};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn beacon(s: &Server, query: &str, ua: &str, body: &Value) -> Value {
    let r = client()
        .post(format!("{}/api/analytics/events{query}", s.url))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://recipes.example")
        .header("user-agent", ua)
        .body(body.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().unwrap()
}

fn post_funnel(s: &Server, body: &Value) -> Response {
    client()
        .post(format!("{}/api/analytics/funnels", s.url))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .unwrap()
}

#[test]
fn tracker_beacons_get_visitor_ids_and_bots_are_dropped() {
    let s = Server::start_with(&["--ingest-key", "k123k123k123k123"]);
    let pageview = json!({
        "event": "pageview", "route": "/recipes/123",
        "referrer": "https://www.google.com/search?q=soup", "sessionId": "s1",
        "properties": { "url": "https://recipes.example/recipes/123?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
                        "utm_source": "newsletter" }
    });
    assert_eq!(
        beacon(&s, "?key=k123k123k123k123", CHROME, &pageview)["accepted"],
        1
    );
    // The same sender again, and a move inside the site (not a referral).
    let inner = json!({ "event": "pageview", "route": "/meal-plan", "referrer": "https://recipes.example/recipes/123" });
    beacon(&s, "?key=k123k123k123k123", CHROME, &inner);
    beacon(
        &s,
        "?key=k123k123k123k123",
        IPHONE,
        &json!({ "event": "recipe_saved", "properties": { "feature": "favourites" } }),
    );
    let bot = beacon(&s, "?key=k123k123k123k123", GOOGLEBOT, &pageview);
    assert_eq!(
        (bot["accepted"].clone(), bot["bots"].clone()),
        (json!(0), json!(1))
    );

    let ev = s.get_json("/api/analytics/events?range=1h");
    assert_eq!(ev["totals"]["events"], 3);
    assert_eq!(ev["totals"]["users"], 2, "two senders, no user ids");
    let rows = ev["rows"].as_array().unwrap();
    let first = rows.iter().find(|r| r["route"] == "/recipes/123").unwrap();
    let visitor = first["visitor_id"].as_str().unwrap();
    assert!(
        visitor.starts_with("v_") && !visitor.contains("127"),
        "{visitor}"
    );
    assert!(first["user_id"].is_null());
    assert_eq!(first["referrer_domain"], "google.com");
    assert_eq!(
        (
            first["utm_source"].clone(),
            first["utm_medium"].clone(),
            first["utm_campaign"].clone()
        ),
        (json!("newsletter"), json!("email"), json!("spring"))
    );
    assert_eq!(
        (first["browser"].clone(), first["device"].clone()),
        (json!("Chrome"), json!("desktop"))
    );
    let inner = rows.iter().find(|r| r["route"] == "/meal-plan").unwrap();
    assert_eq!(
        inner["visitor_id"], visitor,
        "same site, IP and agent on the same day"
    );
    assert!(inner["referrer_domain"].is_null());
    let saved = rows.iter().find(|r| r["event"] == "recipe_saved").unwrap();
    assert_eq!(
        (saved["feature"].clone(), saved["device"].clone()),
        (json!("favourites"), json!("mobile"))
    );
    assert_ne!(saved["visitor_id"], visitor);

    let o = s.get_json("/api/analytics/growth?range=24h");
    assert_eq!(o["totals"]["pageviews"], 2);
    assert_eq!(o["breakdowns"]["referrers"][0]["key"], "google.com");
    assert_eq!(o["breakdowns"]["utm_campaigns"][0]["key"], "spring");
    assert_eq!(o["breakdowns"]["routes"].as_array().unwrap().len(), 2);
    assert_eq!(o["breakdowns"]["browsers"].as_array().unwrap().len(), 2);
    assert_eq!(o["active"]["current"]["dau"], 2);
    assert_eq!(o["active"]["current"]["mau"], 2);

    // Without the key nothing is stored.
    let r = client()
        .post(format!("{}/api/analytics/events", s.url))
        .header("content-type", "text/plain")
        .body(pageview.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn profiles_follow_their_events() {
    let s = Server::start_with(&["--no-auth"]);
    let r = s.post_json(
        "/api/analytics/events",
        &json!([
            { "event": "recipe_viewed", "userId": "user-42", "properties": { "feature": "search" } },
            { "event": "meal_plan_created", "userId": "user-42", "properties": { "feature": "planner" } },
            { "event": "recipe_viewed", "userId": "user-42", "properties": { "feature": "search" } },
            { "event": "recipe_viewed", "userId": 7 },
        ]),
    );
    assert_eq!(r.status(), 200);
    s.post_json(
        "/api/analytics/events",
        &json!({ "event": "logout", "user_id": "user-42" }),
    );
    let u = s.get_json("/api/analytics/users/user-42");
    assert_eq!(u["profile"]["total_events"], 4);
    assert_eq!(u["profile"]["features_used"], json!(["planner", "search"]));
    assert_eq!(u["events"].as_array().unwrap().len(), 4);
    assert_eq!(u["events"][0]["event"], "logout", "newest first");
    assert_eq!(
        s.get_json("/api/analytics/users/7")["profile"]["total_events"],
        1
    );
    let e = error_of(s.get("/api/analytics/users/nobody"), 404);
    assert_eq!(e["code"], "not_found");
    // A rejected batch changes no profile.
    let bad = json!([{ "event": "x", "userId": "user-42" }, { "event": "" }]);
    error_of(s.post_json("/api/analytics/events", &bad), 422);
    assert_eq!(
        s.get_json("/api/analytics/users/user-42")["profile"]["total_events"],
        4
    );
}

#[test]
fn funnels_ad_hoc_and_from_conversions() {
    let s = Server::start();
    let now = chrono::Utc::now().timestamp_millis();
    let mut events = Vec::new();
    // u1 does all three steps, u2 stops after two, u3 does step 2 only before step 1
    // (enters, no progress), u4 finishes too late for a 1-hour window.
    for (user, steps) in [
        ("u1", vec![("search", 0), ("view", 60), ("save", 120)]),
        ("u2", vec![("search", 0), ("view", 300)]),
        ("u3", vec![("view", 0), ("search", 60)]),
        ("u4", vec![("search", 0), ("view", 60), ("save", 7200)]),
    ] {
        for (event, secs) in steps {
            events.push(json!({ "event": event, "userId": user, "createdAt": chrono::DateTime::from_timestamp_millis(now - 10_000_000 + secs * 1000).unwrap().to_rfc3339(),
                                "properties": { "plan": if user == "u1" { "pro" } else { "free" } } }));
        }
    }
    assert_eq!(
        s.post_json("/api/analytics/events", &Value::Array(events))
            .status(),
        200
    );
    let r = post_funnel(
        &s,
        &json!({ "steps": ["search", "view", "save"], "window": "1h", "range": "24h", "breakdown": "plan" }),
    );
    assert_eq!(r.status(), 200);
    let f: Value = r.json().unwrap();
    let users: Vec<u64> = f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, [4, 3, 1]);
    assert_eq!(f["steps"][2]["drop_off"], 2);
    assert_eq!(f["steps"][1]["median_seconds_from_previous"], 60.0);
    assert_eq!(f["window_seconds"], 3600);
    let pro = row_where(&f["breakdowns"], "value", "pro");
    assert_eq!(pro["steps"][2]["users"], 1);
    // A property filter on a step.
    let r = post_funnel(
        &s,
        &json!({ "steps": [{ "event": "search", "filters": [{ "property": "plan", "value": "free" }] }, "view"], "window": 86400 }),
    );
    let f: Value = r.json().unwrap();
    assert_eq!(f["steps"][0]["users"], 3);
    assert_eq!(f["steps"][1]["conversion_from_first"], 2.0 / 3.0);

    for (body, field) in [
        (json!({ "steps": ["one"] }), "steps"),
        (
            json!({ "steps": ["a","b","c","d","e","f","g","h","i","j","k"] }),
            "steps",
        ),
        (
            json!({ "steps": ["a", "b"], "window": "forever" }),
            "window",
        ),
        (json!({ "steps": ["a", ""] }), "event"),
        (
            json!({ "steps": [{ "event": "a", "filters": [{ "property": "p", "op": "like", "value": 1 }] }, "b"] }),
            "op",
        ),
    ] {
        let e = error_of(post_funnel(&s, &body), 422);
        assert_eq!(e["field"], field, "{body}");
    }
    error_of(
        post_funnel(&s, &json!({ "steps": ["a", "b"], "range": "5y" })),
        400,
    );
    let r = client()
        .post(format!("{}/api/analytics/funnels", s.url))
        .bearer_auth(TOKEN)
        .body("{")
        .send()
        .unwrap();
    error_of(r, 400);

    // The guide's conversions: analytics.conversion(funnel, step).
    // Items of one request share their arrival time; steps come in separate calls.
    for (u, step) in [
        ("u1", "signup_started"),
        ("u2", "signup_started"),
        ("u1", "signup_completed"),
    ] {
        let c = json!({ "funnel": "Onboarding", "step": step, "userId": u });
        assert_eq!(s.post_json("/api/analytics/conversions", &c).status(), 200);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let f = s.get_json("/api/analytics/funnels/Onboarding?range=1h");
    assert_eq!(f["steps"][0]["event"], "signup_started");
    let users: Vec<u64> = f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, [2, 1]);
    error_of(s.get("/api/analytics/funnels/Nope?range=1h"), 404);
    error_of(s.get("/api/analytics/funnels/Onboarding?window=0"), 400);
}

#[test]
fn retention_and_adoption() {
    let s = Server::start();
    let day = 86_400_000i64;
    let now = chrono::Utc::now().timestamp_millis();
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339()
    };
    let mut events = Vec::new();
    for (user, days_ago) in [("a", 2), ("a", 1), ("a", 0), ("b", 2), ("c", 1)] {
        events.push(json!({ "event": "open", "userId": user, "createdAt": at(now - days_ago * day), "properties": { "feature": if user == "a" { "pantry" } else { "search" } } }));
    }
    assert_eq!(
        s.post_json("/api/analytics/events", &Value::Array(events))
            .status(),
        200
    );
    let r = s.get_json("/api/analytics/retention?interval=day&periods=2&start_event=open");
    let cohorts = r["cohorts"].as_array().unwrap();
    assert_eq!(cohorts.len(), 3);
    assert_eq!(cohorts[0]["size"], 2, "a and b started two days ago");
    assert_eq!(cohorts[0]["retained"], json!([2, 1, 1]));
    assert_eq!(cohorts[1]["retained"], json!([1, 0, null]));
    assert_eq!(r["retention"][1], 1.0 / 3.0);
    error_of(s.get("/api/analytics/retention?interval=year"), 400);
    error_of(s.get("/api/analytics/retention?periods=0"), 400);
    error_of(s.get("/api/analytics/retention?utc_offset=+30:00"), 400);

    let f = s.get_json("/api/analytics/features?range=7d");
    assert_eq!(f["active_users"], 3);
    let search = row_where(&f["features"], "feature", "search");
    assert_eq!(
        (
            search["users"].clone(),
            search["adoption"].as_f64().unwrap()
        ),
        (json!(2), 2.0 / 3.0)
    );
    assert_eq!(f["features"][0]["feature"], "search", "most users first");
}

#[test]
fn features_from_config_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        dir.path(),
        &[],
        &[(
            "GROWTH_ANALYTICS_FEATURES",
            "meal_plan_created=planner, ai_recipe_generated",
        )],
    );
    s.post_json(
        "/api/analytics/events",
        &json!([
            { "event": "meal_plan_created", "userId": "x" },
            { "event": "ai_recipe_generated", "userId": "x" },
            { "event": "other", "userId": "y" },
        ]),
    );
    let u = s.get_json("/api/analytics/users/x");
    assert_eq!(
        u["profile"]["features_used"],
        json!(["ai_recipe_generated", "planner"])
    );
}
