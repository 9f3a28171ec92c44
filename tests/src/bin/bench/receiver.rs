//! The buyers' end: a local HTTP server that records the first arrival of every lead per
//! path, counts repeats, and answers as its path says: `/ok/…` at once, `/slow/{ms}/…`
//! after ms, `/fail/…` 503, `/hang/…` never (the worker's timeout ends it).

use anyhow::{Context, Result};
use axum::{Router, body::Bytes, extract::State, http::StatusCode, http::Uri, routing::any};
use indicatif::ProgressBar;
use std::{
    collections::{HashMap, hash_map::Entry},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, task::JoinHandle};

/// What arrived on one path. Each integration has its own path, so a lead arriving there
/// twice is the same delivery (the same `webhook-id`) delivered twice: a duplicate.
#[derive(Default)]
struct PathLog {
    first: HashMap<String, Instant>,
    /// For each duplicate, the first arrival of the lead it repeated.
    repeated: Vec<Instant>,
    /// Requests answered (any status): a hanging path answers none.
    answered: u64,
}

type Log = Arc<Mutex<HashMap<String, PathLog>>>;

/// The receiver; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    log: Log,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(log): State<Log>, uri: Uri, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let path = uri.path();
    let lead_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["lead"]["id"].as_str().map(str::to_owned));
    if let Some(lead_id) = lead_id {
        let mut log = lock(&log);
        let entry = log.entry(path.to_owned()).or_default();
        match entry.first.entry(lead_id) {
            Entry::Occupied(first) => entry.repeated.push(*first.get()),
            Entry::Vacant(first) => {
                first.insert(at);
            }
        }
    }
    let mut parts = path.trim_start_matches('/').split('/');
    let status = match parts.next() {
        Some("ok") => StatusCode::OK,
        Some("slow") => {
            let ms = parts.next().and_then(|ms| ms.parse().ok()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        Some("fail") => StatusCode::SERVICE_UNAVAILABLE,
        Some("hang") => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK
        }
        _ => StatusCode::NOT_FOUND,
    };
    lock(&log).entry(path.to_owned()).or_default().answered += 1;
    status
}

fn lock(log: &Log) -> MutexGuard<'_, HashMap<String, PathLog>> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Receiver {
    /// Listens on a random loopback port.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the receiver")?;
        let addr = listener.local_addr()?;
        let log = Log::default();
        let router = Router::new().fallback(any(receive)).with_state(log.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Receiver { addr, log, server })
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The first arrival of each lead on `path`.
    pub fn arrivals(&self, path: &str) -> HashMap<String, Instant> {
        lock(&self.log)
            .get(path)
            .map(|p| p.first.clone())
            .unwrap_or_default()
    }

    /// Repeated arrivals on `path`.
    pub fn duplicates(&self, path: &str) -> u64 {
        lock(&self.log)
            .get(path)
            .map_or(0, |p| p.repeated.len() as u64)
    }

    /// For each repeated arrival on `path`, when the lead it repeated first arrived.
    pub fn repeated(&self, path: &str) -> Vec<Instant> {
        lock(&self.log)
            .get(path)
            .map(|p| p.repeated.clone())
            .unwrap_or_default()
    }

    /// Requests answered on `path`.
    pub fn answered(&self, path: &str) -> u64 {
        lock(&self.log).get(path).map_or(0, |p| p.answered)
    }

    /// Distinct leads that arrived on all of `paths` together.
    fn count(&self, paths: &[String]) -> u64 {
        let log = lock(&self.log);
        paths
            .iter()
            .filter_map(|path| log.get(path))
            .map(|p| p.first.len() as u64)
            .sum()
    }

    /// Polls until `expected` distinct (path, lead) arrivals are in or `timeout` passes.
    pub async fn drain(
        &self,
        paths: &[String],
        expected: u64,
        timeout: Duration,
        bar: &ProgressBar,
    ) {
        self.wait_for(|r| r.count(paths), expected, timeout, bar)
            .await;
    }

    /// Polls until `count` reaches `expected` or `timeout` passes.
    pub async fn wait_for(
        &self,
        count: impl Fn(&Self) -> u64,
        expected: u64,
        timeout: Duration,
        bar: &ProgressBar,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = count(self);
            bar.set_position(got);
            if got >= expected || Instant::now() >= deadline {
                bar.finish_and_clear();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
