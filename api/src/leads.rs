//! Leads as the API shows them.

use crate::{
    auth::{auth, state},
    deliveries::Delivery,
    error::{ApiError, ApiResult, GqlResult},
    lists::{self, List},
    pagination::{Page, paginate},
    tenancy::{find_for_tenant, parse_id, scoped},
};
use async_graphql::{ComplexObject, Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use leadrelay_entity::{LeadStatus, delivery, lead, list};
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder};

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

/// Which leads to list. Test leads (`sendTestLead`) are left out unless `isTest` asks
/// for them.
#[derive(InputObject, Default)]
pub struct LeadFilter {
    pub list_id: Option<ID>,
    pub status: Option<Vec<LeadStatus>>,
    /// true: only test leads; false or absent: only real ones.
    pub is_test: Option<bool>,
    /// Received at or after.
    pub from: Option<DateTime<Utc>>,
    /// Received before.
    pub to: Option<DateTime<Utc>>,
    /// Part of the email or phone.
    pub search: Option<String>,
}

impl LeadFilter {
    /// The filter as a condition on leads (the caller scopes it to a tenant).
    fn condition(&self) -> ApiResult<Condition> {
        let mut c = Condition::all().add(lead::Column::IsTest.eq(self.is_test.unwrap_or(false)));
        if let Some(id) = &self.list_id {
            c = c.add(lead::Column::ListId.eq(parse_id::<list::Entity>(id)?));
        }
        if let Some(statuses) = &self.status {
            c = c.add(lead::Column::Status.is_in(statuses.clone()));
        }
        if let Some(from) = self.from {
            c = c.add(lead::Column::CreatedAt.gte(from));
        }
        if let Some(to) = self.to {
            c = c.add(lead::Column::CreatedAt.lt(to));
        }
        if let Some(search) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if search.len() > 254 {
                return Err(ApiError::BadInput("search: at most 254 characters".into()));
            }
            let search = search.to_lowercase();
            c = c.add(
                Condition::any()
                    .add(lead::Column::Email.contains(&search))
                    .add(lead::Column::Phone.contains(&search)),
            );
        }
        Ok(c)
    }
}

/// `lead`.
#[derive(Default)]
pub struct LeadQuery;

#[Object]
impl LeadQuery {
    /// The tenant's leads, newest first; test leads only when the filter asks for them.
    async fn leads(
        &self,
        ctx: &Context<'_>,
        filter: Option<LeadFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Page<Lead>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let select =
            scoped::<lead::Entity>(&auth.tenant_id).filter(filter.unwrap_or_default().condition()?);
        Ok(paginate(&app.db, select, first, after, Lead::from).await?)
    }

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
