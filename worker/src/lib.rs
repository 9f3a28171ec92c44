//! The LeadRelay delivery engine: the queue (apalis on Redis, or in-process), claiming
//! ledger rows, rendering the outbound body (default or mapped), the outbound HTTP client
//! with its target rules and resolver, and delivery events. The api decides what to
//! deliver; this crate delivers it. Dispatch filters, mappings and transforms are pure
//! modules here, so the api checks and evaluates them with the very same code.

pub mod config;
pub mod db;
pub mod engine;
pub mod error;
pub mod events;
pub mod filter;
pub mod heartbeat;
pub mod ids;
pub mod ladder;
pub mod mapping;
pub mod metrics;
pub mod outbound;
pub mod payload;
pub mod preset;
pub mod queue;
pub mod request;
pub mod resolver;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod signing;
pub mod sweeper;
pub mod targets;
pub mod transform;

pub use config::{DeliverySettings, WorkerConfig};
pub use engine::Engine;
pub use error::Error;
pub use events::{DeliveryEvent, Event, EventBus, IntegrationEvent};
pub use queue::{DeliverLead, Queue};
pub use server::run;
