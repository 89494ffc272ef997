//! The composition root: `build(config)` makes the secrets, the store, the state and the
//! router from every capability's face; `serve` runs it until a signal and shuts down
//! gracefully, committing before exit. The tools build the server here too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::state::AppState;
use crate::store::{Store, StoreError, StoreOptions};
use crate::{ai, alerts, dashboard, dbperf, growth, lifecycle, ops, scaling, vitals, web};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ai(#[from] ai::StartError),
    #[error(transparent)]
    Alerts(#[from] alerts::StartError),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub fn store_options(config: &Config) -> StoreOptions {
    let s = &config.storage;
    StoreOptions {
        memory_limit: s.memory_limit.clone(),
        threads: s.threads,
        queue_rows: s.queue_rows,
        max_commit_rows: s.max_commit_rows,
        read_connections: s.read_connections,
        wal_checkpoint: s.wal_checkpoint.clone(),
    }
}

/// The OpenAPI document of every route, from each capability's declared operations.
pub fn openapi(config: &Config) -> utoipa::openapi::OpenApi {
    ops::openapi::document(
        [
            vitals::openapi(),
            ai::openapi(),
            dbperf::openapi(),
            growth::openapi(),
            scaling::openapi(),
            dashboard::openapi(),
            alerts::openapi(),
            lifecycle::openapi(),
        ],
        config,
    )
}

/// Every route of every capability, with the shared middleware.
fn router(
    state: AppState,
    gateway: Arc<ai::Gateway>,
    alerts: Arc<alerts::Engine>,
    db: Arc<dbperf::DbPerf>,
) -> Router {
    let cors = cors_layer(&state.config.ingest.cors_origins);
    let doc = openapi(&state.config);
    let tracker = web::Tracker::new(&state.config.performance);
    let router = Router::new()
        .merge(vitals::routes())
        .merge(ai::routes(gateway))
        .merge(dbperf::routes(db))
        .merge(growth::routes())
        .merge(scaling::routes())
        .merge(ops::routes(&doc))
        .merge(dashboard::routes())
        .merge(alerts::routes(alerts))
        .merge(lifecycle::routes())
        .fallback(move |req| web::fallback(tracker, req));
    // storage.engine = "clickhouse": 501 for what is not served from ClickHouse yet.
    let router = if state.store.clickhouse().is_some() {
        router.layer(middleware::from_fn(crate::http::engine::gate))
    } else {
        router
    };
    router
        .layer(cors)
        // Metrics, the request log, every 5xx we answer (the AI gateway's too) as a
        // server error the alerts count, and compression.
        .layer(crate::edge::EdgeLayer::new(state.store.clone()))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    // Only ingest is meant for other origins: reads need a bearer token, and
    // Authorization is not an allowed header, so cross-origin reads stay blocked.
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("x-growth-key"),
        ])
        .max_age(Duration::from_secs(86_400))
}

/// Reads the admin token from config or the data dir; on the very first start, makes one.
/// Returns the token and whether it was just generated (so it is printed once).
fn admin_token(config: &Config) -> Result<Option<(String, bool)>, StartError> {
    if config.server.no_auth {
        return Ok(None);
    }
    if let Some(t) = &config.server.admin_token {
        return Ok(Some((t.clone(), false)));
    }
    let path = config.server.data_dir.join("admin_token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(Some((t.trim().to_string(), false))),
        _ => {
            let token = format!("gs_{}", random_hex(24));
            write_secret(&path, &token)?;
            Ok(Some((token, true)))
        }
    }
}

/// The salt behind `privacy.ip = "hash"`, kept in the data dir so hashes stay stable.
fn ip_salt(data_dir: &Path) -> Result<[u8; 32], StartError> {
    let path = data_dir.join("ip_salt");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Ok(bytes) = hex::decode(text.trim()) {
            if let Ok(salt) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(salt);
            }
        }
    }
    let salt: [u8; 32] = rand::random();
    write_secret(&path, &hex::encode(salt))?;
    Ok(salt)
}

fn random_hex(bytes: usize) -> String {
    let buf: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(buf)
}

fn write_secret(path: &Path, contents: &str) -> Result<(), StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| StartError::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// What `build` makes: the state every handler shares and the router over it, with the
/// listener bound and the AI gateway started. `serve`, `bench --growth` and anything else
/// that needs the server build it here, so what is measured is what runs.
pub struct App {
    pub state: AppState,
    pub router: Router,
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    gateway: Arc<ai::Gateway>,
    /// The alert engine: rules, states, silences, the outbox.
    pub alerts: Arc<alerts::Engine>,
    /// Database optimisation: the PostgreSQL pool and the select cache.
    dbperf: Arc<dbperf::DbPerf>,
    /// The admin token and whether it was just generated (then it is printed once).
    token: Option<(String, bool)>,
}

