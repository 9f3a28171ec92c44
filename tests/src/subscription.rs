//! A graphql-transport-ws client for `deliveryUpdates`.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// An open subscription.
pub struct Subscription {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Why a subscription could not be opened.
#[derive(Debug)]
pub struct Refused(pub String);

impl Subscription {
    /// Connects to `{base}/graphql/ws`, authenticates with `token` and subscribes.
    pub async fn open(base: &str, token: &str, query: &str) -> Self {
        Self::try_open(base, token, query)
            .await
            .expect("subscription accepted")
    }

    /// Like [`Subscription::open`] but returns the refusal instead of panicking.
    pub async fn try_open(base: &str, token: &str, query: &str) -> Result<Self, Refused> {
        let url = format!("{}/graphql/ws", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut socket, _) = connect_async(request).await.expect("ws connect");
        let send = |v: Value| Message::Text(v.to_string().into());
        socket
            .send(send(
                json!({ "type": "connection_init", "payload": { "token": token } }),
            ))
            .await
            .expect("init");
        let mut subscription = Subscription { socket };
        match subscription.next_message(Duration::from_secs(10)).await {
            Some(m) if m["type"] == "connection_ack" => {}
            other => return Err(Refused(format!("{other:?}"))),
        }
        subscription
            .socket
            .send(send(
                json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
            ))
            .await
            .expect("subscribe");
        // The server answers a ping after it has taken the subscribe message, so events
        // that happen after this returns reach the subscriber.
        subscription
            .socket
            .send(send(json!({ "type": "ping" })))
            .await
            .expect("ping");
        match subscription.next_message(Duration::from_secs(10)).await {
            Some(m) if m["type"] == "pong" => Ok(subscription),
            other => Err(Refused(format!("{other:?}"))),
        }
    }

    async fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).ok()?;
                    if value["type"] == "ping" && value["payload"].is_null() {
                        let pong = Message::Text(json!({ "type": "pong" }).to_string().into());
                        self.socket.send(pong).await.ok()?;
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The statuses of `deliveryUpdates` events up to and including `last`, asserting each
    /// is about `delivery_id`; panics when no event arrives within 20 s of the previous one.
    pub async fn delivery_statuses_until(&mut self, delivery_id: &str, last: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while seen.last().map(String::as_str) != Some(last) {
            let data = self
                .next_data(Duration::from_secs(20))
                .await
                .unwrap_or_else(|| panic!("no event after {seen:?}"));
            let event = &data["deliveryUpdates"];
            assert_eq!(
                event["delivery"]["id"], delivery_id,
                "an event of another delivery: {event}"
            );
            seen.push(event["status"].as_str().expect("a status").to_owned());
        }
        seen
    }

    /// The next `data` payload, or None when nothing arrives within `timeout`.
    pub async fn next_data(&mut self, timeout: Duration) -> Option<Value> {
        let message = self.next_message(timeout).await?;
        assert_eq!(message["type"], "next", "unexpected message: {message}");
        Some(message["payload"]["data"].clone())
    }
}
