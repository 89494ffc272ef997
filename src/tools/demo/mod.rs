//! `growth-stack demo`: realistic synthetic data for every stream, from a meal-planning app,
//! written through the store's own append path so it is exactly what ingest would store.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use serde_json::json;
use uuid::Uuid;

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::http::agent;
use crate::store::{
    AiRow, Batch, ConversionRow, DatabaseRow, EventRow, PerformanceRow, Store, StoreError,
};
use crate::{ai, app, dbperf, growth, vitals};

mod load_samples;
mod page_views;

const CHUNK: u64 = 20_000;
const DAY_US: i64 = 86_400_000_000;

const ROUTES: &[(&str, f64)] = &[
    ("/", 1600.0),
    ("/recipes", 2100.0),
    ("/recipes/[id]", 2900.0),
    ("/meal-plan", 2300.0),
    ("/shopping-list", 1700.0),
    ("/ai/generate", 2500.0),
    ("/pricing", 1500.0),
    ("/settings", 1400.0),
];
const RECIPES: &[(&str, &str)] = &[
    ("Lemon herb chicken", "dinner"),
    ("Overnight oats", "breakfast"),
    ("Chickpea curry", "vegetarian"),
    ("Salmon poke bowl", "lunch"),
    ("Shakshuka", "breakfast"),
    ("Beef stir-fry", "dinner"),
    ("Lentil soup", "vegetarian"),
    ("Banana bread", "dessert"),
    ("Caesar salad", "lunch"),
    ("Mushroom risotto", "dinner"),
];
const FEATURES: &[&str] = &[
    "meal_planner",
    "shopping_list",
    "ai_generator",
    "nutrition_facts",
    "pantry",
];
const MODELS: &[(&str, &str, f64)] = &[
    ("claude-3-5-sonnet-20241022", "/v1/messages", 2600.0),
    ("claude-3-5-haiku-20241022", "/v1/messages", 1100.0),
    ("gpt-4o-mini", "/v1/chat/completions", 1400.0),
];
const QUERIES: &[(&str, f64)] = &[
    ("SELECT id, name, description, cook_time FROM recipes WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20", 35.0),
    ("SELECT * FROM ingredients WHERE recipe_id = $1", 4.0),
    ("SELECT * FROM meal_plans WHERE user_id = $1 AND week_start = $2", 18.0),
    ("SELECT r.* FROM recipes r JOIN favorites f ON f.recipe_id = r.id WHERE f.user_id = $1", 120.0),
    ("SELECT * FROM recipes WHERE to_tsvector(name || ' ' || description) @@ plainto_tsquery($1)", 480.0),
    ("UPDATE user_profiles SET last_activity = now() WHERE user_id = $1", 9.0),
    ("INSERT INTO shopping_list_items (list_id, ingredient_id, quantity) VALUES ($1, $2, $3)", 6.0),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
];
/// (utm_source, utm_medium, utm_campaign) of the campaigns some sessions arrive from.
const CAMPAIGNS: &[(&str, &str, &str)] = &[
    ("newsletter", "email", "weekly_menu"),
    ("facebook", "social", "spring_recipes"),
    ("google", "cpc", "meal_prep"),
];
/// Demo visitor ids are hashed like real ones, with a fixed secret.
const DEMO_SECRET: [u8; 32] = [7; 32];
const CONNECTIONS: &[&str] = &["4g", "4g", "wifi", "wifi", "wifi", "3g"];
const REFERRERS: &[&str] = &[
    "https://www.google.com/",
    "https://www.pinterest.com/",
    "https://news.ycombinator.com/",
    "",
];

/// Counts of what one run wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct DemoCounts {
    pub events: u64,
    pub performance: u64,
    pub ai: u64,
    pub database: u64,
    pub conversions: u64,
}

#[derive(Default)]
struct Rows {
    events: Vec<EventRow>,
    performance: Vec<PerformanceRow>,
    ai: Vec<AiRow>,
    database: Vec<DatabaseRow>,
    conversions: Vec<ConversionRow>,
}

