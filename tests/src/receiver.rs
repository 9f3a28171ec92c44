//! A real HTTP receiver on a random loopback port that records every request and answers
//! as scripted.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    routing::any,
};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::task::JoinHandle;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Script {
    requests: Vec<Received>,
    status: u16,
    body: String,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    state: Arc<Mutex<Script>>,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(state): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let mut script = state.lock().expect("receiver state");
    script.requests.push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
        at: Instant::now(),
    });
    (
        StatusCode::from_u16(script.status).unwrap_or(StatusCode::OK),
        script.body.clone(),
    )
}

impl Receiver {
    /// A receiver answering 200 `{"ok":true}`.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Script {
            status: 200,
            body: r#"{"ok":true}"#.into(),
            ..Script::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .fallback(any(record))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            state,
            server,
        }
    }

    /// Changes the answer to `status` with `body`.
    pub fn respond_with(&self, status: u16, body: &str) {
        let mut script = self.state.lock().expect("receiver state");
        script.status = status;
        script.body = body.to_owned();
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").requests.clone()
    }

    /// Waits until at least `n` requests arrived (at most `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        crate::eventually(
            &format!("{n} request(s) at the receiver"),
            timeout,
            || async {
                let got = self.requests();
                (got.len() >= n).then_some(got)
            },
        )
        .await
    }
}