/// Opens the store the config names (migrating it), off the async runtime.
pub async fn open_store(config: &Config) -> Result<Store, StoreError> {
    let (path, opts) = (config.db_path(), store_options(config));
    let store = tokio::task::spawn_blocking(move || Store::open(&path, &opts))
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))??;
    if config.storage.engine == crate::config::Engine::Clickhouse {
        let ch = crate::store::clickhouse::ClickHouse::connect(&config.clickhouse)
            .await
            .map_err(StoreError::ClickHouse)?;
        store.use_clickhouse(ch, config.storage.max_commit_rows);
    }
    Ok(store)
}

/// Secrets, store, listener, state, the AI gateway and the router from every
/// capability's face. Background upkeep starts separately, with `App::start_tasks`.
pub async fn build(config: Config) -> Result<App, StartError> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::Io {
        what: "create data dir",
        path: data_dir.clone(),
        source,
    })?;
    let token = admin_token(&config)?;
    let salt = ip_salt(&data_dir)?;
    let store = open_store(&config).await?;
    // 0 (or a size the config check refused) leaves the check off.
    store.set_min_free_space(
        crate::config::parse_bytes(&config.storage.min_free_space).unwrap_or(0),
    );
    if !store.applied_migrations().is_empty() {
        tracing::info!(versions = ?store.applied_migrations(), "applied schema migrations");
    }
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen,
        source,
    })?;
    let state = AppState::new(config, store, token.as_ref().map(|t| t.0.clone()), salt);
    let gateway = ai::start(&state)?;
    let alerts = alerts::open(&state).await?;
    let dbperf = dbperf::open(&state);
    let router = router(
        state.clone(),
        gateway.clone(),
        alerts.clone(),
        dbperf.clone(),
    );
    Ok(App {
        state,
        router,
        addr,
        listener,
        gateway,
        alerts,
        dbperf,
        token,
    })
}

impl App {
    /// Every capability's background upkeep (roll-ups, folds, limiter cleanup).
    pub fn start_tasks(&self) {
        spawn_limiter_cleanup(&self.state);
        vitals::start(&self.state);
        growth::start(&self.state);
        dbperf::start(&self.state, &self.dbperf);
        alerts::start(&self.alerts);
        scaling::start(&self.state, self.addr);
        lifecycle::start(&self.state);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until `stop` resolves, then finishes the requests in flight, writes the
    /// queued metric rows, commits and checkpoints.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let App {
            state,
            router,
            addr,
            listener,
            gateway,
            ..
        } = self;
        let shutdown_state = state.clone();
        // Counted connections feed /metrics and the host samples; `tap_io` gives the
        // wrapped listener axum's socket-address ConnectInfo.
        let listener = axum::serve::ListenerExt::tap_io(
            crate::http::telemetry::CountingListener(listener),
            |_| {},
        );
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            stop.await;
            shutdown_state.set_ready(false);
            tracing::info!("shutting down: finishing requests, then committing the queue");
        })
        .await
        .map_err(|source| StartError::Io {
            what: "serve on",
            path: PathBuf::from(addr.to_string()),
            source,
        })?;
        gateway.shutdown().await;
        state.store.close().await?;
        let (rows, commits) = state.store.stats();
        tracing::info!(
            rows,
            commits,
            "stopped: everything committed and checkpointed"
        );
        Ok(())
    }
}

/// Opens everything, serves until SIGINT or SIGTERM, then drains the write queue,
/// checkpoints and returns.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let started = Instant::now();
    let app = build(config).await?;
    let config = &app.state.config;
    let data_dir = &config.server.data_dir;

    // Plain stdout, not the log: this is what a person starting it reads first.
    println!("growth-stack listening on {}", app.url());
    println!("data: {}", config.db_path().display());
    match &app.token {
        None => println!("auth: off (--no-auth, loopback only)"),
        Some((t, true)) => println!(
            "admin token (shown once; also saved in {}): {t}",
            data_dir.join("admin_token").display()
        ),
        Some((_, false)) if config.server.admin_token.is_some() => {
            println!("admin token: the one you configured")
        }
        Some(_) => println!(
            "admin token: in {} (send it as Authorization: Bearer <token>)",
            data_dir.join("admin_token").display()
        ),
    }
    for line in app.gateway.banner() {
        println!("{line}");
    }
    tracing::info!(addr = %app.addr, ready_ms = started.elapsed().as_millis() as u64, "ready");
    app.start_tasks();
    app.run_until(shutdown_signal()).await
}

fn spawn_limiter_cleanup(state: &AppState) {
    if let Some(limiter) = state.ingest_limiter.clone() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
