//! Alerts: the guide's thresholds as live rules over a fixed catalogue of measures,
//! evaluated every `alerts.interval`, with Prometheus' states, week-over-week declines and
//! seasonal anomaly bands, and notifications through a persisted outbox to Alertmanager
//! webhooks, Slack and Discord, grouped and silenced as Alertmanager does. Also the
//! errors stream (gs.js JavaScript errors and our own 5xx) the error-rate rules read.
//!
//! The face: `open` (the engine, loaded from the store), `routes`, `openapi`, `start` (the
//! evaluator and the delivery task), `headline` (firing and pending per overview card) and
//! `record_server_error`, which the composition root's edge calls for every 5xx it answers.

mod anomaly;
mod api;
mod clickhouse;
mod errors;
mod eval;
mod history;
mod measures;
mod notify;
mod outbox;
mod reads;
mod records;
mod rules;
mod schema;
mod series;
mod shared;
mod silences;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use chrono::Utc;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::Notify;

pub use errors::{record_server_error, ErrorIn};
pub use eval::RoundInfo;
pub use series::State;

use crate::config::Config;
use crate::http::client::HttpClient;
use crate::http::ingest::handler;
use crate::state::AppState;
use crate::store::{Store, StoreError};
use anomaly::Band;
use notify::Channel;
use outbox::Group;
use rules::{Rule, RuleSpec};
use series::Series;
use silences::Silence;

/// This capability's operations for `/api/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <api::Doc as utoipa::OpenApi>::openapi()
}

/// Its HTTP surface: the errors stream, and the rules, states, history, silences and
/// notifications of the Alerts page, all over the one engine.
pub fn routes(engine: Arc<Engine>) -> Router<AppState> {
    Router::new()
        .route(
            "/api/analytics/errors",
            post(handler::<ErrorIn>).get(api::errors),
        )
        .route("/api/alerts", get(api::list))
        .route("/api/alerts/summary", get(api::summary))
        .route("/api/alerts/history", get(api::history))
        .route("/api/alerts/measures", get(api::measures))
        .route("/api/alerts/rules", get(api::rules).post(api::create_rule))
        .route(
            "/api/alerts/rules/{id}",
            get(api::rule)
                .put(api::update_rule)
                .delete(api::delete_rule),
        )
        .route("/api/alerts/rules/{id}/preview", get(api::rule_preview))
        .route("/api/alerts/preview", post(api::preview))
        .route(
            "/api/alerts/silences",
            get(api::silences).post(api::create_silence),
        )
        .route("/api/alerts/silences/{id}", delete(api::expire_silence))
        .route("/api/alerts/test", post(api::send_test))
        .route("/api/alerts/notifications", get(api::notifications))
        .layer(Extension(engine))
}

/// What the overview's cards show of alerting: firing and pending series, per card.
pub fn headline(engine: &Engine) -> Summary {
    engine.cards()
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid alert rule in the config: {0}")]
    Rule(String),
}

