//! Settings of the delivery engine, shared by `leadrelay-worker` and the api's embedded
//! worker (flattened into both command lines, each also a `LEADRELAY_*` variable).

use std::{net::SocketAddr, time::Duration};

/// How deliveries are attempted.
#[derive(clap::Args, Debug, Clone)]
pub struct DeliverySettings {
    /// Delay before each attempt, from the end of the previous one; its length is the
    /// number of attempts.
    #[arg(long, env = "LEADRELAY_RETRY_LADDER", default_value = "0s,1m,5m,15m,30m", value_parser = parse_ladder)]
    pub retry_ladder: Ladder,
    /// How long a claimed delivery stays reserved for the worker that claimed it.
    #[arg(long, env = "LEADRELAY_LEASE", default_value = "30s", value_parser = parse_duration)]
    pub lease: Duration,
    /// How often the sweeper looks for due rows that no job is carrying.
    #[arg(long, env = "LEADRELAY_SWEEP_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub sweep_interval: Duration,
    /// How long a stopping process waits for its in-flight deliveries before handing
    /// them back to the ledger.
    #[arg(long, env = "LEADRELAY_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// How many deliveries one process sends at the same time.
    #[arg(long, env = "LEADRELAY_WORKER_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_concurrency: u16,
    /// Development only: allow http:// and loopback targets (private ranges stay blocked).
    #[arg(long, env = "LEADRELAY_ALLOW_INSECURE_TARGETS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_insecure_targets: bool,
    /// Prefix of every Redis key and channel, so several installations share one Redis.
    #[arg(long, env = "LEADRELAY_REDIS_PREFIX", default_value = "leadrelay")]
    pub redis_prefix: String,
}

/// Command line of the standalone `leadrelay-worker` process.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "leadrelay-worker",
    version,
    about = "LeadRelay delivery worker (PostgreSQL + Redis)"
)]
pub struct WorkerConfig {
    /// PostgreSQL URL of the ledger (the same database as the api's).
    #[arg(long, env = "LEADRELAY_DATABASE_URL")]
    pub database_url: String,
    /// Redis URL of the job queue and event channels.
    #[arg(long, env = "LEADRELAY_REDIS_URL")]
    pub redis_url: String,
    /// Address of the worker's /healthz and /metrics.
    #[arg(long, env = "LEADRELAY_BIND", default_value = "127.0.0.1:8081")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub delivery: DeliverySettings,
}

/// The retry ladder: the delay before each attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(pub Vec<Duration>);

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{raw:?} is not a duration like 30s or 5m: {e}"))
}

fn parse_ladder(raw: &str) -> Result<Ladder, String> {
    let steps = raw
        .split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if steps.len() > 20 {
        return Err("at most 20 attempts".into());
    }
    Ok(Ladder(steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn default_ladder_is_five_attempts() {
        let cfg = WorkerConfig::try_parse_from([
            "w",
            "--database-url",
            "postgres://x",
            "--redis-url",
            "redis://x",
        ])
        .unwrap();
        let mins = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(
            cfg.delivery.retry_ladder.0,
            vec![Duration::ZERO, mins(1), mins(5), mins(15), mins(30)]
        );
        assert_eq!(cfg.delivery.lease, Duration::from_secs(30));
    }

    #[test]
    fn bad_ladder_names_the_setting() {
        let err = WorkerConfig::try_parse_from([
            "w",
            "--database-url",
            "postgres://x",
            "--redis-url",
            "redis://x",
            "--retry-ladder",
            "0s,soon",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("--retry-ladder"), "{err}");
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let res = WorkerConfig::try_parse_from([
            "w",
            "--database-url",
            "postgres://x",
            "--redis-url",
            "redis://x",
            "--worker-concurrency",
            "0",
        ]);
        assert!(res.is_err());
    }
}
