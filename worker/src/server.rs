//! The standalone worker process: apalis on Redis against the PostgreSQL ledger, with
//! `/healthz` on its own address.

use crate::{config::WorkerConfig, db, engine::Engine, events::EventBus, queue};
use axum::{Router, routing::get};
use std::{future::Future, sync::Arc};
use tokio::net::TcpListener;

/// Runs a worker until `shutdown` resolves; `listener` serves `/healthz`.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = config.delivery;
    let ledger = db::connect(
        &config.database_url,
        u32::from(settings.worker_concurrency) + 2,
    )
    .await?;
    let client = redis::Client::open(config.redis_url.as_str())?;
    let conn = client.get_connection_manager().await?;
    let events = EventBus::redis(conn.clone(), &settings.redis_prefix);
    let prefix = settings.redis_prefix.clone();
    let concurrency = settings.worker_concurrency;
    let engine = Arc::new(Engine::new(ledger, events, settings)?);

    let health = Router::new().route("/healthz", get(|| async { "ok" }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, health).await {
            tracing::error!(error = %e, "worker health endpoint stopped");
        }
    });
    tracing::info!(%prefix, concurrency, "worker started");
    queue::run_redis(engine, conn, prefix, concurrency, shutdown).await?;
    Ok(())
}
