//! Live events (ARCHITECTURE §6): every delivery state change, and integrations pausing
//! themselves, are published per tenant, over
//! Redis pub/sub in production so any api process sees any worker's events, or over an
//! in-process broadcast in embedded mode.

use futures::StreamExt;
use leadrelay_entity::DeliveryStatus;
use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::broadcast;

/// One delivery state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryEvent {
    pub tenant_id: String,
    pub delivery_id: String,
    pub list_id: String,
    pub integration_id: String,
    pub status: DeliveryStatus,
    /// The delivery's attempt count when the event happened.
    pub attempt: i32,
}

impl DeliveryEvent {
    /// The event for a delivery row in its current state; `attempt` is the attempt the
    /// change belongs to (the one in flight, or the last one made).
    pub fn new(d: &leadrelay_entity::delivery::Model, attempt: i32) -> Self {
        Self {
            tenant_id: d.tenant_id.clone(),
            delivery_id: d.id.clone(),
            list_id: d.list_id.clone(),
            integration_id: d.integration_id.clone(),
            status: d.status,
            attempt,
        }
    }
}

/// An integration that changed state by itself (paused after consecutive failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationEvent {
    pub tenant_id: String,
    pub integration_id: String,
    pub list_id: String,
    pub active: bool,
    pub reason: Option<String>,
}

/// Everything subscribers are told about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Delivery(DeliveryEvent),
    Integration(IntegrationEvent),
}

impl Event {
    fn tenant_id(&self) -> &str {
        match self {
            Event::Delivery(e) => &e.tenant_id,
            Event::Integration(e) => &e.tenant_id,
        }
    }
}

impl From<DeliveryEvent> for Event {
    fn from(e: DeliveryEvent) -> Self {
        Event::Delivery(e)
    }
}

impl From<IntegrationEvent> for Event {
    fn from(e: IntegrationEvent) -> Self {
        Event::Integration(e)
    }
}

/// Publishes events and hands out local subscriptions.
#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<Event>,
    redis: Option<(ConnectionManager, String)>,
}

impl EventBus {
    /// An in-process bus (embedded mode).
    pub fn local() -> Self {
        Self {
            local: broadcast::channel(4096).0,
            redis: None,
        }
    }

    /// A bus on Redis channels `{prefix}:events:{tenant}`. Local subscribers see events
    /// only once [`EventBus::relay_from_redis`] runs.
    pub fn redis(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            local: broadcast::channel(4096).0,
            redis: Some((conn, prefix.to_owned())),
        }
    }

    /// Publishes an event. A lost event costs a live update only, never a delivery (the
    /// ledger holds the state), so failures are logged, not returned.
    pub async fn publish(&self, event: impl Into<Event>) {
        let event = event.into();
        match &self.redis {
            None => {
                let _ = self.local.send(event);
            }
            Some((conn, prefix)) => {
                let channel = format!("{prefix}:events:{}", event.tenant_id());
                let payload = match serde_json::to_string(&event) {
                    Ok(p) => p,
                    Err(e) => return tracing::error!(error = %e, "encoding an event"),
                };
                if let Err(e) = conn.clone().publish::<_, _, ()>(&channel, payload).await {
                    tracing::warn!(error = %e, %channel, "publishing an event");
                }
            }
        }
    }

    /// Every event this process sees from now on, as a stream (a subscriber that falls
    /// far behind skips what it missed: the ledger still has the state).
    pub fn stream(&self) -> impl futures::Stream<Item = Event> + Send + use<> {
        futures::stream::unfold(self.local.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Forwards this installation's Redis events to local subscribers, reconnecting when
    /// the connection drops. Runs until the process ends.
    pub async fn relay_from_redis(self, client: redis::Client) {
        let Some((_, prefix)) = &self.redis else {
            return;
        };
        let (pattern, local) = (format!("{prefix}:events:*"), self.local.clone());
        subscribe_forever(client, pattern, "delivery events", move |msg| {
            let Ok(payload) = msg.get_payload::<String>() else {
                return;
            };
            if let Ok(event) = serde_json::from_str::<Event>(&payload) {
                let _ = local.send(event);
            }
        })
        .await;
    }
}

/// Calls `each` with every message of the Redis channels matching `pattern` (a glob),
/// resubscribing half a second after the connection drops; runs until the task ends.
/// `what` names the subscription in the logs.
pub async fn subscribe_forever(
    client: redis::Client,
    pattern: String,
    what: &'static str,
    mut each: impl FnMut(redis::Msg) + Send,
) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                Ok(()) => {
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        each(msg);
                    }
                    tracing::warn!(what, "redis subscription ended; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, what, "subscribing on redis"),
            },
            Err(e) => tracing::warn!(error = %e, what, "connecting to redis to subscribe"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
