//! Test support for LeadRelay's end-to-end tests: a [`TestApp`] running the real api on a
//! fresh PostgreSQL database and Redis prefix (or embedded SQLite), a scripted HTTP
//! [`Receiver`], a GraphQL subscription client, the worker as a real process, a private
//! [`RedisServer`] for tests that disturb Redis, and [`eventually`] for polling with a
//! deadline.

pub mod crm;
pub mod database;
pub mod receiver;
pub mod redis_server;
pub mod subscription;
pub mod tls;

pub use crm::{HubSpotMock, PipedriveMock};
pub use receiver::{Received, Receiver};
pub use redis_server::RedisServer;
pub use subscription::Subscription;
pub use tls::TestCa;

use clap::Parser;
use futures::{StreamExt, stream};
use serde_json::{Value, json};
use std::{
    collections::HashSet,
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, task::JoinHandle};

/// Redis of the test machine (`LEADRELAY_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("LEADRELAY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The `extensions.code` of a GraphQL response's first error (`<none>` without one).
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}

/// A loopback port that was free a moment ago (for a process that binds it itself).
pub async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A JWT secret for test processes.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
/// `LEADRELAY_SECRET_KEY` of test and bench processes on PostgreSQL (64 hex digits).
pub const SECRET_KEY: &str = "6c65616472656c61792d746573742d6b65792d6f6e6c792d6e6f742d70726f64";

/// Polls `probe` until it yields a value or `timeout` passes (then panics naming `what`).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,leadrelay=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// How a [`TestApp`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PostgreSQL + Redis, with the worker inside the api process.
    Production,
    /// PostgreSQL + Redis, no worker in the api (start one with [`TestApp::spawn_worker`]).
    ProductionNoWorker,
    /// SQLite in a temporary data dir, in-process queue and worker.
    Embedded,
}

/// A running api with its own database and Redis prefix.
pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub mode: Mode,
    pub database_url: String,
    /// The Redis of the api and of the workers it spawns (unused in embedded mode).
    pub redis_url: String,
    pub redis_prefix: String,
    pub http: reqwest::Client,
    server: JoinHandle<anyhow::Result<()>>,
    _data_dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
}

/// A created list.
#[derive(Debug, Clone)]
pub struct ListInfo {
    pub id: String,
    pub inbound_url: String,
}

impl TestApp {
    /// The api in production mode with the worker in-process (insecure targets allowed,
    /// so receivers on loopback http work).
    pub async fn production() -> Self {
        Self::start(Mode::Production, &["--allow-insecure-targets", "true"]).await
    }

    /// The api in embedded mode (SQLite, in-process queue and worker).
    pub async fn embedded() -> Self {
        Self::start(Mode::Embedded, &["--allow-insecure-targets", "true"]).await
    }

    /// The api in `mode` with extra command-line flags, on the machine's Redis.
    pub async fn start(mode: Mode, extra: &[&str]) -> Self {
        Self::start_on_redis(mode, &redis_url(), extra).await
    }

    /// The api in `mode` with extra command-line flags, on the Redis at `redis_url` (e.g.
    /// a private [`RedisServer`]).
    pub async fn start_on_redis(mode: Mode, redis_url: &str, extra: &[&str]) -> Self {
        init_logs();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let redis_prefix = format!("lrt{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let database_url = match mode {
            Mode::Embedded => format!(
                "sqlite://{}?mode=rwc",
                data_dir.path().join("leadrelay.db").display()
            ),
            _ => database::fresh().await,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut args: Vec<String> = vec![
            "leadrelay-api".into(),
            "--data-dir".into(),
            data_dir.path().display().to_string(),
            "--bind".into(),
            addr.to_string(),
            "--redis-prefix".into(),
            redis_prefix.clone(),
            "--db-pool".into(),
            "5".into(),
        ];
        if mode != Mode::Embedded {
            args.extend([
                "--database-url".into(),
                database_url.clone(),
                "--jwt-secret".into(),
                JWT_SECRET.into(),
                "--secret-key".into(),
                SECRET_KEY.into(),
            ]);
            args.extend(["--redis-url".into(), redis_url.to_owned()]);
            args.extend([
                "--embedded-worker".into(),
                (mode == Mode::Production).to_string(),
            ]);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let config = leadrelay_api::Config::try_parse_from(args).expect("test config");
        let server = tokio::spawn(leadrelay_api::serve(
            config,
            listener,
            std::future::pending(),
        ));
        let app = TestApp {
            base: format!("http://{addr}"),
            addr,
            mode,
            database_url,
            redis_url: redis_url.to_owned(),
            redis_prefix,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            server,
            _data_dir: data_dir,
        };
        app.wait_until_healthy().await;
        app
    }

    async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                !self.server.is_finished(),
                "the api stopped during start-up (see the log)"
            );
            if let Ok(r) = self.http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the api did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs a GraphQL operation and returns the whole response (`data` and `errors`).
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("graphql request");
        assert_eq!(
            response.status(),
            200,
            "GraphQL answers 200 even for errors"
        );
        response.json().await.expect("graphql json")
    }