pub async fn run(config: &Config, args: &DemoArgs) -> Result<(), StoreError> {
    let path = config.db_path();
    let store = app::open_store(config).await?;
    if let Some(n) = args.page_views {
        return vitals_only(&store, args, n).await;
    }
    let bar = ProgressBar::new(args.events);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let counts = generate(&store, args, |n| bar.inc(n)).await?;
    bar.finish();
    // Profiles are current without it; folding leaves profile reads nothing to add.
    growth::catch_up(&store).await?;
    ai::catch_up(&store).await?;
    dbperf::catch_up(&store).await?;
    let samples = load_samples::generate(&store, args.days, args.seed).await?;
    store.close().await?;
    println!("wrote {samples} load samples of 4 app instances and this host");
    println!(
        "wrote {} events, {} performance samples, {} AI calls, {} query timings and {} conversions \
         over {} days to {} in {:.1} s",
        counts.events,
        counts.performance,
        counts.ai,
        counts.database,
        counts.conversions,
        args.days,
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--page-views N`: web vitals only, for the vitals benchmark.
async fn vitals_only(store: &Store, args: &DemoArgs, page_views: u64) -> Result<(), StoreError> {
    let bar = ProgressBar::new(page_views);
    let started = Instant::now();
    let rows =
        page_views::generate(store, page_views, args.days, args.seed, |n| bar.inc(n)).await?;
    bar.finish();
    let hours = vitals::catch_up(store).await?;
    store.close().await?;
    println!(
        "wrote {page_views} page views of web vitals ({rows} reports) over {} days and rolled up \
         {hours} hours in {:.1} s",
        args.days,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Generates `args.events` events (and the other streams in proportion) into `store`.
pub async fn generate(
    store: &Store,
    args: &DemoArgs,
    mut progress: impl FnMut(u64),
) -> Result<DemoCounts, StoreError> {
    let mut gen = Generator::new(args);
    let mut counts = DemoCounts::default();
    let mut remaining = args.events;
    while remaining > 0 {
        let n = remaining.min(CHUNK);
        let done = args.events - remaining;
        let slice = (
            done as f64 / args.events as f64,
            (done + n) as f64 / args.events as f64,
        );
        let rows = gen.events(n, slice);
        counts.events += rows.events.len() as u64;
        counts.performance += rows.performance.len() as u64;
        counts.ai += rows.ai.len() as u64;
        counts.database += rows.database.len() as u64;
        counts.conversions += rows.conversions.len() as u64;
        for batch in [
            Batch::Events(rows.events),
            Batch::Performance(rows.performance),
            Batch::Ai(rows.ai),
            Batch::Database(rows.database),
            Batch::Conversions(rows.conversions),
        ] {
            store.append(batch).await?;
        }
        remaining -= n;
        progress(n);
    }
    Ok(counts)
}

struct Generator {
    rng: StdRng,
    /// Signed-in users are `user-1` ..= `user-N`.
    users: usize,
    now_us: i64,
    days: i64,
}

impl Generator {
    fn new(args: &DemoArgs) -> Self {
        let users = args
            .users
            .unwrap_or((args.events / 40).clamp(10, 200_000))
            .max(1);
        Generator {
            rng: StdRng::seed_from_u64(args.seed),
            users: usize::try_from(users).unwrap_or(usize::MAX),
            now_us: chrono::Utc::now().timestamp_micros(),
            days: i64::from(args.days.max(1)),
        }
    }

    /// A session start: more traffic on recent days (growth) and at lunch and evening.
    /// `slice` is the part of the whole run this chunk covers, so chunks come in time
    /// order, as real traffic does, and DuckDB's zone maps can skip old row groups.
    fn session_start(&mut self, slice: (f64, f64)) -> i64 {
        let day = {
            let u: f64 = slice.0 + self.rng.gen::<f64>() * (slice.1 - slice.0);
            ((u.sqrt() * self.days as f64) as i64).min(self.days - 1)
        };
        let hour = *[8, 9, 11, 12, 12, 13, 17, 18, 19, 19, 20, 21, 22]
            .choose(&mut self.rng)
            .unwrap_or(&12);
        let day_start = self.now_us - (self.days - day) * DAY_US;
        let t = day_start + hour * 3_600_000_000 + self.rng.gen_range(0..3_600_000_000);
        // Today's evening has not happened yet: move such sessions back a day.
        if t >= self.now_us - 3_600_000_000 {
            t - DAY_US
        } else {
            t
        }
    }

    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(&mut self.rng))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.gen_range(0..items.len())]
    }

    fn events(&mut self, n: u64, slice: (f64, f64)) -> Rows {
        let mut rows = Rows::default();
        while (rows.events.len() as u64) < n {
            self.session(&mut rows, n, slice);
        }
        rows
    }

    fn session(&mut self, rows: &mut Rows, cap: u64, slice: (f64, f64)) {
        let index = (self.rng.gen::<f64>() < 0.8).then(|| self.rng.gen_range(0..self.users));
        // Apps name their users their own way, the same name in every stream.
        let user_name = index.map(|i| format!("user-{}", i + 1));
        let session = format!("s_{:016x}", self.rng.gen::<u64>());
        let ua = self.pick(USER_AGENTS).to_string();
        let ip_addr = std::net::IpAddr::from([198, 51, self.rng.gen_range(0..=255), 0]);
        let ip = ip_addr.to_string();
        let referrer = self.pick(REFERRERS).to_string();
        let connection = self.pick(CONNECTIONS).to_string();
        let campaign = (self.rng.gen::<f64>() < 0.2).then(|| *self.pick(CAMPAIGNS));
        let mut t = self.session_start(slice);
        let parsed = agent::parse(&ua);
        let visitor = user_name.clone().unwrap_or_else(|| {
            growth::visitor_id(&DEMO_SECRET, t / 1000, "demo.example", ip_addr, &ua)
        });
        let length = self.rng.gen_range(3..14);
        let mut discovery_step = 0;
        for i in 0..length {
            if rows.events.len() as u64 >= cap {
                return;
            }
            t += self.rng.gen_range(2_000_000..90_000_000);
            t = t.min(self.now_us - 1);
            let (route, lcp_median) = *self.pick(ROUTES);
            let (event, mut properties) = self.event_for(route, i == 0);
            let entry_campaign = campaign.filter(|_| i == 0);
            if let Some((source, medium, name)) = entry_campaign {
                properties = Some(json!({
                    "url": format!("https://demo.example{route}?utm_source={source}&utm_medium={medium}&utm_campaign={name}"),
                    "utm_source": source, "utm_medium": medium, "utm_campaign": name,
                }));
            }
            let referrer = (i == 0 && !referrer.is_empty()).then(|| referrer.clone());
            let ev = EventRow {
                id: Uuid::from_u128(self.rng.gen()),
                user_id: user_name.clone(),
                session_id: Some(session.clone()),
                event: event.to_string(),
                feature: growth::feature(
                    event,
                    properties.as_ref().and_then(|p| p.as_object()),
                    &[],
                ),
                properties: properties.map(|p| p.to_string()),
                route: Some(route.to_string()),
                referrer_domain: referrer.as_deref().and_then(growth::host),
                referrer,
                user_agent: Some(ua.clone()),
                ip: Some(ip.clone()),
                timestamp: t / 1000,
                created_at: t,
                visitor_id: Some(visitor.clone()),
                browser: Some(parsed.browser.clone()),
                os: Some(parsed.os.clone()),
                device: Some(parsed.device.clone()),
                utm_source: entry_campaign.map(|c| c.0.to_string()),
                utm_medium: entry_campaign.map(|c| c.1.to_string()),
                utm_campaign: entry_campaign.map(|c| c.2.to_string()),
                event_time: None,
            };
            if event == "pageview" && self.rng.gen::<f64>() < 0.6 {
                let mobile = ua.contains("Mobile");
                let slow = if mobile { 1.35 } else { 1.0 };
                rows.performance.push(PerformanceRow {
                    id: Uuid::from_u128(self.rng.gen()),
                    user_id: user_name.clone(),
                    session_id: Some(session.clone()),
                    route: Some(route.to_string()),
                    lcp: Some(self.lognormal(lcp_median * slow, 0.45)),
                    inp: Some(self.lognormal(140.0 * slow, 0.6)),
                    cls: Some((self.lognormal(0.04, 1.1)).min(2.0)),
                    fcp: Some(self.lognormal(lcp_median * 0.6 * slow, 0.4)),
                    ttfb: Some(self.lognormal(380.0, 0.5)),
                    fid: (self.rng.gen::<f64>() < 0.3).then(|| self.lognormal(40.0, 0.8)),
                    user_agent: Some(ua.clone()),
                    connection: Some(connection.clone()),
                    ip: Some(ip.clone()),
                    timestamp: t / 1000,
                    created_at: t,
                    metric_id: Some(format!("pv-{:016x}", self.rng.gen::<u64>())),
                    device: Some(parsed.device.clone()),
                    path: Some(route.replace("[id]", &self.rng.gen_range(1..999).to_string())),
                    ..Default::default()
                });
            }
            if event == "pageview" || event == "recipe_viewed" {
                self.queries(rows, user_name.clone(), &ip, t);
            }
            if event == "ai_recipe_generated" {
                self.ai_call(rows, user_name.clone(), &ip, t);
            }
            let discovery = [
                "recipe_searched",
                "recipe_viewed",
                "recipe_saved",
                "meal_added_to_plan",
            ];
            if discovery.get(discovery_step) == Some(&event) {
                discovery_step += 1;
                rows.conversions.push(self.conversion(
                    (&user_name, &visitor),
                    &session,
                    "Recipe Discovery",
                    event,
                    t,
                ));
            }
            if event == "signup_completed" {
                rows.conversions.push(self.conversion(
                    (&user_name, &visitor),
                    &session,
                    "Onboarding",
                    "signup_started",
                    t - 60_000_000,
                ));
                rows.conversions.push(self.conversion(
                    (&user_name, &visitor),
                    &session,
                    "Onboarding",
                    "signup_completed",
                    t,
                ));
            }
            rows.events.push(ev);
        }
    }

    fn event_for(&mut self, route: &str, first: bool) -> (&'static str, Option<serde_json::Value>) {
        if first {
            return ("pageview", None);
        }
        let (name, category) = *self.pick(RECIPES);
        let recipe_id = format!("r_{}", self.rng.gen_range(100..999));
        let roll: f64 = self.rng.gen();
        match route {
            "/recipes" | "/recipes/[id]" if roll < 0.45 => (
                "recipe_viewed",
                Some(json!({ "recipeId": recipe_id, "recipeName": name, "category": category })),
            ),
            "/recipes" if roll < 0.7 => ("recipe_searched", Some(json!({ "query": category }))),
            "/recipes/[id]" if roll < 0.65 => {
                ("recipe_saved", Some(json!({ "recipeId": recipe_id })))
            }
            "/meal-plan" if roll < 0.4 => (
                "meal_added_to_plan",
                Some(json!({ "recipeId": recipe_id, "day": self.rng.gen_range(1..=7) })),
            ),
            "/meal-plan" if roll < 0.55 => (
                "meal_plan_created",
                Some(json!({ "meals": self.rng.gen_range(3..=21) })),
            ),
            "/shopping-list" if roll < 0.5 => (
                "shopping_list_generated",
                Some(json!({ "items": self.rng.gen_range(4..40) })),
            ),
            "/ai/generate" if roll < 0.6 => {
                ("ai_recipe_generated", Some(json!({ "cuisine": category })))
            }
            "/pricing" if roll < 0.3 => (
                "signup_completed",
                Some(json!({ "plan": *self.pick(&["free", "pro", "family"]) })),
            ),
            _ if roll < 0.85 => ("pageview", None),
            _ => (
                "feature_used",
                Some(json!({ "feature": *self.pick(FEATURES) })),
            ),
        }
    }

    fn conversion(
        &mut self,
        (user, visitor): (&Option<String>, &str),
        session: &str,
        funnel: &str,
        step: &str,
        t: i64,
    ) -> ConversionRow {
        ConversionRow {
            id: Uuid::from_u128(self.rng.gen()),
            user_id: user.clone(),
            visitor_id: Some(visitor.to_string()),
            session_id: Some(session.to_string()),
            funnel: funnel.to_string(),
            step: step.to_string(),
            timestamp: t / 1000,
            created_at: t,
            properties: None,
            event_time: None,
        }
    }

    fn queries(&mut self, rows: &mut Rows, user: Option<String>, ip: &str, t: i64) {
        // A recipe page loads its ingredients one query at a time: the classic N+1.
        let repeats = if self.rng.gen::<f64>() < 0.3 {
            self.rng.gen_range(5..12)
        } else {
            1
        };
        // One request of the app: its queries share a request id, so N+1 loops show
        // (made from the visit, not the generator, so the rest of the data is unchanged).
        let request_id = format!("req-{t:x}-{ip}");
        for _ in 0..self.rng.gen_range(1..3) {
            let (sql, median) = *self.pick(QUERIES);
            let f = crate::dbperf::fingerprint(sql);
            let n = if sql.contains("ingredients") {
                repeats
            } else {
                1
            };
            for _ in 0..n {
                let cached = self.rng.gen::<f64>() < 0.35;
                let duration = if cached {
                    self.lognormal(0.4, 0.4)
                } else {
                    self.lognormal(median, 0.9)
                };
                rows.database.push(DatabaseRow {
                    id: Uuid::from_u128(self.rng.gen()),
                    query: sql.to_string(),
                    duration: duration.min(30_000.0),
                    rows: Some(self.rng.gen_range(0..50)),
                    cached,
                    user_id: user.clone(),
                    ip: Some(ip.to_string()),
                    timestamp: t / 1000,
                    created_at: t,
                    fingerprint: Some(f.id.clone()),
                    normalized_query: Some(f.text.clone()),
                    request_id: Some(request_id.clone()),
                    route: Some(
                        if sql.contains("ingredients") {
                            "/recipes/:id"
                        } else {
                            "/"
                        }
                        .into(),
                    ),
                    source: None,
                    event_time: None,
                });
            }
        }
    }

    fn ai_call(&mut self, rows: &mut Rows, user: Option<String>, ip: &str, t: i64) {
        let (model, endpoint, median) = *self.pick(MODELS);
        let cache_hit = self.rng.gen::<f64>() < 0.32;
        let failed = !cache_hit && self.rng.gen::<f64>() < 0.03;
        let tokens = if cache_hit {
            0
        } else {
            self.lognormal(1100.0, 0.55).min(8000.0) as i32
        };
        rows.ai.push(AiRow {
            id: Uuid::from_u128(self.rng.gen()),
            request_id: Some(format!(
                "req_{:012x}",
                self.rng.gen::<u64>() & 0xffff_ffff_ffff
            )),
            endpoint: Some(endpoint.to_string()),
            model: Some(model.to_string()),
            tokens: Some(tokens),
            duration: if cache_hit {
                self.lognormal(6.0, 0.5)
            } else {
                self.lognormal(median, 0.5)
            },
            success: !failed,
            error: failed.then(|| {
                self.pick(&[
                    "rate_limit_exceeded",
                    "upstream timeout",
                    "overloaded_error",
                ])
                .to_string()
            }),
            cache_hit,
            user_id: user.map(|u| u.to_string()),
            ip: Some(ip.to_string()),
            timestamp: t / 1000,
            created_at: t,
            provider: Some(
                if model.starts_with("claude") {
                    "anthropic"
                } else {
                    "openai"
                }
                .into(),
            ),
            prompt_tokens: Some(tokens * 7 / 10),
            completion_tokens: Some(tokens - tokens * 7 / 10),
            cost: Some(ai::list_cost(
                model,
                tokens * 7 / 10,
                tokens - tokens * 7 / 10,
            )),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_what_it_promises() {
        let args = DemoArgs {
            events: 5_000,
            days: 7,
            seed: 1,
            page_views: None,
            users: None,
        };
        let mut g = Generator::new(&args);
        let rows = g.events(5_000, (0.0, 1.0));
        assert_eq!(rows.events.len(), 5_000);
        assert!(rows.performance.len() > 500, "{}", rows.performance.len());
        assert!(!rows.ai.is_empty() && !rows.database.is_empty() && !rows.conversions.is_empty());
        let week_ago = g.now_us - 7 * DAY_US;
        assert!(rows
            .events
            .iter()
            .all(|e| e.created_at >= week_ago && e.created_at < g.now_us));
        assert!(rows.events.iter().any(|e| e.event == "recipe_viewed"));
    }

    #[test]
    fn chunks_come_in_time_order() {
        let args = DemoArgs {
            events: 4_000,
            days: 30,
            seed: 2,
            page_views: None,
            users: None,
        };
        let mut g = Generator::new(&args);
        let early = g.events(2_000, (0.0, 0.5));
        let late = g.events(2_000, (0.5, 1.0));
        let newest_early = early.events.iter().map(|e| e.created_at).max().unwrap();
        let oldest_late = late.events.iter().map(|e| e.created_at).min().unwrap();
        // Sessions last minutes, so the halves overlap by at most a day.
        assert!(
            oldest_late > newest_early - DAY_US,
            "{oldest_late} vs {newest_early}"
        );
    }
}
