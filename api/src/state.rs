//! The one shared state, cloned into handlers and the GraphQL context.

use crate::{auth::Jwt, client_ip::TrustedProxies, verify::Lookups};
use leadrelay_worker::{EventBus, Queue, targets::TargetPolicy};
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Pool, queue, event bus and the settings handlers need.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub queue: Queue,
    pub events: EventBus,
    pub redis: Option<ConnectionManager>,
    pub jwt: Arc<Jwt>,
    pub targets: TargetPolicy,
    /// Base of `inboundUrl`, without a trailing slash.
    pub public_url: String,
    /// Inbound token buckets of the lists with a rate limit.
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Seals and opens integration header values.
    pub secret_key: leadrelay_worker::secrets::SecretKey,
    /// The configured verification lookups and their caches.
    pub lookups: Arc<Lookups>,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Intake's copies of lists with their integrations, by inbound token.
    pub lists: crate::list_cache::ListCache,
}
