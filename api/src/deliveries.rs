//! Deliveries and their attempts: the log a customer reads, and the live stream of
//! delivery state changes.

use crate::{
    auth::{RequireRole, auth, state, subscriber},
    error::{ApiError, ApiResult, GqlError, GqlResult},
    integrations::{self, Header, Integration},
    leads::{self, Lead},
    pagination::{Page, paginate},
    state::AppState,
    tenancy::{find_for_tenant, get_for_tenant, parse_id, scoped, scoped_update},
};
use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use leadrelay_entity::{
    AttemptErrorKind, DeliveryStatus, Endpoint, Role, delivery, delivery_attempt, integration, list,
};
use leadrelay_worker::{DeliverLead, DeliveryEvent as BusEvent, Event, engine};
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder, sea_query::Expr};

/// One lead going to one integration.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Delivery {
    pub id: ID,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    /// The endpoint the current ladder runs on.
    pub endpoint: Endpoint,
    pub is_test: bool,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[graphql(skip)]
    pub tenant_id: String,
    #[graphql(skip)]
    pub lead_id: String,
    #[graphql(skip)]
    pub integration_id: String,
}

impl From<delivery::Model> for Delivery {
    fn from(m: delivery::Model) -> Self {
        Self {
            id: m.id.into(),
            status: m.status,
            attempt_count: m.attempt_count,
            next_attempt_at: m.next_attempt_at,
            last_status_code: m.last_status_code,
            endpoint: m.endpoint,
            is_test: m.is_test,
            delivered_at: m.delivered_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
            tenant_id: m.tenant_id,
            lead_id: m.lead_id,
            integration_id: m.integration_id,
        }
    }
}

/// One HTTP attempt of a delivery.
#[derive(SimpleObject, Clone)]
pub struct Attempt {
    pub number: i32,
    pub endpoint: Endpoint,
    pub url: String,
    pub status_code: Option<i32>,
    /// The first 4 KiB of the receiver's answer.
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub error_kind: Option<AttemptErrorKind>,
    pub error: Option<String>,
    /// What was sent, with secret values redacted.
    pub request_headers: Vec<Header>,
    pub started_at: DateTime<Utc>,
}

impl From<delivery_attempt::Model> for Attempt {
    fn from(m: delivery_attempt::Model) -> Self {
        let request_headers = m
            .request_headers
            .as_array()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| Header {
                        name: h["name"].as_str().unwrap_or_default().to_owned(),
                        value_preview: h["value"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            number: m.number,
            endpoint: m.endpoint,
            url: m.url,
            status_code: m.status_code,
            response_body: m.response_body,
            duration_ms: m.duration_ms,
            error_kind: m.error_kind,
            error: m.error,
            request_headers,
            started_at: m.started_at,
        }
    }
}

#[ComplexObject]
impl Delivery {
    /// The lead delivered.
    async fn lead(&self, ctx: &Context<'_>) -> GqlResult<Lead> {
        Ok(leads::load(ctx, &self.tenant_id, &self.lead_id).await?)
    }

    /// The integration it goes to.
    async fn integration(&self, ctx: &Context<'_>) -> GqlResult<Integration> {
        Ok(integrations::load(ctx, &self.tenant_id, &self.integration_id).await?)
    }

    /// Every attempt, in order.
    async fn attempts(&self, ctx: &Context<'_>) -> GqlResult<Vec<Attempt>> {
        let rows = scoped::<delivery_attempt::Entity>(&self.tenant_id)
            .filter(delivery_attempt::Column::DeliveryId.eq(self.id.as_str()))
            .order_by_asc(delivery_attempt::Column::Number)
            .all(&state(ctx).db)
            .await?;
        Ok(rows.into_iter().map(Attempt::from).collect())
    }
}

/// Which deliveries to list.
#[derive(InputObject, Default)]
pub struct DeliveryFilter {
    pub list_id: Option<ID>,
    pub integration_id: Option<ID>,
    pub status: Option<Vec<DeliveryStatus>>,
    pub is_test: Option<bool>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
}

impl DeliveryFilter {
    /// The filter as a condition on deliveries (the caller scopes it to a tenant).
    fn condition(&self) -> ApiResult<Condition> {
        let mut c = Condition::all();
        if let Some(id) = &self.list_id {
            c = c.add(delivery::Column::ListId.eq(parse_id::<list::Entity>(id)?));
        }
        if let Some(id) = &self.integration_id {
            c = c.add(delivery::Column::IntegrationId.eq(parse_id::<integration::Entity>(id)?));
        }
        if let Some(statuses) = &self.status {
            c = c.add(delivery::Column::Status.is_in(statuses.clone()));
        }
        if let Some(is_test) = self.is_test {
            c = c.add(delivery::Column::IsTest.eq(is_test));
        }
        if let Some(from) = self.from {
            c = c.add(delivery::Column::CreatedAt.gte(from));
        }
        if let Some(to) = self.to {
            c = c.add(delivery::Column::CreatedAt.lt(to));
        }
        Ok(c)
    }
}

/// Deliveries a resend may restart: finished ones.
const RESENDABLE: [DeliveryStatus; 3] = [
    DeliveryStatus::Failed,
    DeliveryStatus::Error,
    DeliveryStatus::Delivered,
];

/// The answer to a bulk resend.
#[derive(SimpleObject)]
pub struct BulkResend {
    /// How many deliveries were put back in the queue.
    pub count: u64,
}

/// Puts the restarted rows in the queue and tells subscribers.
async fn enqueue_resent(app: &AppState, rows: &[delivery::Model]) {
    for row in rows {
        app.events
            .publish(BusEvent::new(row, row.attempt_count))
            .await;
    }
    let jobs = rows
        .iter()
        .map(|r| DeliverLead::due(&r.id, &r.integration_id));
    if let Err(e) = app.queue.push(jobs).await {
        // The rows are PENDING in the ledger; the sweeper sends them.
        tracing::warn!(error = %e, "enqueueing resent deliveries");
    }
}

/// `resendDelivery` and `resendDeliveries`.
#[derive(Default)]
pub struct DeliveryMutation;

#[Object]
impl DeliveryMutation {
    /// Sends a finished delivery again with the integration's current URL, headers and
    /// body format: a new ladder from the primary URL; attempt numbers continue.
    #[graphql(guard = "RequireRole(Role::Admin)")]
    async fn resend_delivery(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Delivery> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let current = get_for_tenant::<delivery::Entity>(&app.db, &auth.tenant_id, &id).await?;
        let in_progress = || {
            ApiError::Conflict(format!("the delivery is {:?} and will be attempted anyway; resend it once it has finished", current.status).to_uppercase())
        };
        if !RESENDABLE.contains(&current.status) {
            return Err(in_progress().into());
        }
        let rows = restart(
            &auth.tenant_id,
            Condition::all().add(delivery::Column::Id.eq(current.id.as_str())),
        )
        .exec_with_returning(&app.db)
        .await?;
        if rows.is_empty() {
            return Err(in_progress().into());
        }
        enqueue_resent(app, &rows).await;
        Ok(rows[0].clone().into())
    }

