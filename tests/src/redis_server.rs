//! A private `redis-server` on a random loopback port, for tests that stop, restart or
//! flush Redis: the machine's shared Redis, and so every other test, never feels them.

use std::{process::Stdio, time::Duration};
use tokio::process::{Child, Command};

/// A `redis-server` without persistence (like the test machines'), killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        let mut server = RedisServer {
            port: crate::free_port().await,
            child: None,
        };
        server.restart().await;
        server
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL): everything in it is gone, clients see refused connections.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again, empty, on the same port (stopping it first if it runs).
    pub async fn restart(&mut self) {
        self.stop().await;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning redis-server (is it installed?)");
        self.child = Some(child);
        crate::eventually(
            &format!("redis-server on port {}", self.port),
            Duration::from_secs(10),
            || async { self.command("PING").await.ok() },
        )
        .await;
    }

    /// Empties the server's database (what a Redis restart without persistence does).
    pub async fn flushdb(&self) {
        self.command("FLUSHDB").await.expect("FLUSHDB");
    }

    async fn command(&self, name: &str) -> redis::RedisResult<String> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd(name).query_async(&mut conn).await
    }
}
