//! Enumerations stored as strings, so SQLite and PostgreSQL hold the same values.
//! They double as GraphQL enums (the names in ARCHITECTURE §9).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A user's role within a tenant.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    #[sea_orm(string_value = "OWNER")]
    Owner,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "MEMBER")]
    Member,
}

/// What qualification decided for a lead.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    #[sea_orm(string_value = "QUALIFIED")]
    Qualified,
    #[sea_orm(string_value = "DISQUALIFIED")]
    Disqualified,
    #[sea_orm(string_value = "DUPLICATE")]
    Duplicate,
}

/// The kind of outbound integration.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntegrationKind {
    /// A generic HTTPS webhook.
    #[sea_orm(string_value = "WEBHOOK")]
    Webhook,
    /// HubSpot CRM: the contact is created or updated by email (private app token).
    #[sea_orm(string_value = "HUBSPOT")]
    Hubspot,
    /// Pipedrive CRM: a person (API v2), optionally with a lead linked to it.
    #[sea_orm(string_value = "PIPEDRIVE")]
    Pipedrive,
    /// A Zapier catch hook (`https://hooks.zapier.com/hooks/catch/…`): a flat JSON body.
    #[sea_orm(string_value = "ZAPIER")]
    Zapier,
    /// A Make custom webhook (`https://hook.eu1.make.com/…`): a flat JSON body.
    #[sea_orm(string_value = "MAKE")]
    Make,
    /// An n8n Webhook node (`https://…/webhook/…`): a flat JSON body.
    #[sea_orm(string_value = "N8N")]
    #[graphql(name = "N8N")]
    N8n,
}

/// Delivery state machine (ARCHITECTURE §4).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "IN_FLIGHT")]
    InFlight,
    #[sea_orm(string_value = "RETRY_SCHEDULED")]
    RetryScheduled,
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "ERROR")]
    Error,
}

/// Which of an integration's URLs an attempt went to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Endpoint {
    #[sea_orm(string_value = "PRIMARY")]
    Primary,
    #[sea_orm(string_value = "FALLBACK")]
    Fallback,
}

/// Why an attempt did not get a 2xx.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptErrorKind {
    #[sea_orm(string_value = "TIMEOUT")]
    Timeout,
    #[sea_orm(string_value = "CONNECT")]
    Connect,
    #[sea_orm(string_value = "DNS")]
    Dns,
    #[sea_orm(string_value = "TLS")]
    Tls,
    #[sea_orm(string_value = "BLOCKED")]
    Blocked,
    #[sea_orm(string_value = "HTTP")]
    Http,
}
