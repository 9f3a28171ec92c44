//! The api's settings: every flag is also a `LEADRELAY_*` variable, and the defaults run
//! the embedded mode (SQLite in the data dir, in-process queue and worker).

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use leadrelay_worker::{DeliverySettings, config::parse_cidr, runtime::RuntimeSettings};
use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

/// Command line of `leadrelay-api`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "leadrelay-api",
    version,
    about = "LeadRelay: lead intake, GraphQL API and dashboard"
)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Database URL (postgres://… in production). Default: SQLite in the data dir.
    #[arg(long, env = "LEADRELAY_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Redis URL of the queue and event channels. Unset: in-process queue.
    #[arg(long, env = "LEADRELAY_REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Where embedded mode keeps its SQLite file and generated secrets.
    #[arg(
        long,
        env = "LEADRELAY_DATA_DIR",
        default_value = "./leadrelay-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(
        long,
        env = "LEADRELAY_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,
    /// Public base URL used in inbound URLs. Default: http://{BIND}.
    #[arg(long, env = "LEADRELAY_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// HS256 secret for session tokens (at least 32 bytes). Required with DATABASE_URL;
    /// embedded mode generates one into the data dir.
    #[arg(
        long,
        env = "LEADRELAY_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,
    /// Run the delivery worker inside this process. Default: true without REDIS_URL.
    #[arg(long, env = "LEADRELAY_EMBEDDED_WORKER", action = clap::ArgAction::Set, global = true)]
    pub embedded_worker: Option<bool>,
    /// PostgreSQL pool size of this process.
    #[arg(long, env = "LEADRELAY_DB_POOL", default_value_t = 16, global = true)]
    pub db_pool: u32,
    #[command(flatten)]
    pub runtime: RuntimeSettings,
    #[command(flatten)]
    pub delivery: DeliverySettings,
    #[command(flatten)]
    pub lookups: LookupSettings,
}

/// The network-backed verifications (all off by default: with none configured, intake
/// touches no network) and where the client's address comes from.
#[derive(Args, Debug, Clone)]
pub struct LookupSettings {
    /// Look up the MX (or A/AAAA) records of each lead's email domain; a domain that
    /// cannot receive mail makes the email invalid.
    #[arg(long, env = "LEADRELAY_MX_LOOKUP", default_value_t = false, action = clap::ArgAction::Set)]
    pub mx_lookup: bool,
    /// DNS server of the MX lookups (`ip` or `ip:port`). Default: the system's resolvers.
    #[arg(long, env = "LEADRELAY_DNS_SERVER", value_parser = parse_dns_server)]
    pub dns_server: Option<SocketAddr>,
    /// Base URL of a CNPJ registry speaking BrasilAPI's `GET /api/cnpj/v1/{cnpj}`
    /// (e.g. https://brasilapi.com.br). Unset: no registry lookup, `cnpj_status` null.
    #[arg(long, env = "LEADRELAY_CNPJ_REGISTRY_URL")]
    pub cnpj_registry_url: Option<String>,
    /// Base URL of an IP reputation provider speaking proxycheck.io's v2 format
    /// (`GET {base}/v2/{ip}?vpn=1&risk=1`). Unset: no provider lookup.
    #[arg(long, env = "LEADRELAY_IP_PROVIDER_URL")]
    pub ip_provider_url: Option<String>,
    /// API key of the IP provider (sent as `key=`).
    #[arg(long, env = "LEADRELAY_IP_PROVIDER_KEY", hide_env_values = true)]
    pub ip_provider_key: Option<Secret>,
    /// A MaxMind-format database (GeoIP2/GeoLite2 Anonymous-IP) read at start.
    #[arg(long, env = "LEADRELAY_MAXMIND_DB")]
    pub maxmind_db: Option<PathBuf>,
    /// Longest wait for one network lookup; past it the field is null with a reason and
    /// the lead goes on.
    #[arg(long, env = "LEADRELAY_LOOKUP_TIMEOUT_MS", default_value_t = 1500, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub lookup_timeout_ms: u64,
    /// Comma-separated CIDRs of reverse proxies whose `X-Forwarded-For` is believed
    /// (e.g. 10.0.0.0/8,127.0.0.1/32). From any other peer the header is ignored.
    #[arg(long, env = "LEADRELAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<IpNet>,
}

