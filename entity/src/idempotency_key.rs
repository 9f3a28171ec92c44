//! The first answer to an inbound POST carrying an `Idempotency-Key`, replayed to retries
//! of the same key on the same list for 24 hours.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub list_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The JSON body of the first answer.
    pub answer: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
