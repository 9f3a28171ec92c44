//! The system under test: `leadrelay-api` and `leadrelay-worker` processes on a fresh
//! database and Redis prefix, set up through the real GraphQL API, torn down (processes,
//! database, Redis keys) after each run so repeated runs leave nothing behind.

use crate::Options;
use anyhow::{Context, Result, bail, ensure};
use leadrelay_tests::{JWT_SECRET, RedisServer, SECRET_KEY, database, free_port, redis_url};
use sea_orm::sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// The api and worker executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    api: PathBuf,
    worker: PathBuf,
}

impl Binaries {
    /// Finds them next to this executable. Unless `prebuilt`, first runs `cargo build --bins`
    /// there (release when this is a release build; a no-op when they are up to
    /// date), so a run after a change to the product measures the change.
    pub fn locate(prebuilt: bool) -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bench executable")?;
        let mut dir = exe
            .parent()
            .context("the bench has no folder")?
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bins = Binaries {
            api: dir.join("leadrelay-api"),
            worker: dir.join("leadrelay-worker"),
        };
        if !prebuilt {
            let release = dir.ends_with("release");
            eprintln!(
                "bench: cargo build of leadrelay-api and leadrelay-worker (release: {release})"
            );
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let mut cargo = std::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            );
            // Every binary of the workspace, as the test script builds them: building only
            // these two packages would unify dependency features differently and rebuild
            // half the dependency tree.
            cargo.current_dir(workspace).args(["build", "--bins"]);
            if release {
                cargo.arg("--release");
            }
            if let Some(target) = dir.parent() {
                cargo.env("CARGO_TARGET_DIR", target);
            }
            // `cargo run` gives this process its package's CARGO_* variables; build
            // scripts (ring's) watch some of them, so passing them on rebuilt the TLS stack
            // on every run and again at the next plain `cargo build`.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if name.starts_with("CARGO_")
                    && !matches!(&*name, "CARGO_HOME" | "CARGO_TARGET_DIR")
                {
                    cargo.env_remove(&*name);
                }
            }
            let status = cargo.status().context("running cargo build")?;
            ensure!(status.success(), "cargo build of the binaries failed");
        }
        ensure!(
            bins.api.exists() && bins.worker.exists(),
            "leadrelay-api or leadrelay-worker is missing in {} (run without --prebuilt, or \
             `cargo build --bins` first)",
            dir.display()
        );
        Ok(bins)
    }
}

/// How to start a stack.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Worker processes started with the api (0: start them later with `start_worker`).
    pub workers: usize,
    /// A private redis-server, short lease and sweep interval: the chaos scenario.
    pub chaos: bool,
}

/// A signed-up tenant: its id and session token.
pub struct Tenant {
    pub id: String,
    token: String,
}

/// A list: its id and inbound URL.
pub struct List {
    pub id: String,
    pub inbound_url: String,
}

