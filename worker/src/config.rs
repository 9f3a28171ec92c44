//! Settings of the delivery engine, shared by `leadrelay-worker` and the api's embedded
//! worker (flattened into both command lines, each also a `LEADRELAY_*` variable).

use crate::{
    outbound::ExtraCa, resolver::DnsOverride, runtime::RuntimeSettings, secrets::SecretKey,
    targets::TargetPolicy,
};
use ipnet::IpNet;
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

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
    /// Comma-separated CIDRs (or single addresses) exempt from the private/loopback rules,
    /// for on-premise receivers; https is still required and metadata addresses stay
    /// blocked.
    #[arg(long, env = "LEADRELAY_TARGET_ALLOWLIST", value_delimiter = ',', value_parser = parse_cidr)]
    pub target_allowlist: Vec<IpNet>,
    /// PEM file of extra CA certificates trusted for https targets, besides the platform's.
    #[arg(long, env = "LEADRELAY_EXTRA_CA_FILE", value_parser = ExtraCa::load)]
    pub extra_ca_file: Option<ExtraCa>,
    /// For tests and staging: comma-separated `name=ip` pairs answered instead of DNS
    /// (repeat a name for several addresses). The addresses are still checked like
    /// resolved ones, so an override can never reach a blocked target.
    #[arg(long = "dns-override", env = "LEADRELAY_DNS_OVERRIDES", value_delimiter = ',', value_parser = DnsOverride::parse)]
    pub dns_overrides: Vec<DnsOverride>,
    /// Prefix of every Redis key and channel, so several installations share one Redis.
    #[arg(long, env = "LEADRELAY_REDIS_PREFIX", default_value = "leadrelay")]
    pub redis_prefix: String,
    /// The key that seals integration header values at rest (32 bytes as 64 hex digits
    /// or base64). Required with PostgreSQL, the same in every api and worker process;
    /// embedded mode generates one into its data dir.
    #[arg(long, env = "LEADRELAY_SECRET_KEY", hide_env_values = true, value_parser = SecretKey::parse)]
    pub secret_key: Option<SecretKey>,
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
    /// PostgreSQL connections of this process (a delivery holds one only to claim and to
    /// record its attempt, never during the HTTP call).
    #[arg(long, env = "LEADRELAY_DB_POOL", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_pool: u32,
    #[command(flatten)]
    pub runtime: RuntimeSettings,
    /// Address of the worker's /healthz and /metrics.
    #[arg(long, env = "LEADRELAY_BIND", default_value = "127.0.0.1:8081")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub delivery: DeliverySettings,
}

impl From<&DeliverySettings> for TargetPolicy {
    fn from(settings: &DeliverySettings) -> Self {
        TargetPolicy {
            allow_insecure: settings.allow_insecure_targets,
            allowlist: settings.target_allowlist.clone(),
        }
    }
}

/// The retry ladder: the delay before each attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder(pub Vec<Duration>);

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{raw:?} is not a duration like 30s or 5m: {e}"))
}

/// A CIDR like `10.20.0.0/16`, or one address (`/32` or `/128`); shared with the api's
/// CIDR settings.
pub fn parse_cidr(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is not a CIDR like 10.20.0.0/16"))
}

fn parse_ladder(raw: &str) -> Result<Ladder, String> {
    let steps = raw
        .split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if steps.len() > 20 {
        return Err("at most 20 attempts".into());
    }
    if steps
        .iter()
        .any(|step| *step > Duration::from_secs(24 * 3600))
    {
        return Err("each step must be at most 24h".into());
    }
    Ok(Ladder(steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn default_ladder_is_five_attempts() {
        let cfg = parse(&[]).unwrap();
        let mins = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(
            cfg.delivery.retry_ladder.0,
            vec![Duration::ZERO, mins(1), mins(5), mins(15), mins(30)]
        );
        assert_eq!(cfg.delivery.lease, Duration::from_secs(30));
    }

    #[test]
    fn bad_ladder_names_the_setting() {
        let err = parse(&["--retry-ladder", "0s,soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--retry-ladder"), "{err}");
        assert!(err.contains("soon"), "{err}");
    }

    fn parse(extra: &[&str]) -> Result<WorkerConfig, clap::Error> {
        let mut args = vec![
            "w",
            "--database-url",
            "postgres://x",
            "--redis-url",
            "redis://x",
        ];
        args.extend_from_slice(extra);
        WorkerConfig::try_parse_from(args)
    }

    #[test]
    fn target_settings_default_to_none() {
        let d = parse(&[]).unwrap().delivery;
        assert!(d.target_allowlist.is_empty());
        assert!(d.extra_ca_file.is_none());
        assert!(d.dns_overrides.is_empty());
        assert_eq!(TargetPolicy::from(&d), TargetPolicy::default());
    }

    #[test]
    fn allowlist_takes_cidrs_and_single_addresses() {
        let d = parse(&[
            "--target-allowlist",
            "10.20.0.0/16, 192.168.1.7,fd00:1::/64",
        ])
        .unwrap()
        .delivery;
        let policy = TargetPolicy::from(&d);
        assert_eq!(policy.allowlist.len(), 3);
        assert!(policy.check_ip("192.168.1.7".parse().unwrap()).is_ok());
        assert!(policy.check_ip("192.168.1.8".parse().unwrap()).is_err());
    }

    #[test]
    fn bad_allowlist_names_the_setting() {
        let err = parse(&["--target-allowlist", "10.0.0.0/8,10.0.0/33"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--target-allowlist"), "{err}");
        assert!(err.contains("10.0.0/33"), "{err}");
    }

    #[test]
    fn dns_overrides_are_pairs() {
        let d = parse(&[
            "--dns-override",
            "a.test=10.0.0.1,a.test=::1,b.test=1.2.3.4",
        ])
        .unwrap()
        .delivery;
        assert_eq!(d.dns_overrides.len(), 3);
        let err = parse(&["--dns-override", "a.test"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--dns-override"), "{err}");
    }

    #[test]
    fn unreadable_or_invalid_ca_file_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        for path in [not_pem.to_str().unwrap(), "/nonexistent/ca.pem"] {
            let err = parse(&["--extra-ca-file", path]).unwrap_err().to_string();
            assert!(err.contains("--extra-ca-file"), "{err}");
        }
    }

    #[test]
    fn ladders_with_too_many_or_too_long_steps_are_refused() {
        let parse = |ladder: &str| parse(&["--retry-ladder", ladder]);
        assert!(parse("0s,2d").is_err());
        assert!(parse(&vec!["1s"; 21].join(",")).is_err());
        assert!(parse("").is_err());
        assert_eq!(parse("0s,1s").unwrap().delivery.retry_ladder.0.len(), 2);
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let res = parse(&["--worker-concurrency", "0"]);
        assert!(res.is_err());
    }
}
