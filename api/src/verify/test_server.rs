//! A real HTTP server on a random loopback port for the lookup clients' tests: it
//! answers each request as its script says (status, JSON body, delay) and records what
//! it was asked.

use axum::{Router, http::Uri, response::IntoResponse};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{net::TcpListener, task::JoinHandle};

/// The answer to one request: status, body and how long to wait before it.
pub type Answer = (u16, String, Duration);

/// The server; stops when dropped.
pub struct TestServer {
    pub base: String,
    asked: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Serves `script(path and query)` for every request.
    pub async fn start(script: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(script);
        let recorded = asked.clone();
        let router = Router::new().fallback(move |uri: Uri| {
            let script = script.clone();
            let recorded = recorded.clone();
            async move {
                let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
                recorded.lock().expect("asked").push(target.clone());
                let (status, body, delay) = script(target.as_str());
                tokio::time::sleep(delay).await;
                let status = axum::http::StatusCode::from_u16(status).expect("status");
                (
                    status,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base, asked, task }
    }

    /// Every request's path and query so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("asked").clone()
    }
}
