//! The buyers' end: a local HTTP server that records the first arrival of every lead per
//! path, counts repeats, and answers as its path says: `/ok/…` at once, `/slow/{ms}/…`
//! after ms, `/fail/…` 503, `/hang/…` never (the worker's timeout ends it).

use anyhow::{Context, Result};
use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, State},
    http::StatusCode,
    http::Uri,
    routing::any,
};
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
    /// Each lead's first arrival, and the connection (the sender's port) it came on.
    first: HashMap<String, (Instant, u16)>,
    /// For each duplicate, the first arrival of the lead it repeated.
    repeated: Vec<(Instant, u16)>,
    /// Requests answered (any status): a hanging path answers none.
    answered: u64,
}

/// What the receiver saw: each path's log, and when each connection (by the sender's
/// port) carried its last request.
#[derive(Default)]
struct Seen {
    paths: HashMap<String, PathLog>,
    last_on: HashMap<u16, Instant>,
}

type Log = Arc<Mutex<Seen>>;

/// The first arrival of a lead that came again.
#[derive(Debug, Clone, Copy)]
pub struct Repeated {
    pub first: Instant,
    /// When the connection that carried the first copy carried its last request: the
    /// first copy's own arrival when its sender died right after.
    pub connection_last_used: Instant,
}

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

async fn receive(
    State(log): State<Log>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let path = uri.path();
    let lead_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["lead"]["id"].as_str().map(str::to_owned));
    {
        let mut log = lock(&log);
        log.last_on.insert(peer.port(), at);
        if let Some(lead_id) = lead_id {
            let entry = log.paths.entry(path.to_owned()).or_default();
            match entry.first.entry(lead_id) {
                Entry::Occupied(first) => entry.repeated.push(*first.get()),
                Entry::Vacant(first) => {
                    first.insert((at, peer.port()));
                }
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
    lock(&log)
        .paths
        .entry(path.to_owned())
        .or_default()
        .answered += 1;
    status
}

fn lock(log: &Log) -> MutexGuard<'_, Seen> {
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
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
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
            .paths
            .get(path)
            .map(|p| {
                p.first
                    .iter()
                    .map(|(id, (at, _))| (id.clone(), *at))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Repeated arrivals on `path`.
    pub fn duplicates(&self, path: &str) -> u64 {
        lock(&self.log)
            .paths
            .get(path)
            .map_or(0, |p| p.repeated.len() as u64)
    }

    /// For each repeated arrival on `path`, when the lead it repeated first arrived.
    pub fn repeated(&self, path: &str) -> Vec<Repeated> {
        let log = lock(&self.log);
        log.paths
            .get(path)
            .map(|p| {
                p.repeated
                    .iter()
                    .map(|&(first, port)| Repeated {
                        first,
                        connection_last_used: log.last_on.get(&port).copied().unwrap_or(first),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Requests answered on `path`.
    pub fn answered(&self, path: &str) -> u64 {
        lock(&self.log).paths.get(path).map_or(0, |p| p.answered)
    }

    /// Distinct leads that arrived on all of `paths` together.
    fn count(&self, paths: &[String]) -> u64 {
        let log = lock(&self.log);
        paths
            .iter()
            .filter_map(|path| log.paths.get(path))
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