/// Alertmanager's fingerprint idea: a stable hash of the sorted label set (FNV-1a 64,
/// names and values separated by 0xff), as 16 hex digits.
pub(crate) fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for x in b {
            h ^= u64::from(*x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (k, v) in labels {
        eat(k.as_bytes());
        eat(&[0xff]);
        eat(v.as_bytes());
        eat(&[0xff]);
    }
    format!("{h:016x}")
}

/// The live alerting state shared by the evaluator, the delivery task and the API.
pub struct Engine {
    store: Store,
    config: Arc<Config>,
    slow_ms: f64,
    config_rules: Vec<RuleSpec>,
    api_rules: Mutex<Vec<RuleSpec>>,
    rules: RwLock<Vec<Rule>>,
    series: Mutex<BTreeMap<(String, String), Series>>,
    silences: Mutex<Vec<Silence>>,
    groups: Mutex<HashMap<(String, String), Group>>,
    channels: Vec<Channel>,
    /// One writer at a time for the alert tables (rounds, deliveries, API edits).
    writes: tokio::sync::Mutex<()>,
    wake_outbox: Notify,
    next_outbox_id: AtomicI64,
    outbox_pending: AtomicUsize,
    #[allow(clippy::type_complexity)]
    baselines: Mutex<HashMap<(String, i64), HashMap<Option<String>, Band>>>,
    last_round: Mutex<RoundInfo>,
    client: HttpClient,
}

impl Engine {
    /// Loads rules, states, silences, the group log and the outbox; nothing runs yet.
    async fn open(config: Arc<Config>, store: Store) -> Result<Arc<Engine>, StartError> {
        let config_rules = rules::from_config(&config.alerts.rules).map_err(StartError::Rule)?;
        let api_rules = api::load_rules(&store).await?;
        let merged = rules::merge(config_rules.clone(), api_rules.clone());
        let series = history::load(&store).await?;
        let silences = silences::load(&store).await?;
        let groups = outbox::load_groups(&store)
            .await?
            .into_iter()
            .map(|(c, k, g)| ((c, k), g))
            .collect();
        let (next_id, pending) = outbox::load_counters(&store).await?;
        Ok(Arc::new(Engine {
            store,
            channels: notify::channels(&config.alerts),
            slow_ms: config.database.slow_query_threshold,
            config,
            config_rules,
            api_rules: Mutex::new(api_rules),
            rules: RwLock::new(merged),
            series: Mutex::new(series),
            silences: Mutex::new(silences),
            groups: Mutex::new(groups),
            writes: tokio::sync::Mutex::new(()),
            wake_outbox: Notify::new(),
            next_outbox_id: AtomicI64::new(next_id),
            outbox_pending: AtomicUsize::new(pending),
            baselines: Mutex::new(HashMap::new()),
            last_round: Mutex::new(RoundInfo::default()),
            client: crate::http::client::build(Duration::from_secs(5), 4),
        }))
    }

    fn rules(&self) -> Vec<Rule> {
        self.rules.read().clone()
    }

    /// On ClickHouse, reloads what any node may have changed (API rules, silences, series
    /// states, the group log) from the shared tables; on DuckDB this process is the only
    /// writer and its memory is the truth, so nothing happens.
    async fn refresh(&self) -> Result<(), StoreError> {
        let Some(ch) = self.store.clickhouse() else {
            return Ok(());
        };
        let api = shared::rules(ch).await?;
        let silences = shared::silences(ch).await?;
        let series = shared::series(ch).await?;
        let groups = shared::groups(ch).await?;
        // Not while this node's round or an edit writes what it holds in memory.
        let _w = self.writes.lock().await;
        self.set_api_rules(api);
        *self.silences.lock() = silences;
        *self.series.lock() = series;
        *self.groups.lock() = groups.into_iter().map(|(c, k, g)| ((c, k), g)).collect();
        Ok(())
    }

    /// The silences in force at `now`.
    fn active_silences(&self, now: chrono::DateTime<Utc>) -> Vec<Silence> {
        let all = self.silences.lock();
        all.iter().filter(|s| s.active(now)).cloned().collect()
    }

    fn set_api_rules(&self, api: Vec<RuleSpec>) {
        let merged = rules::merge(self.config_rules.clone(), api.clone());
        *self.api_rules.lock() = api;
        *self.rules.write() = merged;
    }

    /// How many rules there are (built in, config, API).
    pub fn rule_count(&self) -> usize {
        self.rules.read().len()
    }

    /// Adds rules for this process only (the benchmark), parsed and checked as the API does.
    pub fn add_rules_in_memory(&self, specs: &[serde_json::Value]) -> Result<(), String> {
        let mut api = self.api_rules.lock().clone();
        for v in specs {
            let s: RuleSpec = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
            s.validate().map_err(|e| e.to_string())?;
            api.push(s);
        }
        self.set_api_rules(api);
        Ok(())
    }

    /// Counts of firing and pending series, and the worst state per overview card.
    pub fn cards(&self) -> Summary {
        let rules = self.rules();
        let series = self.series.lock();
        let mut s = Summary::default();
        for r in rules.iter().filter(|r| r.spec.enabled) {
            let area = r.spec.measure.info().area;
            let card = s.cards.entry(area).or_default();
            card.rules += 1;
            for x in series
                .range((r.id.clone(), String::new())..)
                .take_while(|((id, _), _)| id == &r.id)
                .map(|(_, x)| x)
            {
                match x.state {
                    State::Firing => {
                        s.firing += 1;
                        card.firing += 1;
                    }
                    State::Pending => {
                        s.pending += 1;
                        card.pending += 1;
                    }
                    _ => {}
                }
                if x.state.rank() > card.state.rank() {
                    card.state = x.state;
                }
            }
        }
        s
    }
}

#[derive(Debug, Default, Serialize)]
pub struct CardState {
    pub state: State,
    pub firing: usize,
    pub pending: usize,
    pub rules: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub firing: usize,
    pub pending: usize,
    /// By overview card: vitals, ai, database, growth.
    pub cards: BTreeMap<&'static str, CardState>,
}

/// The engine with its rules, states, silences, group log and outbox loaded from the
/// store; nothing runs until `start`.
pub async fn open(state: &AppState) -> Result<Arc<Engine>, StartError> {
    Engine::open(state.config.clone(), state.store.clone()).await
}

/// Starts its two tasks: the evaluation loop every `alerts.interval` (when
/// `alerts.enabled`) and the outbox delivery (always, so queued notifications still go).
/// On ClickHouse one task does both, in turns that one node at a time wins (`turns`).
pub fn start(engine: &Arc<Engine>) {
    if engine.store.clickhouse().is_some() {
        tokio::spawn(turns(engine.clone()));
        return;
    }
    tokio::spawn(outbox::run(engine.clone()));
    if engine.config.alerts.enabled {
        let e = engine.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(e.config.alerts.interval.duration());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match e.round(Utc::now()).await {
                    Ok(_) => {}
                    Err(StoreError::Closed) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "alert evaluation failed; retrying next round");
                        e.last_round.lock().error = Some(err.to_string());
                    }
                }
            }
        });
    }
}