    /// Runs a GraphQL operation that must succeed and returns its `data`.
    pub async fn gql_ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let response = self.gql(Some(token), query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// Signs up a new tenant with a unique email.
    pub async fn signup(&self) -> Session {
        let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
        let data = self
            .gql(
                None,
                "mutation($input: SignUpInput!) { signUp(input: $input) { token user { id } tenant { id } } }",
                json!({ "input": { "email": email, "password": "correct horse battery", "tenantName": "Acme Leads" } }),
            )
            .await;
        let payload = &data["data"]["signUp"];
        assert!(payload.is_object(), "signUp failed: {data}");
        Session {
            token: payload["token"].as_str().unwrap().to_owned(),
            tenant_id: payload["tenant"]["id"].as_str().unwrap().to_owned(),
            user_id: payload["user"]["id"].as_str().unwrap().to_owned(),
            email,
        }
    }

    /// Creates a list named `name`.
    pub async fn create_list(&self, session: &Session, name: &str) -> ListInfo {
        let data = self
            .gql_ok(
                &session.token,
                "mutation($input: CreateListInput!) { createList(input: $input) { id inboundUrl } }",
                json!({ "input": { "name": name } }),
            )
            .await;
        ListInfo {
            id: data["createList"]["id"].as_str().unwrap().to_owned(),
            inbound_url: data["createList"]["inboundUrl"]
                .as_str()
                .unwrap()
                .to_owned(),
        }
    }

    /// Runs `updateList` with `input`; returns the whole response, errors included.
    pub async fn update_list(&self, session: &Session, list_id: &str, input: Value) -> Value {
        self.gql(
            Some(&session.token),
            "mutation($id: ID!, $input: UpdateListInput!) { updateList(id: $id, input: $input) {
                id minScore requiredChecks requiredFields dedupeWindowDays dedupeFields
                aliases { from to } requireApiKey apiKey thankYouUrl inboundUrl } }",
            json!({ "id": list_id, "input": input }),
        )
        .await
    }

    /// A lead as the API shows it, with its deliveries' ids.
    pub async fn lead(&self, session: &Session, lead_id: &str) -> Value {
        self.gql_ok(
            &session.token,
            "query($id: ID!) { lead(id: $id) { id status score reasons duplicateOf email phone
                customFields deliveries { id } } }",
            json!({ "id": lead_id }),
        )
        .await["lead"]
            .clone()
    }

    /// Creates a WEBHOOK integration to `url` with `headers` (`[(name, value)]`).
    pub async fn create_integration(
        &self,
        session: &Session,
        list_id: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let headers: Vec<Value> = headers
            .iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect();
        self.create_integration_with(
            session,
            json!({ "listId": list_id, "url": url, "headers": headers }),
        )
        .await
    }

    /// Creates an integration from `input` (a `CreateIntegrationInput`; `name` defaults to
    /// "CRM webhook") and returns its id.
    pub async fn create_integration_with(&self, session: &Session, input: Value) -> String {
        let mut full = json!({ "name": "CRM webhook" });
        full.as_object_mut()
            .expect("object")
            .extend(input.as_object().expect("input is an object").clone());
        let data = self
            .gql_ok(
                &session.token,
                "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }",
                json!({ "input": full }),
            )
            .await;
        data["createIntegration"]["id"].as_str().unwrap().to_owned()
    }

    /// POSTs a JSON lead to an inbound URL; returns the status and the JSON answer.
    pub async fn post_lead(&self, inbound_url: &str, lead: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(inbound_url)
            .json(lead)
            .send()
            .await
            .expect("inbound request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `n` leads (`lead{i}@example.com`), 32 at a time, each answered 202; returns
    /// their ids.
    pub async fn post_leads(&self, inbound_url: &str, n: usize) -> HashSet<String> {
        self.post_leads_as(inbound_url, "lead", n).await
    }

    /// [`TestApp::post_leads`] with the emails `{name}{i}@example.com`.
    pub async fn post_leads_as(&self, inbound_url: &str, name: &str, n: usize) -> HashSet<String> {
        stream::iter(0..n)
            .map(|i| async move {
                let (status, answer) = self
                    .post_lead(
                        inbound_url,
                        &json!({ "email": format!("{name}{i}@example.com") }),
                    )
                    .await;
                assert_eq!(status, 202, "lead {i}: {answer}");
                answer["lead_id"].as_str().expect("lead_id").to_owned()
            })
            .buffer_unordered(32)
            .collect()
            .await
    }

    /// POSTs a raw body with a content type; returns the status and the text answer.
    pub async fn post_raw(
        &self,
        inbound_url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, String) {
        let mut request = self.http.post(inbound_url).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("inbound request");
        (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        )
    }

    /// The delivery with its attempts.
    pub async fn delivery(&self, session: &Session, delivery_id: &str) -> Value {
        let data = self
            .gql_ok(
                &session.token,
                "query($id: ID!) { delivery(id: $id) { id status attemptCount nextAttemptAt isTest
                    lead { id email } integration { id }
                    attempts { number endpoint url statusCode responseBody durationMs errorKind error
                               requestHeaders { name valuePreview } startedAt } } }",
                json!({ "id": delivery_id }),
            )
            .await;
        data["delivery"].clone()
    }

    /// Polls the delivery until its status is `status`; returns the delivery with attempts.
    pub async fn wait_for_delivery(
        &self,
        session: &Session,
        delivery_id: &str,
        status: &str,
    ) -> Value {
        eventually(
            &format!("delivery {delivery_id} to be {status}"),
            Duration::from_secs(20),
            || async {
                let delivery = self.delivery(session, delivery_id).await;
                (delivery["status"] == status).then_some(delivery)
            },
        )
        .await
    }

    /// Polls the delivery until it has at least one attempt, whatever its status; returns
    /// the delivery with attempts.
    pub async fn wait_for_attempt(&self, session: &Session, delivery_id: &str) -> Value {
        eventually(
            &format!("an attempt of delivery {delivery_id}"),
            Duration::from_secs(20),
            || async {
                let delivery = self.delivery(session, delivery_id).await;
                delivery["attempts"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
                    .then_some(delivery)
            },
        )
        .await
    }

    /// The ids of a lead's deliveries.
    pub async fn lead_deliveries(&self, session: &Session, lead_id: &str) -> Vec<String> {
        let data = self
            .gql_ok(
                &session.token,
                "query($id: ID!) { lead(id: $id) { deliveries { id } } }",
                json!({ "id": lead_id }),
            )
            .await;
        data["lead"]["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Opens a `deliveryUpdates` subscription as `session`.
    pub async fn subscribe_deliveries(&self, session: &Session) -> Subscription {
        Subscription::open(
            &self.base,
            &session.token,
            "subscription { deliveryUpdates { status attempt delivery { id status } } }",
        )
        .await
    }

    /// Starts a `leadrelay-worker` process on this app's database, Redis and prefix.
    pub async fn spawn_worker(&self) -> WorkerProcess {
        self.spawn_worker_with(&[]).await
    }

    /// Like [`TestApp::spawn_worker`], with extra `LEADRELAY_*` variables (lease, sweep
    /// interval, shutdown grace…).
    pub async fn spawn_worker_with(&self, env: &[(&str, &str)]) -> WorkerProcess {
        WorkerProcess::start_with(&self.database_url, &self.redis_url, &self.redis_prefix, env)
            .await
    }

    /// Counts rows of `table` in this app's database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        database::count_rows(&self.database_url, table).await
    }

    /// The value of one series of this process's `GET /metrics`, such as
    /// `leadrelay_intake_jobs_total{outcome="waiting"}`; 0 while it has none.
    pub async fn counter(&self, series: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .map_or(0, |n| n.trim().parse().expect("a count"))
    }

    /// Counts rows of `table` matching the SQL `condition` in this app's database.
    pub async fn count_where(&self, table: &str, condition: &str) -> i64 {
        database::count_where(&self.database_url, table, condition).await
    }
}

/// Path of a binary built by `cargo build --bins` next to the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A `leadrelay-worker` process, killed when dropped.
pub struct WorkerProcess {
    pub child: tokio::process::Child,
    /// Base URL of the worker's /healthz and /metrics.
    pub base: String,
}

impl WorkerProcess {
    /// Starts the worker binary on the machine's Redis and waits for its `/healthz`.
    pub async fn start(database_url: &str, redis_prefix: &str) -> Self {
        Self::start_with(database_url, &redis_url(), redis_prefix, &[]).await
    }

    /// Starts the worker binary on the Redis at `redis_url`, with extra environment
    /// variables, and waits for its `/healthz`.
    pub async fn start_with(
        database_url: &str,
        redis_url: &str,
        redis_prefix: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port().await;
        let child = tokio::process::Command::new(binary("leadrelay-worker"))
            .env("LEADRELAY_DATABASE_URL", database_url)
            .env("LEADRELAY_REDIS_URL", redis_url)
            .env("LEADRELAY_REDIS_PREFIX", redis_prefix)
            .env("LEADRELAY_BIND", format!("127.0.0.1:{port}"))
            .env("LEADRELAY_ALLOW_INSECURE_TARGETS", "true")
            .env("LEADRELAY_SECRET_KEY", SECRET_KEY)
            // Tests run in parallel against one PostgreSQL (100 connections).
            .env("LEADRELAY_DB_POOL", "4")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning leadrelay-worker");
        let worker = WorkerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        eventually("the worker's /healthz", Duration::from_secs(20), || async {
            http.get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
        worker
    }

    /// `kill -9`: the process dies at once, mid-delivery, handing nothing back.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL the worker");
        self.child.wait().await.expect("reaping the worker");
    }

    /// Sends SIGTERM (what an orchestrator sends first) and returns at once.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("the worker is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits at most `timeout` for the process to exit; returns its status.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the worker did not exit within {timeout:?}"))
            .expect("waiting for the worker")
    }
}
