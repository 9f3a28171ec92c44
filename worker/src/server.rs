//! Running the engine in a process: the standalone `leadrelay-worker` (apalis on Redis
//! against the PostgreSQL ledger), and the pieces the api's embedded worker shares with
//! it: sweeper, heartbeat, graceful drain.

use crate::{
    config::WorkerConfig, db, engine::Engine, events::EventBus, heartbeat, metrics, queue,
    queue::Queue, sweeper,
};
use axum::{Router, routing::get};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// Starts the sweeper and the heartbeat of a process that runs the engine.
pub fn spawn_background(engine: &Engine, name: &str, sweep_interval: Duration) {
    tokio::spawn(sweeper::run(
        engine.db().clone(),
        engine.queue().clone(),
        sweep_interval,
    ));
    tokio::spawn(heartbeat::run(
        engine.db().clone(),
        name.to_owned(),
        i32::try_from(engine.integration_share()).unwrap_or(i32::MAX),
    ));
}

/// Graceful stop: waits up to `grace` for in-flight deliveries, then hands the rest
/// back to the ledger and removes the heartbeat.
pub async fn drain(engine: &Engine, name: &str, grace: Duration) {
    engine.stop_taking_on();
    let deadline = tokio::time::Instant::now() + grace;
    while engine.in_flight_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match engine.release_in_flight().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            released = n,
            "handed in-flight deliveries back to the ledger"
        ),
        Err(e) => {
            tracing::error!(error = %e, "releasing in-flight deliveries; their leases will expire")
        }
    }
    if let Err(e) = heartbeat::remove(engine.db(), name).await {
        tracing::warn!(error = %e, "removing the worker heartbeat");
    }
}

/// Runs a worker until `shutdown` resolves, then drains; `listener` serves `/healthz`.
pub async fn run(
    config: WorkerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let settings = config.delivery;
    let ledger = db::connect_engine(&config.database_url, config.db_pool).await?;
    let client = redis::Client::open(config.redis_url.as_str())?;
    let conn = client.get_connection_manager().await?;
    let events = EventBus::redis(conn.clone(), &settings.redis_prefix);
    let queue = Queue::redis(
        conn.clone(),
        &settings.redis_prefix,
        settings.worker_concurrency,
    );
    let (prefix, concurrency, grace) = (
        settings.redis_prefix.clone(),
        settings.worker_concurrency,
        settings.shutdown_grace,
    );
    let sweep_interval = settings.sweep_interval;
    let engine = Arc::new(Engine::new(ledger, events, queue, settings)?);
    let name = heartbeat::worker_name();

    let health = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::render));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, health).await {
            tracing::error!(error = %e, "worker health endpoint stopped");
        }
    });
    spawn_background(&engine, &name, sweep_interval);
    tracing::info!(%name, %prefix, concurrency, "worker started");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Spawned, not awaited: once stopped, apalis waits for every running job (up to the
    // integration's HTTP timeout), which ignored the grace; `drain` bounds that wait and
    // hands back what is still in flight, then the rest of the jobs are dropped.
    let mut jobs = tokio::spawn({
        let (engine, name) = (engine.clone(), name.clone());
        async move { queue::run_redis(engine, client, conn, prefix, concurrency, &name, stopped).await }
    });
    let ended = tokio::select! {
        () = shutdown => None,
        ended = &mut jobs => Some(ended),
    };
    let _ = stop.send(true);
    tracing::info!("stopping: draining in-flight deliveries");
    drain(&engine, &name, grace).await;
    jobs.abort();
    if let Some(ended) = ended {
        ended??;
    }
    Ok(())
}
