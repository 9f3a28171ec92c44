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
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
