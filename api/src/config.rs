//! The api's settings: every flag is also a `LEADRELAY_*` variable, and the defaults run
//! the embedded mode (SQLite in the data dir, in-process queue and worker).

use clap::{Parser, Subcommand};
use leadrelay_worker::DeliverySettings;
use std::{net::SocketAddr, path::PathBuf};

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
    pub delivery: DeliverySettings,
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
    fn redis_turns_the_embedded_worker_off_by_default() {
        assert!(!parse(&["--redis-url", "redis://127.0.0.1"]).runs_worker());
    }
}
