//! `sendTestLead`: a sample lead (the caller's, or a realistic built-in one) sent to one
//! integration through the same queue and worker as real leads. The lead and its
//! delivery are marked `isTest`; the integration's filter and active flag, the list's
//! rules and duplicate detection are bypassed, so the customer sees how the integration
//! answers before going live.

use crate::{
    auth::{RequireRole, auth, state},
    deliveries::Delivery,
    error::{ApiError, GqlResult},
    intake, integrations,
};
use async_graphql::{Context, ID, Json, Object};
use leadrelay_entity::{LeadStatus, Role, delivery, lead};
use leadrelay_worker::DeliveryEvent;
use sea_orm::{EntityTrait, TransactionTrait};
use serde_json::{Value, json};

/// The lead sent when no sample is given: complete, valid and realistic.
fn built_in_sample() -> Value {
    json!({
        "name": "Maria Silva",
        "email": "maria.silva@example.com",
        "phone": "(11) 98765-4321",
        "company": "Solar Verde Ltda",
        "cnpj": "11.222.333/0001-81",
        "state": "SP",
        "city": "São Paulo",
        "utm_source": "leadrelay_test",
        "message": "Test lead sent from LeadRelay",
    })
}

/// `sendTestLead`.
#[derive(Default)]
pub struct TestLeadMutation;

#[Object]
impl TestLeadMutation {
    /// Sends a test lead built from `sample` (lead fields, as an inbound post would
    /// carry them; a realistic one when omitted) to the integration, whatever its filter,
    /// active flag and list rules say. Returns its delivery, marked `isTest`.
    #[graphql(guard = "RequireRole(Role::Admin)")]
    async fn send_test_lead(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        sample: Option<Json<Value>>,
    ) -> GqlResult<Delivery> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let (integration, list) =
            integrations::with_list(&app.db, &auth.tenant_id, &integration_id).await?;
        let sample = sample.map_or_else(built_in_sample, |s| s.0);
        let sample = intake::sample_lead(app, &list, sample, None).await?;
        let lead = lead::Model {
            is_test: true,
            status: LeadStatus::Qualified,
            reasons: json!([]),
            qualified_at: Some(sample.created_at),
            ..sample
        };
        let txn = app.db.begin().await?;
        let jobs = intake::insert_lead(&txn, &lead, &[&integration]).await?;
        let row = delivery::Entity::find_by_id(jobs[0].delivery_id.as_str())
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::internal("the test delivery", "not found after insert"))?;
        txn.commit().await?;
        app.events.publish(DeliveryEvent::new(&row, 0)).await;
        if let Err(e) = app.queue.push(jobs).await {
            // The row is PENDING in the ledger; the sweeper sends it.
            tracing::warn!(error = %e, "enqueueing a test delivery");
        }
        Ok(row.into())
    }
}
