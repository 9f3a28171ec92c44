//! Leads as the API shows them.

use crate::{
    auth::{auth, state},
    deliveries::Delivery,
    error::GqlResult,
    lists::{self, List},
    tenancy::{find_for_tenant, scoped},
};
use async_graphql::{ComplexObject, Context, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use leadrelay_entity::{LeadStatus, delivery, lead};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};

/// A received lead.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Lead {
    pub id: ID,
    pub status: LeadStatus,
    pub score: Option<i32>,
    /// The points behind `score`, e.g. `"email valid: +30"`.
    pub score_reasons: Vec<String>,
    /// Why the lead was disqualified, or which lead it repeats; empty when qualified.
    pub reasons: Vec<String>,
    /// The earlier lead a DUPLICATE repeats.
    pub duplicate_of: Option<ID>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub company: Option<String>,
    pub verifications: Json<serde_json::Value>,
    pub custom_fields: Json<serde_json::Value>,
    pub is_test: bool,
    pub source_ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub qualified_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub tenant_id: String,
    #[graphql(skip)]
    pub list_id: String,
}

impl From<lead::Model> for Lead {
    fn from(m: lead::Model) -> Self {
        Self {
            id: m.id.into(),
            status: m.status,
            score: m.score,
            score_reasons: serde_json::from_value(m.score_reasons).unwrap_or_default(),
            reasons: serde_json::from_value(m.reasons).unwrap_or_default(),
            duplicate_of: m.duplicate_of.map(ID::from),
            email: m.email,
            phone: m.phone,
            name: m.name,
            company: m.company,
            verifications: Json(m.verifications),
            custom_fields: Json(m.custom_fields),
            is_test: m.is_test,
            source_ip: m.source_ip,
            created_at: m.created_at,
            qualified_at: m.qualified_at,
            tenant_id: m.tenant_id,
            list_id: m.list_id,
        }
    }
}

#[ComplexObject]
impl Lead {
    /// The list the lead arrived on.
    async fn list(&self, ctx: &Context<'_>) -> GqlResult<List> {
        Ok(lists::load(ctx, &self.tenant_id, &self.list_id).await?)
    }

    /// Where the lead was sent, one delivery per integration.
    async fn deliveries(&self, ctx: &Context<'_>) -> GqlResult<Vec<Delivery>> {
        let rows = scoped::<delivery::Entity>(&self.tenant_id)
            .filter(delivery::Column::LeadId.eq(self.id.as_str()))
            .order_by_asc(delivery::Column::Id)
            .all(&state(ctx).db)
            .await?;
        Ok(rows.into_iter().map(Delivery::from).collect())
    }
}

/// `lead`.
#[derive(Default)]
pub struct LeadQuery;

#[Object]
impl LeadQuery {
    /// One lead, or null when it does not exist for this tenant.
    async fn lead(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Lead>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        Ok(
            find_for_tenant::<lead::Entity>(&app.db, &auth.tenant_id, &id)
                .await?
                .map(Lead::from),
        )
    }
}

/// Loads a lead of the caller's tenant (for other modules' resolvers).
pub async fn load(ctx: &Context<'_>, tenant_id: &str, id: &str) -> crate::error::ApiResult<Lead> {
    Ok(
        crate::tenancy::get_for_tenant::<lead::Entity>(&state(ctx).db, tenant_id, id)
            .await?
            .into(),
    )
}