    /// Resends every finished delivery that matches the filter. The selection is written
    /// to the ledger in one statement, so a crash part-way loses none of them.
    #[graphql(guard = "RequireRole(Role::Admin)")]
    async fn resend_deliveries(
        &self,
        ctx: &Context<'_>,
        filter: DeliveryFilter,
    ) -> GqlResult<BulkResend> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let rows = restart(&auth.tenant_id, filter.condition()?)
            .exec_with_returning(&app.db)
            .await?;
        enqueue_resent(app, &rows).await;
        Ok(BulkResend {
            count: rows.len() as u64,
        })
    }
}

/// The UPDATE that puts finished deliveries matching `condition` back to PENDING on a
/// fresh ladder from the primary endpoint.
fn restart(tenant_id: &str, condition: Condition) -> sea_orm::UpdateMany<delivery::Entity> {
    let now = engine::now();
    scoped_update::<delivery::Entity>(tenant_id)
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::Pending),
        )
        .col_expr(delivery::Column::Endpoint, Expr::value(Endpoint::Primary))
        .col_expr(delivery::Column::LadderAttempts, Expr::value(0))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(Some(now)))
        .col_expr(
            delivery::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
        .filter(condition)
        .filter(delivery::Column::Status.is_in(RESENDABLE))
}

/// `delivery` and `deliveries`.
#[derive(Default)]
pub struct DeliveryQuery;

#[Object]
impl DeliveryQuery {
    /// One delivery, or null when it does not exist for this tenant.
    async fn delivery(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Delivery>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        Ok(
            find_for_tenant::<delivery::Entity>(&app.db, &auth.tenant_id, &id)
                .await?
                .map(Delivery::from),
        )
    }

    /// The tenant's deliveries, newest first.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        filter: Option<DeliveryFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> GqlResult<Page<Delivery>> {
        let (auth, app) = (auth(ctx)?, state(ctx));
        let select = scoped::<delivery::Entity>(&auth.tenant_id)
            .filter(filter.unwrap_or_default().condition()?);
        Ok(paginate(&app.db, select, first, after, Delivery::from).await?)
    }
}

/// A delivery state change, as subscribers see it.
#[derive(SimpleObject)]
pub struct DeliveryEvent {
    pub delivery: Delivery,
    pub status: DeliveryStatus,
    /// The delivery's attempt count when the change happened.
    pub attempt: i32,
}

/// `deliveryUpdates`.
#[derive(Default)]
pub struct DeliverySubscription;

#[Subscription]
impl DeliverySubscription {
    /// Live delivery state changes of the tenant, optionally of one list or integration.
    async fn delivery_updates(
        &self,
        ctx: &Context<'_>,
        list_id: Option<ID>,
        integration_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = DeliveryEvent> + use<>> {
        let (tenant_id, app) = subscriber(ctx, list_id.as_ref()).await?;
        if let Some(id) = &integration_id {
            get_for_tenant::<integration::Entity>(&app.db, &tenant_id, id)
                .await
                .map_err(GqlError::from)?;
        }
        let wanted = move |event: Event| {
            let Event::Delivery(e) = event else {
                return None;
            };
            let mine = e.tenant_id == tenant_id
                && list_id.as_ref().is_none_or(|id| id.as_str() == e.list_id)
                && integration_id
                    .as_ref()
                    .is_none_or(|id| id.as_str() == e.integration_id);
            mine.then_some(e)
        };
        let events = app
            .events
            .stream()
            .filter_map(move |event| std::future::ready(wanted(event)));
        Ok(events.filter_map(move |e| {
            let db = app.db.clone();
            async move {
                let row = get_for_tenant::<delivery::Entity>(&db, &e.tenant_id, &e.delivery_id)
                    .await
                    .ok()?;
                Some(DeliveryEvent {
                    delivery: row.into(),
                    status: e.status,
                    attempt: e.attempt,
                })
            }
        }))
    }
}