/// A running api and its workers.
pub struct Stack {
    pub database_url: String,
    pub base: String,
    pub http: reqwest::Client,
    bins: Binaries,
    redis_url: String,
    prefix: String,
    private_redis: Option<RedisServer>,
    env: Vec<(&'static str, String)>,
    worker_pool: u32,
    api: Child,
    /// Oldest first.
    workers: Vec<Child>,
}

impl Stack {
    /// Starts the api (and `setup.workers` workers) on a fresh database and Redis prefix,
    /// and waits until each answers `/healthz`.
    pub async fn start(bins: &Binaries, options: &Options, setup: Setup) -> Result<Stack> {
        let database_url = database::fresh().await;
        let private_redis = if setup.chaos {
            Some(RedisServer::start().await)
        } else {
            None
        };
        let redis_url = private_redis
            .as_ref()
            .map_or_else(redis_url, RedisServer::url);
        let prefix = format!("lrb{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut env = vec![
            ("LEADRELAY_DATABASE_URL", local(&database_url)),
            ("LEADRELAY_REDIS_URL", redis_url.clone()),
            ("LEADRELAY_REDIS_PREFIX", prefix.clone()),
            ("LEADRELAY_ALLOW_INSECURE_TARGETS", "true".to_owned()),
            ("LEADRELAY_SECRET_KEY", SECRET_KEY.to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        if setup.chaos {
            env.push(("LEADRELAY_LEASE", "3s".to_owned()));
            env.push(("LEADRELAY_SWEEP_INTERVAL", "1s".to_owned()));
        }
        let port = free_port().await;
        let api = spawn(
            Command::new(&bins.api)
                .envs(env.iter().map(|(k, v)| (*k, v)))
                .env("LEADRELAY_JWT_SECRET", JWT_SECRET)
                .env("LEADRELAY_BIND", format!("127.0.0.1:{port}"))
                .env("LEADRELAY_EMBEDDED_WORKER", "false")
                .env("LEADRELAY_DB_POOL", options.api_pool.to_string()),
        );
        let api = match api {
            Ok(api) => api,
            Err(e) => {
                let _ = drop_database(&database_url).await;
                return Err(e);
            }
        };
        let mut stack = Stack {
            database_url,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .context("building the HTTP client")?,
            bins: bins.clone(),
            redis_url,
            prefix,
            private_redis,
            env,
            worker_pool: options.worker_pool,
            api,
            workers: Vec::new(),
        };
        let healthy = stack.wait_healthy(&stack.base).await;
        if let Err(e) = healthy {
            stack.teardown().await;
            return Err(e.context("the api did not start"));
        }
        for _ in 0..setup.workers {
            if let Err(e) = stack.start_worker().await {
                stack.teardown().await;
                return Err(e);
            }
        }
        Ok(stack)
    }

    async fn wait_healthy(&self, base: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{base}/healthz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{base}/healthz did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts one more worker and waits for its `/healthz`.
    pub async fn start_worker(&mut self) -> Result<()> {
        let port = free_port().await;
        let child = spawn(
            Command::new(&self.bins.worker)
                .envs(self.env.iter().map(|(k, v)| (*k, v)))
                .env("LEADRELAY_BIND", format!("127.0.0.1:{port}"))
                .env("LEADRELAY_DB_POOL", self.worker_pool.to_string()),
        )?;
        self.workers.push(child);
        self.wait_healthy(&format!("http://127.0.0.1:{port}"))
            .await
            .context("a worker did not start")
    }

    /// SIGKILLs the oldest worker (mid-delivery, handing nothing back).
    pub async fn kill_worker(&mut self) -> Result<()> {
        if self.workers.is_empty() {
            return Ok(());
        }
        let mut child = self.workers.remove(0);
        child.start_kill().context("SIGKILL a worker")?;
        child.wait().await.context("reaping a worker")?;
        Ok(())
    }

    /// Empties the private Redis (chaos only).
    pub async fn flush_redis(&self) {
        if let Some(redis) = &self.private_redis {
            redis.flushdb().await;
        }
    }

    /// Stops every process, drops the database and deletes the prefix's Redis keys.
    /// Failures are reported, not returned: a teardown never hides the run's result.
    pub async fn teardown(mut self) {
        for child in self.workers.iter_mut().chain([&mut self.api]) {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if let Err(e) = drop_database(&self.database_url).await {
            eprintln!("bench: dropping {}: {e:#}", self.database_url);
        }
        if self.private_redis.is_none()
            && let Err(e) = delete_keys(&self.redis_url, &self.prefix).await
        {
            eprintln!("bench: deleting Redis keys {}*: {e:#}", self.prefix);
        }
    }

    /// Runs a GraphQL operation that must succeed; returns its `data`.
    async fn gql(&self, as_tenant: Option<&Tenant>, query: &str, input: Value) -> Result<Value> {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": { "input": input } }));
        if let Some(tenant) = as_tenant {
            request = request.bearer_auth(&tenant.token);
        }
        let answer: Value = request
            .send()
            .await
            .context("GraphQL request")?
            .json()
            .await
            .context("GraphQL answer")?;
        ensure!(answer.get("errors").is_none(), "GraphQL errors: {answer}");
        Ok(answer["data"].clone())
    }

    /// Signs up a new tenant.
    pub async fn sign_up(&self, name: &str) -> Result<Tenant> {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let data = self
            .gql(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { token tenant { id } } }",
                json!({ "email": email, "password": "bench password 0123", "tenantName": name }),
            )
            .await?;
        Ok(Tenant {
            id: text(&data["signUp"]["tenant"]["id"])?,
            token: text(&data["signUp"]["token"])?,
        })
    }

    /// Creates a list.
    pub async fn create_list(&self, tenant: &Tenant, name: &str) -> Result<List> {
        let data = self
            .gql(
                Some(tenant),
                "mutation($input: CreateListInput!) { createList(input: $input) { id inboundUrl } }",
                json!({ "name": name }),
            )
            .await?;
        Ok(List {
            id: text(&data["createList"]["id"])?,
            inbound_url: text(&data["createList"]["inboundUrl"])?,
        })
    }

    /// Creates a webhook integration of `list` to `url`; returns its id.
    pub async fn create_integration(
        &self,
        tenant: &Tenant,
        list: &List,
        url: &str,
        max_in_flight: u32,
        timeout_ms: u32,
    ) -> Result<String> {
        let data = self
            .gql(
                Some(tenant),
                "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }",
                json!({ "name": "bench", "listId": list.id, "url": url,
                        "maxInFlight": max_in_flight, "timeoutMs": timeout_ms }),
            )
            .await?;
        text(&data["createIntegration"]["id"])
    }
}

fn text(value: &Value) -> Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("expected a string, got {value}"))
}

fn spawn(command: &mut Command) -> Result<Child> {
    command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {:?}", command.as_std().get_program()))
}

/// The admin connection of the PostgreSQL server.
async fn admin() -> Result<PgConnection> {
    let url = format!("{}/postgres", database::server_url().trim_end_matches('/'));
    PgConnection::connect(&url)
        .await
        .context("connecting to PostgreSQL")
}

/// How the bench's processes reach PostgreSQL on this host: without TLS, as a deployment
/// with its database on the same host would. (Debian's server has `ssl = on`, and sqlx's
/// default `sslmode=prefer` would encrypt every loopback round trip.) The floor connects
/// the same way, so the ratio compares like with like.
pub fn local(database_url: &str) -> String {
    format!("{database_url}?sslmode=disable")
}

/// Drops the database at `url`, even with connections still open.
pub async fn drop_database(url: &str) -> Result<()> {
    let name = url.rsplit('/').next().unwrap_or(url);
    admin()
        .await?
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    Ok(())
}

async fn delete_keys(url: &str, prefix: &str) -> Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    for chunk in keys.chunks(500) {
        redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}
