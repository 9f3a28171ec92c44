//! A real HTTP (or HTTPS) receiver on a random loopback port that records every request
//! and answers as scripted.

use crate::tls::TlsListener;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::any,
};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{net::TcpListener, task::JoinHandle};

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
    headers: Vec<(String, String)>,
    delay: Duration,
    /// Requests being answered now, and the most there ever were at once.
    active: usize,
    max_active: usize,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    scheme: &'static str,
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
) -> Response {
    let (response, delay) = {
        let mut script = state.lock().expect("receiver state");
        script.requests.push(Received {
            path: uri.path().to_owned(),
            headers,
            body,
            at: Instant::now(),
        });
        let mut response = (
            StatusCode::from_u16(script.status).unwrap_or(StatusCode::OK),
            script.body.clone(),
        )
            .into_response();
        for (name, value) in &script.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            response.headers_mut().insert(
                name,
                HeaderValue::from_str(value).expect("a valid header value"),
            );
        }
        script.active += 1;
        script.max_active = script.max_active.max(script.active);
        (response, script.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    state.lock().expect("receiver state").active -= 1;
    response
}

/// The script of a new receiver (200 `{"ok":true}`) and its router.
fn script_and_router() -> (Arc<Mutex<Script>>, Router) {
    let state = Arc::new(Mutex::new(Script {
        status: 200,
        body: r#"{"ok":true}"#.into(),
        ..Script::default()
    }));
    let router = Router::new()
        .fallback(any(record))
        .with_state(state.clone());
    (state, router)
}

impl Receiver {
    /// An http receiver answering 200 `{"ok":true}`.
    pub async fn start() -> Self {
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        Self::serve(tcp, "http").await
    }

    /// An https receiver answering 200 `{"ok":true}` with the certificate of `tls` (see
    /// [`crate::tls::TestCa::server_config`]).
    pub async fn start_https(tls: Arc<rustls::ServerConfig>) -> Self {
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        Self::serve(
            TlsListener {
                tcp,
                acceptor: tls.into(),
            },
            "https",
        )
        .await
    }

    async fn serve<L>(listener: L, scheme: &'static str) -> Self
    where
        L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    {
        let addr = listener.local_addr().expect("addr");
        let (state, router) = script_and_router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            addr,
            scheme,
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

    /// Answers every request with a redirect: `status` and `Location: location`.
    pub fn redirect_to(&self, status: u16, location: &str) {
        let mut script = self.state.lock().expect("receiver state");
        script.status = status;
        script.body = String::new();
        script.headers = vec![("location".to_owned(), location.to_owned())];
    }

    /// Adds a header to every answer from now on (e.g. `Retry-After`).
    pub fn with_header(&self, name: &str, value: &str) {
        let mut script = self.state.lock().expect("receiver state");
        script.headers.push((name.to_owned(), value.to_owned()));
    }

    /// The most requests the receiver was answering at the same time.
    pub fn max_concurrent(&self) -> usize {
        self.state.lock().expect("receiver state").max_active
    }

    /// Starts counting [`Receiver::max_concurrent`] again from the requests being
    /// answered now.
    pub fn restart_max_concurrent(&self) {
        let mut script = self.state.lock().expect("receiver state");
        script.max_active = script.active;
    }

    /// Answers only after `delay` (a slow or hanging receiver).
    pub fn delay_by(&self, delay: Duration) {
        self.state.lock().expect("receiver state").delay = delay;
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The URL of `path` on this receiver reached by the name `host` (which the api must
    /// resolve to 127.0.0.1, e.g. with `--dns-override`).
    pub fn url_at(&self, host: &str, path: &str) -> String {
        format!("{}://{host}:{}{path}", self.scheme, self.addr.port())
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
