//! An outbound destination of a list's qualified leads.

use crate::IntegrationKind;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub list_id: String,
    pub name: String,
    pub kind: IntegrationKind,
    pub url: String,
    pub fallback_url: Option<String>,
    pub active: bool,
    pub timeout_ms: i32,
    pub max_in_flight: i32,
    /// The current `whsec_` secret that signs requests.
    pub signing_secret: String,
    /// The secret before the last rotation, still signing until `previous_secret_expires_at`.
    pub previous_signing_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Pause the integration after this many consecutive failed deliveries (None: never).
    pub auto_pause_after: Option<i32>,
    pub consecutive_failures: i32,
    pub last_success_at: Option<DateTimeUtc>,
    pub last_failure_at: Option<DateTimeUtc>,
    /// Why the integration was paused automatically, if it was.
    pub paused_reason: Option<String>,
    /// The dispatch filter (`leadrelay_worker::filter::Filter` as JSON); none: every lead.
    pub filter: Option<Json>,
    /// The field mapping (`leadrelay_worker::mapping::Mapping` as JSON); none: the default
    /// `lead.qualified` body.
    pub mapping: Option<Json>,
    /// Settings of a preset kind (`leadrelay_worker::preset::Settings` as JSON, e.g.
    /// Pipedrive's `create_lead`); none: its defaults.
    pub settings: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The list whose qualified leads the integration receives.
    #[sea_orm(
        belongs_to = "super::list::Entity",
        from = "Column::ListId",
        to = "super::list::Column::Id"
    )]
    List,
}

impl Related<super::list::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::List.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
