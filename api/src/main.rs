//! `leadrelay-api`: serve (default), `migrate`, or print the GraphQL `schema`.

use clap::Parser;
use leadrelay_api::{Command, Config};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::parse();
    if let Err(e) = config.validate() {
        eprintln!("leadrelay-api: {e}");
        std::process::exit(2);
    }
    leadrelay_worker::runtime::build(&config.runtime)?.block_on(run(config))
}

async fn run(config: Config) -> anyhow::Result<()> {
    match config.command.clone().unwrap_or(Command::Serve) {
        Command::Schema => print!("{}", leadrelay_api::graphql::sdl()),
        Command::Migrate => leadrelay_api::migrate(&config).await?,
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.bind).await?;
            leadrelay_api::serve(config, listener, shutdown_signal()).await?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
