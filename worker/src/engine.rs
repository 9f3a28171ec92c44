//! Delivering one ledger row: claim it, render the body, POST it, record the attempt,
//! settle the status and publish each change.

use crate::{
    config::DeliverySettings,
    error::Error,
    events::{DeliveryEvent, EventBus},
    ids::new_id,
    outbound::{Outbound, OutboundRequest, Outcome},
    payload, secrets,
    targets::TargetPolicy,
};
use chrono::Utc;
use leadrelay_entity::{
    DeliveryStatus, Endpoint, delivery, delivery_attempt, integration, integration_header, lead,
    list,
};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use std::time::Duration;

/// The delivery engine, shared by every job of a process.
pub struct Engine {
    db: DatabaseConnection,
    events: EventBus,
    outbound: Outbound,
    settings: DeliverySettings,
}

impl Engine {
    /// An engine on the given ledger and event bus.
    pub fn new(
        db: DatabaseConnection,
        events: EventBus,
        settings: DeliverySettings,
    ) -> Result<Self, Error> {
        let outbound = Outbound::new(
            TargetPolicy::from(&settings),
            settings.extra_ca_file.as_ref(),
            &settings.dns_overrides,
        )?;
        Ok(Self {
            db,
            events,
            outbound,
            settings,
        })
    }

    /// Delivers one row. Errors are logged here: the row stays in the ledger, so nothing
    /// is lost by a failed job.
    #[tracing::instrument(skip(self))]
    pub async fn deliver(&self, delivery_id: &str) {
        if let Err(e) = self.try_deliver(delivery_id).await {
            tracing::error!(error = %e, "delivery failed inside the engine");
        }
    }

    async fn try_deliver(&self, delivery_id: &str) -> Result<(), Error> {
        let Some(delivery) = self.claim(delivery_id).await? else {
            return Ok(());
        };
        self.publish(&delivery).await;
        let (lead, list, integration, headers) = self.load(&delivery).await?;

        let body = serde_json::to_vec(&payload::lead_qualified(&lead, &list)).unwrap_or_default();
        let mut request_headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        request_headers.extend(headers.iter().map(|h| (h.name.clone(), h.value.clone())));
        let outcome = self
            .outbound
            .post(OutboundRequest {
                url: &integration.url,
                headers: &request_headers,
                body,
                timeout: Duration::from_millis(
                    u64::try_from(integration.timeout_ms).unwrap_or(10_000),
                ),
            })
            .await;

        let logged_headers: Vec<_> = request_headers
            .iter()
            .enumerate()
            .map(|(i, (name, value))| {
                // The first header is ours; every custom header value is a secret.
                let shown = if i == 0 {
                    value.clone()
                } else {
                    secrets::preview(value)
                };
                json!({ "name": name, "value": shown })
            })
            .collect();
        let settled = self
            .settle(delivery, &integration.url, logged_headers, &outcome)
            .await?;
        self.publish(&settled).await;
        Ok(())
    }

    /// Claims the row with a conditional UPDATE: only one worker wins, and a duplicate
    /// job finds nothing to do.
    async fn claim(&self, delivery_id: &str) -> Result<Option<delivery::Model>, Error> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or(chrono::Duration::seconds(30));
        let claimed = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::InFlight),
            )
            .col_expr(
                delivery::Column::AttemptCount,
                Expr::col(delivery::Column::AttemptCount).add(1),
            )
            .col_expr(delivery::Column::LeaseUntil, Expr::value(now + lease))
            .col_expr(
                delivery::Column::NextAttemptAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(delivery_id))
            .filter(
                delivery::Column::Status
                    .is_in([DeliveryStatus::Pending, DeliveryStatus::RetryScheduled]),
            )
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 0 {
            return Ok(None);
        }
        Ok(delivery::Entity::find_by_id(delivery_id)
            .one(&self.db)
            .await?)
    }

    async fn load(
        &self,
        d: &delivery::Model,
    ) -> Result<
        (
            lead::Model,
            list::Model,
            integration::Model,
            Vec<integration_header::Model>,
        ),
        Error,
    > {
        let missing = |what: &str| {
            Error::Db(sea_orm::DbErr::RecordNotFound(format!(
                "{what} of delivery {}",
                d.id
            )))
        };
        let lead = lead::Entity::find_by_id(&d.lead_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| missing("lead"))?;
        let list = list::Entity::find_by_id(&d.list_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| missing("list"))?;
        let integration = integration::Entity::find_by_id(&d.integration_id)
            .one(&self.db)
            .await?
            .ok_or_else(|| missing("integration"))?;
        let headers = integration_header::Entity::find()
            .filter(integration_header::Column::IntegrationId.eq(&integration.id))
            .order_by_asc(integration_header::Column::Position)
            .all(&self.db)
            .await?;
        Ok((lead, list, integration, headers))
    }

    /// Records the attempt and the delivery's new status in one transaction.
    async fn settle(
        &self,
        d: delivery::Model,
        url: &str,
        request_headers: Vec<serde_json::Value>,
        outcome: &Outcome,
    ) -> Result<delivery::Model, Error> {
        let status = if outcome.is_success() {
            DeliveryStatus::Delivered
        } else {
            DeliveryStatus::Error
        };
        let now = Utc::now();
        let txn = self.db.begin().await?;
        delivery_attempt::Entity::insert(delivery_attempt::ActiveModel {
            id: Set(new_id("att")),
            tenant_id: Set(d.tenant_id.clone()),
            delivery_id: Set(d.id.clone()),
            number: Set(d.attempt_count),
            endpoint: Set(Endpoint::Primary),
            url: Set(url.to_owned()),
            request_headers: Set(json!(request_headers)),
            status_code: Set(outcome.status.map(i32::from)),
            response_body: Set(outcome.body_excerpt.clone()),
            duration_ms: Set(i32::try_from(outcome.duration.as_millis()).unwrap_or(i32::MAX)),
            error_kind: Set(outcome.error_kind),
            error: Set(outcome.error.clone()),
            started_at: Set(now - chrono::Duration::from_std(outcome.duration).unwrap_or_default()),
        })
        .exec_without_returning(&txn)
        .await?;
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(status))
            .col_expr(
                delivery::Column::LastStatusCode,
                Expr::value(outcome.status.map(i32::from)),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(&d.id))
            .filter(delivery::Column::Status.eq(DeliveryStatus::InFlight))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(delivery::Model {
            status,
            last_status_code: outcome.status.map(i32::from),
            lease_until: None,
            updated_at: now,
            ..d
        })
    }

    async fn publish(&self, d: &delivery::Model) {
        self.events
            .publish(DeliveryEvent {
                tenant_id: d.tenant_id.clone(),
                delivery_id: d.id.clone(),
                list_id: d.list_id.clone(),
                integration_id: d.integration_id.clone(),
                status: d.status,
                attempt: d.attempt_count,
            })
            .await;
    }
}
