//! `leadrelay-worker`: delivers queued leads (PostgreSQL + Redis mode).

use clap::Parser;
use leadrelay_worker::WorkerConfig;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = WorkerConfig::parse();
    leadrelay_worker::runtime::build(&config.runtime)?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        leadrelay_worker::run(config, listener, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
