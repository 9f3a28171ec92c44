//! One HTTP attempt of a delivery, as the customer sees it in the log.

use crate::{AttemptErrorKind, Endpoint};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub delivery_id: String,
    pub number: i32,
    pub endpoint: Endpoint,
    pub url: String,
    /// `[{"name": …, "value": …}]` with secret values already redacted.
    pub request_headers: Json,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error_kind: Option<AttemptErrorKind>,
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
