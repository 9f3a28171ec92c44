//! A lead received on a list's inbound webhook.

use crate::LeadStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub list_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub custom_fields: Json,
    pub verifications: Json,
    pub score: Option<i32>,
    /// The points behind `score`, one readable reason each (a JSON array of strings).
    pub score_reasons: Json,
    pub status: LeadStatus,
    /// Why a lead was disqualified or is a duplicate (a JSON array of strings).
    pub reasons: Json,
    /// The earlier lead a DUPLICATE repeats.
    pub duplicate_of: Option<String>,
    pub is_test: bool,
    pub source_ip: Option<String>,
    pub raw_body: String,
    pub created_at: DateTimeUtc,
    pub qualified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The list the lead came in on (the worker reads both in one query).
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
