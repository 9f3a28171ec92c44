//! One lead going to one integration: the ledger row the worker claims.

use crate::{DeliveryStatus, Endpoint};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub lead_id: String,
    pub list_id: String,
    pub integration_id: String,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTimeUtc>,
    pub lease_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub is_test: bool,
    /// The endpoint the current ladder runs on.
    pub endpoint: Endpoint,
    /// Attempts made on the current ladder (reset by failover and by a resend).
    pub ladder_attempts: i32,
    pub delivered_at: Option<DateTimeUtc>,
    /// What the earlier requests of a several-request delivery produced (e.g. the
    /// Pipedrive person a lead is linked to), so a retry or a resend carries on after
    /// them instead of repeating them; cleared once delivered.
    pub progress: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The integration the row goes to (the worker reads both in one query).
    #[sea_orm(
        belongs_to = "super::integration::Entity",
        from = "Column::IntegrationId",
        to = "super::integration::Column::Id"
    )]
    Integration,
    /// The lead it delivers.
    #[sea_orm(
        belongs_to = "super::lead::Entity",
        from = "Column::LeadId",
        to = "super::lead::Column::Id"
    )]
    Lead,
    /// The list the lead came in on.
    #[sea_orm(
        belongs_to = "super::list::Entity",
        from = "Column::ListId",
        to = "super::list::Column::Id"
    )]
    List,
}

impl Related<super::integration::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Integration.def()
    }
}

impl Related<super::lead::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Lead.def()
    }
}

impl Related<super::list::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::List.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
