//! A worker process's heartbeat, so readiness can report live workers.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub started_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    /// How many of the worker's slots one integration may hold; NULL when it does not say.
    pub integration_share: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