impl LookupSettings {
    /// The bound of each network lookup.
    pub fn lookup_timeout(&self) -> Duration {
        Duration::from_millis(self.lookup_timeout_ms)
    }
}

/// A secret setting: its `Debug` never shows the value, so logging a config cannot leak
/// it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(••••)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// `ip` (port 53) or `ip:port`.
fn parse_dns_server(raw: &str) -> Result<SocketAddr, String> {
    let raw = raw.trim();
    raw.parse::<SocketAddr>()
        .or_else(|_| raw.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{raw:?} is not an address like 10.0.0.2 or 127.0.0.1:5353"))
}

/// What `leadrelay-api` does; serving is the default.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve the API, intake and dashboard (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
}

/// A setting that cannot work, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl Config {
    /// The database URL in force: the configured one, or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("leadrelay.db").display()
            )
        })
    }

    /// Whether this process runs the worker.
    pub fn runs_worker(&self) -> bool {
        self.embedded_worker.unwrap_or(self.redis_url.is_none())
    }

    /// The base of inbound URLs.
    pub fn effective_public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Checks the settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |setting, problem: &str| {
            Err(ConfigError {
                setting,
                problem: problem.to_owned(),
            })
        };
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            return err(
                "LEADRELAY_DATABASE_URL",
                "must start with postgres://, postgresql:// or sqlite:",
            );
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return err(
                "LEADRELAY_REDIS_URL",
                "must start with redis:// or rediss://",
            );
        }
        match &self.jwt_secret {
            Some(s) if s.len() < 32 => {
                return err("LEADRELAY_JWT_SECRET", "must be at least 32 bytes");
            }
            None if self.database_url.is_some() => {
                return err(
                    "LEADRELAY_JWT_SECRET",
                    "is required when LEADRELAY_DATABASE_URL is set",
                );
            }
            _ => {}
        }
        if self.database_url.is_some() && self.delivery.secret_key.is_none() {
            return err(
                "LEADRELAY_SECRET_KEY",
                "is required when LEADRELAY_DATABASE_URL is set (32 bytes as 64 hex digits or base64, the same for every api and worker)",
            );
        }
        if self.redis_url.is_none() && self.embedded_worker == Some(false) {
            return err(
                "LEADRELAY_EMBEDDED_WORKER",
                "false needs LEADRELAY_REDIS_URL: without Redis only this process can run deliveries",
            );
        }
        if let Some(url) = &self.public_url
            && reqwest_url_ok(url).is_err()
        {
            return err("LEADRELAY_PUBLIC_URL", "must be an absolute http(s) URL");
        }
        if self.db_pool == 0 {
            return err("LEADRELAY_DB_POOL", "must be at least 1");
        }
        if let Some(url) = &self.lookups.cnpj_registry_url
            && reqwest_url_ok(url).is_err()
        {
            return err(
                "LEADRELAY_CNPJ_REGISTRY_URL",
                "must be an absolute http(s) URL",
            );
        }
        if let Some(url) = &self.lookups.ip_provider_url
            && reqwest_url_ok(url).is_err()
        {
            return err(
                "LEADRELAY_IP_PROVIDER_URL",
                "must be an absolute http(s) URL",
            );
        }
        Ok(())
    }
}