/// On ClickHouse, the shortest turn: a claim takes `lease::SETTLE` to settle before the
/// turn starts, and a round with its deliveries must end before the next turn starts.
const SHORTEST_TURN: Duration = Duration::from_secs(5);

/// How early before its turn a node claims it, so the winner knows when the turn starts.
const CLAIM_AHEAD: Duration = Duration::from_millis(2500);

fn sleep_until_us(at_us: i64) -> tokio::time::Sleep {
    tokio::time::sleep_until(instant_at_us(at_us))
}

/// The ClickHouse engine's alerting: time is cut into turns of `alerts.interval` (at least
/// `SHORTEST_TURN`), aligned to the clock, and every node claims each turn through
/// `job_leases` (`alerts:<turn>`); the earliest claim wins. The winner reloads the shared
/// state, evaluates (when `alerts.enabled`) and delivers the due notifications until its
/// turn ends, so a round runs once per turn and a notification is sent by one node, once.
/// The others reload the shared state, so their answers and the overview follow.
async fn turns(e: Arc<Engine>) {
    let turn_us = i64::try_from(
        e.config
            .alerts
            .interval
            .duration()
            .max(SHORTEST_TURN)
            .as_micros(),
    )
    .unwrap_or(i64::MAX / 4);
    let ahead_us = CLAIM_AHEAD.as_micros() as i64;
    loop {
        let Some(ch) = e.store.clickhouse() else {
            return;
        };
        let now_us = Utc::now().timestamp_micros();
        let mut turn = now_us.div_euclid(turn_us) + 1;
        if turn * turn_us - ahead_us < now_us {
            turn += 1;
        }
        sleep_until_us(turn * turn_us - ahead_us).await;
        let won = match crate::store::clickhouse::lease::claim(ch, &format!("alerts:{turn}")).await
        {
            Ok(won) => won,
            Err(err) => {
                tracing::warn!(error = %err, "cannot claim the alerting turn; trying the next one");
                false
            }
        };
        sleep_until_us(turn * turn_us).await;
        if let Err(err) = e.refresh().await {
            tracing::warn!(error = %err, "cannot reload the shared alert state");
            continue;
        }
        if !won {
            continue;
        }
        // Stop a little before the next turn's node may start: a round or a delivery still
        // running then is dropped (the next turn's node picks up from what was written),
        // so two nodes never work at once.
        let end_us = (turn + 1) * turn_us - 250_000;
        let until = chrono::DateTime::from_timestamp_micros(end_us).unwrap_or_else(Utc::now);
        let work = async {
            if e.config.alerts.enabled {
                match e.round(Utc::now()).await {
                    Ok(_) => {}
                    Err(StoreError::Closed) => return Err(StoreError::Closed),
                    Err(err) => {
                        tracing::warn!(error = %err, "alert evaluation failed; retrying next turn");
                        e.last_round.lock().error = Some(err.to_string());
                    }
                }
            }
            if let Err(err) = outbox::deliver_shared(&e, ch, until).await {
                tracing::warn!(error = %err, "cannot deliver from the shared alert outbox");
            }
            Ok(())
        };
        match tokio::time::timeout_at(instant_at_us(end_us), work).await {
            Ok(Err(StoreError::Closed)) => break,
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the alerting turn ended before its round and deliveries did");
                e.last_round.lock().error =
                    Some("the round did not finish within its turn (alerts.interval)".into());
            }
        }
    }
}

/// The tokio instant of wall-clock time `at_us`.
fn instant_at_us(at_us: i64) -> tokio::time::Instant {
    let left = at_us - Utc::now().timestamp_micros();
    tokio::time::Instant::now() + Duration::from_micros(u64::try_from(left).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_label_sensitive() {
        let mut a = BTreeMap::new();
        a.insert("alertname".to_string(), "SlowLCP".to_string());
        let f = fingerprint(&a);
        assert_eq!(f, fingerprint(&a.clone()));
        assert_eq!(f.len(), 16);
        a.insert("route".to_string(), "/".to_string());
        assert_ne!(f, fingerprint(&a));
    }
}
