//! A lead list: one inbound webhook and its qualification rules.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lists")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub active: bool,
    #[sea_orm(unique)]
    pub inbound_token: String,
    pub default_phone_region: String,
    /// Leads scoring below this are DISQUALIFIED.
    pub min_score: i32,
    /// Verification keys that must be true (a JSON array of strings).
    pub required_checks: Json,
    /// Fields that must be present (a JSON array of strings).
    pub required_fields: Json,
    /// How far back a lead counts as the original of a new one; 0 turns dedupe off.
    pub dedupe_window_days: i32,
    /// The fields compared to find a duplicate, any one matching (a JSON array).
    pub dedupe_fields: Json,
    /// Extra field aliases, `[{"from": …, "to": …}]`, consulted before the built-in table.
    pub aliases: Json,
    /// SHA-256 (hex) of the key required in `X-API-Key`; none when not required.
    pub api_key_hash: Option<String>,
    /// Where plain HTML form posts are redirected (303) after intake.
    pub thank_you_url: Option<String>,
    /// Inbound posts allowed per minute (a token bucket per api process); none: no limit.
    pub rate_limit_per_minute: Option<i32>,
    /// Score points per check where the list differs from the defaults
    /// (`{"email_valid": 40}`); checks left out keep their default points.
    pub score_weights: Json,
    pub created_at: DateTimeUtc,
    /// Bumped by PostgreSQL on every change to the list or to what intake reads of its
    /// integrations (m0017): the api's copy of the list is current while this matches.
    pub config_version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The list's integrations (intake reads them with the list in one query).
    #[sea_orm(has_many = "super::integration::Entity")]
    Integrations,
}

impl Related<super::integration::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Integrations.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
