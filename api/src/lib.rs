//! The LeadRelay api: inbound intake, the GraphQL control plane and the dashboard, and in
//! embedded mode the delivery worker too.

pub mod auth;
pub mod client_ip;
pub mod config;
pub mod deliveries;
pub mod dispatch;
pub mod error;
pub mod graphql;
pub mod health;
pub mod input;
pub mod intake;
pub mod integrations;
pub mod leads;
pub mod list_cache;
pub mod lists;
pub mod normalise;
pub mod pagination;
pub mod preview;
pub mod rate_limit;
pub mod rules;
pub mod score;
pub mod state;
pub mod tenancy;
pub mod test_leads;
pub mod verify;

pub use config::{Command, Config};

use anyhow::Context as _;
use axum::{
    Extension, Router,
    extract::DefaultBodyLimit,
    response::Html,
    routing::{get, post},
};
use leadrelay_migration::{Migrator, MigratorTrait};
use leadrelay_worker::{
    Engine, EventBus, Queue, db, heartbeat, queue, secrets::SecretKey, server,
    targets::TargetPolicy,
};
use std::{future::Future, path::Path, sync::Arc};
use tokio::net::TcpListener;

/// The dashboard placeholder until the dashboard issue lands.
const DASHBOARD: &str = include_str!("../../web/index.html");

/// Applies pending migrations.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = open_database(config).await?;
    Migrator::up(&db, None)
        .await
        .context("applying migrations")?;
    Ok(())
}

async fn open_database(config: &Config) -> anyhow::Result<sea_orm::DatabaseConnection> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "LEADRELAY_DATA_DIR: cannot create {}",
                config.data_dir.display()
            )
        })?;
    }
    db::connect(&config.effective_database_url(), config.db_pool)
        .await
        .context("LEADRELAY_DATABASE_URL: cannot connect")
}

/// The JWT secret: configured, or generated once into the data dir (embedded mode).
fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    stored_secret(
        &config.data_dir.join("jwt_secret"),
        |text| (text.len() >= 32).then(|| text.as_bytes().to_vec()),
        || {
            let secret = format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            (secret.clone().into_bytes(), secret)
        },
    )
}

/// The key header values are sealed with: configured, or generated once into the data
/// dir (embedded mode; `validate` requires it with a database URL).
fn secret_key(config: &Config) -> anyhow::Result<SecretKey> {
    if let Some(key) = &config.delivery.secret_key {
        return Ok(key.clone());
    }
    stored_secret(
        &config.data_dir.join("secret_key"),
        |text| SecretKey::parse(text).ok(),
        SecretKey::generate,
    )
}

/// A secret kept in the data dir: the file's, when it parses, else a generated one
/// written there (readable by its owner only).
fn stored_secret<T>(
    path: &Path,
    parse: impl Fn(&str) -> Option<T>,
    generate: impl FnOnce() -> (T, String),
) -> anyhow::Result<T> {
    if let Some(existing) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| parse(text.trim()))
    {
        return Ok(existing);
    }
    let (secret, text) = generate();
    std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

/// Serves LeadRelay on `listener` until `shutdown` resolves: migrates the database,
/// connects the queue and event bus, starts the embedded worker when configured.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    // Loads the verifiers' tables (numbering metadata, disposable domains) off the
    // runtime while the database is prepared; a lead arriving meanwhile waits for them.
    tokio::task::spawn_blocking(verify::warm_up);
    let db = open_database(&config).await?;
    Migrator::up(&db, None)
        .await
        .context("applying migrations")?;
    let jwt = Arc::new(auth::Jwt::new(&jwt_secret(&config)?));
    let mut settings = config.delivery.clone();
    let secret_key = secret_key(&config)?;
    settings.secret_key = Some(secret_key.clone());
    integrations::seal_plain_headers(&db, &secret_key)
        .await
        .context("sealing header values stored before sealing existed")?;
    let lookups = Arc::new(verify::Lookups::from_settings(&config.lookups)?);
    let runs_worker = config.runs_worker();

    let (queue, events, redis, local_jobs) = match &config.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str()).context("LEADRELAY_REDIS_URL")?;
            let conn = client
                .get_connection_manager()
                .await
                .context("LEADRELAY_REDIS_URL: cannot connect")?;
            let events = EventBus::redis(conn.clone(), &settings.redis_prefix);
            tokio::spawn(events.clone().relay_from_redis(client.clone()));
            let queue = Queue::redis(
                conn.clone(),
                &settings.redis_prefix,
                settings.worker_concurrency,
            );
            (queue, events, Some((conn, client)), None)
        }
        None => {
            let (queue, jobs) = Queue::local();
            (queue, EventBus::local(), None, Some(jobs))
        }
    };
    // Tells an embedded Redis worker to stop claiming once serving has ended.
    let (stop, _) = tokio::sync::watch::channel(false);
    let worker = if runs_worker {
        // SQLite has one connection, shared; PostgreSQL gives the engine a pool of its own.
        let ledger = if sea_orm::ConnectionTrait::get_database_backend(&db)
            == sea_orm::DatabaseBackend::Postgres
        {
            db::connect_engine(&config.effective_database_url(), config.db_pool)
                .await
                .context("LEADRELAY_DATABASE_URL: cannot connect")?
        } else {
            db.clone()
        };
        let engine = Arc::new(Engine::new(
            ledger,
            events.clone(),
            queue.clone(),
            settings.clone(),
        )?);
        let name = heartbeat::worker_name();
        server::spawn_background(&engine, &name, settings.sweep_interval);
        let concurrency = settings.worker_concurrency;
        if let Some(jobs) = local_jobs {
            tokio::spawn(queue::run_local(engine.clone(), jobs, concurrency));
        } else if let Some((conn, client)) = &redis {
            let (engine, client, conn, prefix, name) = (
                engine.clone(),
                client.clone(),
                conn.clone(),
                settings.redis_prefix.clone(),
                name.clone(),
            );
            let stopped = stop.subscribe();
            tokio::spawn(async move {
                if let Err(e) =
                    queue::run_redis(engine, client, conn, prefix, concurrency, &name, stopped)
                        .await
                {
                    tracing::error!(error = %e, "embedded worker stopped");
                }
            });
        }
        Some((engine, name))
    } else {
        None
    };

    let app = state::AppState {
        db,
        queue,
        events,
        redis: redis.map(|(conn, _)| conn),
        jwt,
        targets: TargetPolicy::from(&settings),
        public_url: config.effective_public_url(),
        rate_limits: rate_limit::RateLimits::default(),
        secret_key,
        lookups,
        trusted_proxies: client_ip::TrustedProxies::new(&config.lookups.trusted_proxies),
        lists: list_cache::ListCache::default(),
    };
    let schema = graphql::schema(app.clone());
    let router = Router::new()
        .route("/", get(|| async { Html(DASHBOARD) }))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(leadrelay_worker::metrics::render))
        .route("/graphql", post(graphql::graphql).get(graphql::graphiql))
        .route("/graphql/ws", get(graphql::graphql_ws))
        .route(
            "/inbound/{token}",
            post(intake::inbound)
                .layer((intake::cors(), DefaultBodyLimit::max(intake::BODY_LIMIT))),
        )
        .layer(Extension(schema))
        .with_state(app);
    tracing::info!(addr = %listener.local_addr()?, "LeadRelay api listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    let _ = stop.send(true);
    if let Some((engine, name)) = worker {
        server::drain(&engine, &name, settings.shutdown_grace).await;
    }
    Ok(())
}