fn reqwest_url_ok(url: &str) -> Result<(), ()> {
    match url.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut all = vec!["leadrelay-api"];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap()
    }

    #[test]
    fn defaults_are_embedded() {
        let c = parse(&[]);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert!(c.runs_worker());
        assert!(c.effective_database_url().starts_with("sqlite://"));
        assert_eq!(c.effective_public_url(), "http://127.0.0.1:8080");
        c.validate().unwrap();
    }

    #[test]
    fn runtime_threads_are_at_least_one() {
        assert_eq!(parse(&["--threads", "3"]).runtime.threads, Some(3));
        assert_eq!(parse(&[]).runtime.threads, None);
        let e = Config::try_parse_from(["leadrelay-api", "--threads", "0"]).unwrap_err();
        assert!(e.to_string().contains("--threads"), "{e}");
    }

    #[test]
    fn postgres_without_jwt_secret_names_the_setting() {
        let e = parse(&["--database-url", "postgres://localhost/x"])
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_JWT_SECRET");
    }

    #[test]
    fn postgres_without_secret_key_names_the_setting() {
        let jwt = "0123456789abcdef0123456789abcdef";
        let base = [
            "--database-url",
            "postgres://localhost/x",
            "--jwt-secret",
            jwt,
        ];
        let e = parse(&base).validate().unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_SECRET_KEY");
        let key = "ab".repeat(32);
        let mut with_key = base.to_vec();
        with_key.extend(["--secret-key", &key]);
        parse(&with_key).validate().unwrap();
        let bad = Config::try_parse_from(["leadrelay-api", "--secret-key", "short"]).unwrap_err();
        assert!(bad.to_string().contains("32 bytes"), "{bad}");
    }

    #[test]
    fn short_jwt_secret_is_refused() {
        let e = parse(&["--jwt-secret", "short"]).validate().unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_JWT_SECRET");
    }

    #[test]
    fn no_worker_without_redis_is_refused() {
        let e = parse(&["--embedded-worker", "false"])
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_EMBEDDED_WORKER");
    }

    #[test]
    fn bad_database_scheme_is_refused() {
        let e = parse(&[
            "--database-url",
            "mysql://x",
            "--jwt-secret",
            &"x".repeat(32),
        ])
        .validate()
        .unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_DATABASE_URL");
    }

    #[test]
    fn lookups_are_off_by_default() {
        let c = parse(&[]);
        let l = &c.lookups;
        assert!(!l.mx_lookup);
        assert_eq!(
            (&l.cnpj_registry_url, &l.ip_provider_url, &l.maxmind_db),
            (&None, &None, &None)
        );
        assert_eq!(l.lookup_timeout(), Duration::from_millis(1500));
        assert!(l.trusted_proxies.is_empty());
    }

    #[test]
    fn lookup_settings_parse() {
        let c = parse(&[
            "--trusted-proxies",
            "10.0.0.0/8, 127.0.0.1",
            "--dns-server",
            "127.0.0.1:5353",
            "--ip-provider-key",
            "sekrit-key",
            "--mx-lookup",
            "true",
        ]);
        let l = &c.lookups;
        assert_eq!(
            l.trusted_proxies,
            [
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "127.0.0.1/32".parse().unwrap()
            ]
        );
        assert_eq!(l.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
        assert_eq!(
            parse(&["--dns-server", "10.0.0.2"])
                .lookups
                .dns_server
                .map(|a| a.port()),
            Some(53)
        );
        assert!(l.mx_lookup);
        assert!(
            !format!("{c:?}").contains("sekrit"),
            "the key never shows in Debug"
        );
        for bad in [
            ["--trusted-proxies", "10.0.0.0/33"],
            ["--dns-server", "dns.example.com"],
            ["--lookup-timeout-ms", "0"],
        ] {
            let mut all = vec!["leadrelay-api"];
            all.extend_from_slice(&bad);
            assert!(Config::try_parse_from(all).is_err(), "{bad:?}");
        }
        let e = parse(&["--cnpj-registry-url", "brasilapi.com.br"])
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_CNPJ_REGISTRY_URL");
        let e = parse(&["--ip-provider-url", "ftp://x"])
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "LEADRELAY_IP_PROVIDER_URL");
    }

    #[test]
    fn redis_turns_the_embedded_worker_off_by_default() {
        assert!(!parse(&["--redis-url", "redis://127.0.0.1"]).runs_worker());
    }
}
