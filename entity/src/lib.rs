//! sea-orm entities and enums of LeadRelay. No logic lives here: the api and the worker
//! own the rules; these types only describe the rows (ARCHITECTURE §3).

pub mod delivery;
pub mod delivery_attempt;
pub mod enums;
pub mod idempotency_key;
pub mod integration;
pub mod integration_header;
pub mod lead;
pub mod list;
pub mod membership;
pub mod tenant;
pub mod user;
pub mod worker;

pub use enums::*;
