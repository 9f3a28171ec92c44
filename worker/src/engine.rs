//! Delivering one ledger row (ARCHITECTURE §4): claim it within the integration's
//! in-flight cap, render and sign the body, POST it, then in one transaction record the
//! attempt and move the row along the state machine; publish every change.

use crate::{
    config::DeliverySettings,
    db,
    error::Error,
    events::{DeliveryEvent, EventBus, IntegrationEvent},
    ids::new_id,
    ladder::{self, Class, Verdict},
    metrics,
    outbound::{Outbound, OutboundRequest, Outcome},
    preset,
    queue::{DeliverLead, Queue},
    request, secrets,
    targets::TargetPolicy,
};
use chrono::{DateTime, Utc};
use leadrelay_entity::{
    AttemptErrorKind, DeliveryStatus, Endpoint, delivery, delivery_attempt, integration,
    integration_header, lead, list,
};
use moka::future::Cache;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, IdenStatic, PaginatorTrait, QueryFilter, QueryOrder, QueryResult, QueryTrait,
    SelectA, SelectB, SelectC, TransactionTrait,
    sea_query::{
        Alias, Asterisk, CommonTableExpression, Expr, ExprTrait, Func, JoinType, Query,
        SelectStatement, UpdateStatement, WithClause,
    },
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// How early the queue may hand out a delayed job.
const QUEUE_PRECISION: Duration = Duration::from_secs(1);

/// How stale an integration's `last_success_at` may get: a busy integration's row is
/// written at most once a second for it, not once per delivery.
const SUCCESS_STAMP: Duration = Duration::from_secs(1);

/// The delivery engine, shared by every job of a process.
pub struct Engine {
    db: DatabaseConnection,
    events: EventBus,
    outbound: Outbound,
    queue: Queue,
    settings: DeliverySettings,
    /// Opens the integrations' sealed header values.
    secret_key: secrets::SecretKey,
    /// Rows this process has claimed and not yet settled (released on shutdown), with
    /// their integration's id.
    in_flight: Mutex<HashMap<String, String>>,
    /// Set when the process stops: settling rows no longer take on waiting ones.
    stopping: AtomicBool,
    /// Each integration's opened headers, with the integration's `updated_at` they were
    /// read under. The api replaces headers only in the transaction that stamps the
    /// integration, so an entry is current while its stamp matches the integration the
    /// claim just read.
    headers: Cache<String, (DateTime<Utc>, Headers)>,
}

/// An integration's headers in order: names and opened values.
type Headers = Arc<Vec<(String, String)>>;

/// How many integrations' headers a process keeps opened.
const HEADER_CACHE: u64 = 10_000;

/// A row this process has claimed; it leaves the in-flight set when dropped.
struct Claimed<'a> {
    engine: &'a Engine,
    delivery_id: String,
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        self.engine
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.delivery_id);
    }
}

/// A row claimed by this process, with its integration as read under the claim's lock,
/// and its lead and list: all an attempt reads, from the claim's own round trip.
type Won = Box<(
    delivery::Model,
    integration::Model,
    lead::Model,
    list::Model,
)>;

/// One attempt as the ledger records it.
#[derive(Clone, Copy)]
struct Attempted<'a> {
    url: &'a str,
    /// Our headers whole, the integration's values as previews.
    request_headers: &'a [Value],
    outcome: &'a Outcome,
    verdict: &'a Verdict,
    /// With [`Verdict::Continue`]: the delivery's progress for its next request.
    progress: Option<&'a Value>,
}

/// What a claim found.
enum Claim {
    /// The row is ours until its lease ends.
    Won(Won),
    /// The integration already has `maxInFlight` deliveries in flight: one of them takes
    /// this row on when it settles (see [`Engine::settle`]).
    Busy,
    /// Not due yet: try again after this long.
    NotDue(Duration),
    /// Nothing to do: delivered, taken by another worker, or its integration is paused.
    Nothing,
}

/// What recording an attempt found.
enum Recorded {
    /// The row was no longer under this process's lease: another worker owns it now.
    LeaseLost,
    /// Recorded; with the row its freed slot went to, if one was waiting.
    Settled(Option<Won>),
}

/// A SELECT of delivery rows, each with its integration as it is now, its lead and its
/// list, with no FROM yet: the caller names the rows' source `deliveries`. [`won`] reads
/// a row of it.
fn with_context() -> SelectStatement {
    let mut select = delivery::Entity::find()
        .find_also_related(integration::Entity)
        .find_also(delivery::Entity, lead::Entity)
        .find_also(delivery::Entity, list::Entity)
        .into_query();
    select.from_clear();
    select
}

/// The prefix of the list's columns in [`with_context`]: sea-orm's fourth, after `A_`
/// (the delivery), `B_` (its integration) and `C_` (its lead); sea-orm does not export
/// its name.
const LIST: &str = "D_";

/// A taken row with its integration, and its lead and list when the statement saw them.
type Taken = (
    delivery::Model,
    integration::Model,
    Option<(lead::Model, list::Model)>,
);

/// A row of [`with_context`]'s SELECT: none when it holds no delivery (an outer join
/// found nothing) or the integration is gone. The lead is missing when a function found
/// the row with a snapshot newer than the statement's own, and the lead was committed in
/// between: [`Engine::with_lead`] reads it then.
fn won(row: &QueryResult) -> Result<Option<Taken>, Error> {
    let delivery = delivery::Model::from_query_result_optional(row, SelectA.as_str())?;
    let integration = integration::Model::from_query_result_optional(row, SelectB.as_str())?;
    let (Some(delivery), Some(integration)) = (delivery, integration) else {
        return Ok(None);
    };
    let lead = lead::Model::from_query_result_optional(row, SelectC.as_str())?;
    let list = list::Model::from_query_result_optional(row, LIST)?;
    Ok(Some((delivery, integration, lead.zip(list))))
}

fn record_metrics(
    verdict: &Verdict,
    outcome: &Outcome,
    lead: &lead::Model,
    settled: &delivery::Model,
) {
    metrics::attempt(verdict.label(), outcome.duration);
    if verdict.is_final() {
        metrics::delivery(verdict.label());
    }
    if let Some(at) = settled.delivered_at {
        metrics::lead_to_delivered((at - lead.created_at).to_std().unwrap_or_default());
    }
}

/// Now, to the microsecond: what PostgreSQL stores, so a value read back compares equal.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The rows waiting for a slot, as SQL. Literal values, not parameters, so PostgreSQL
/// can use the partial index `ix_deliveries_waiting` that has the same predicate.
pub const WAITING: &str = "status IN ('PENDING', 'RETRY_SCHEDULED')";

/// The `deliveries` rows that hold one of their integration's slots at `now`: IN_FLIGHT
/// under a live lease (a row whose lease ran out is the sweeper's to re-enqueue).
pub fn holding_slot(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(Expr::col((delivery::Entity, delivery::Column::Status)).eq(DeliveryStatus::InFlight))
        .add(Expr::col((delivery::Entity, delivery::Column::LeaseUntil)).gt(now))
}

/// The UPDATE that moves rows IN_FLIGHT under a lease until `lease_until`; the caller
/// adds which rows.
fn take(lease_until: DateTime<Utc>, now: DateTime<Utc>) -> sea_orm::UpdateMany<delivery::Entity> {
    delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(DeliveryStatus::InFlight),
        )
        .col_expr(delivery::Column::LeaseUntil, Expr::value(lease_until))
        .col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
}

impl Engine {
    /// An engine on the given ledger, event bus and queue (for retries).
    pub fn new(
        db: DatabaseConnection,
        events: EventBus,
        queue: Queue,
        settings: DeliverySettings,
    ) -> Result<Self, Error> {
        let secret_key = settings.secret_key.clone().ok_or(Error::Config {
            setting: "LEADRELAY_SECRET_KEY",
            problem: "required: the key header values are sealed with (the api's)",
        })?;
        let outbound = Outbound::new(
            TargetPolicy::from(&settings),
            settings.extra_ca_file.as_ref(),
            &settings.dns_overrides,
        )?;
        Ok(Self {
            db,
            events,
            outbound,
            queue,
            settings,
            secret_key,
            in_flight: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            headers: Cache::new(HEADER_CACHE),
        })
    }

    /// Delivers the job's row. Errors are logged here: the row stays in the ledger, so
    /// nothing is lost by a failed job.
    #[tracing::instrument(skip_all, fields(delivery_id = %job.delivery_id))]
    pub async fn deliver(&self, job: &DeliverLead) {
        if let Err(e) = self.try_deliver(job).await {
            tracing::error!(error = %e, "delivery failed inside the engine");
        }
    }

    async fn try_deliver(&self, job: &DeliverLead) -> Result<(), Error> {
        let mut won = loop {
            match self.claim(job).await? {
                Claim::Won(won) => break won,
                // The row waits in the ledger; a settling delivery of its integration hands
                // it the slot (no polling), and the sweeper covers anything else.
                Claim::Busy => return Ok(()),
                // The queue schedules to the whole second, so a job may come up to a second
                // early: wait out the rest here rather than bounce it through the queue.
                Claim::NotDue(wait) if wait <= QUEUE_PRECISION => tokio::time::sleep(wait).await,
                Claim::NotDue(wait) => {
                    return self.queue.push_after(job.clone(), wait).await;
                }
                Claim::Nothing => return Ok(()),
            }
        };
        // Each settled attempt may hand its slot to the integration's next waiting row:
        // this job goes on with it, so a busy integration drains at full speed.
        loop {
            let (delivery, integration, lead, list) = *won;
            // Dropped when the attempt ends, or when the job is cancelled mid-attempt.
            let _claimed = self.track(&delivery.id, &integration.id);
            match self.attempt(delivery, integration, lead, list).await? {
                Some(next) => won = next,
                None => return Ok(()),
            }
        }
    }

    fn track(&self, delivery_id: &str, integration_id: &str) -> Claimed<'_> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(delivery_id.to_owned(), integration_id.to_owned());
        Claimed {
            engine: self,
            delivery_id: delivery_id.to_owned(),
        }
    }

    /// One attempt of a claimed row; returns the next row this job should deliver. A
    /// preset that takes several requests (Pipedrive's person, then its lead) sends the
    /// next one at once when one succeeds, each recorded as an attempt of its own.
    async fn attempt(
        &self,
        mut delivery: delivery::Model,
        integration: integration::Model,
        lead: lead::Model,
        list: list::Model,
    ) -> Result<Option<Won>, Error> {
        let headers = self.headers(&integration).await?;
        loop {
            self.publish(&delivery, delivery.attempt_count + 1).await;
            let request = request::prepare(
                &integration,
                delivery.endpoint,
                &lead,
                &list,
                &headers,
                &delivery.id,
                Utc::now(),
                delivery.progress.as_ref(),
            )
            .map_err(|e| Error::Client(format!("integration {}: {e}", integration.id)))?;
            for issue in &request.issues {
                tracing::warn!(delivery_id = %delivery.id, %issue, "mapped field left out of the body");
            }
            let logged_headers: Vec<_> = request
                .shown_headers()
                .into_iter()
                .map(|(name, value)| json!({ "name": name, "value": value }))
                .collect();
            let url = request.url;
            let mut outcome = self
                .outbound
                .post(OutboundRequest {
                    url: &url,
                    headers: &request.headers,
                    body: request.body,
                    timeout: Duration::from_millis(
                        u64::try_from(integration.timeout_ms).unwrap_or(10_000),
                    ),
                    keep_answer: request.step.reads_answer(),
                })
                .await;
            let answered = Instant::now();
            let reading = preset::read(&request.step, &outcome);
            if let Some(note) = reading.note {
                outcome.error_kind.get_or_insert(AttemptErrorKind::Http);
                outcome.error = Some(note);
            }
            let can_fail_over =
                delivery.endpoint == Endpoint::Primary && integration.fallback_url.is_some();
            let attempts_on_ladder = usize::try_from(delivery.ladder_attempts).unwrap_or(0) + 1;
            let (verdict, progress) = match (reading.class, reading.next) {
                (Class::Success, Some(next)) => (Verdict::Continue, Some(next)),
                (class, _) => (
                    ladder::decide_class(
                        class,
                        &outcome,
                        &self.settings.retry_ladder,
                        attempts_on_ladder,
                        can_fail_over,
                    ),
                    None,
                ),
            };
            let Some((settled, next)) = self
                .settle(
                    &delivery,
                    &integration,
                    Attempted {
                        url: &url,
                        request_headers: &logged_headers,
                        outcome: &outcome,
                        verdict: &verdict,
                        progress: progress.as_ref(),
                    },
                )
                .await?
            else {
                return Ok(None);
            };
            metrics::record_lag(answered.elapsed());
            record_metrics(&verdict, &outcome, &lead, &settled);
            if verdict == Verdict::Continue {
                // Still ours, under a fresh lease: the next request goes out now (its
                // IN_FLIGHT event is published at the top of the loop).
                delivery = settled;
                continue;
            }
            if let (DeliveryStatus::RetryScheduled, Some(at)) =
                (settled.status, settled.next_attempt_at)
            {
                let wait = (at - now()).to_std().unwrap_or(Duration::ZERO);
                self.queue
                    .push_after(DeliverLead::due(settled.id, settled.integration_id), wait)
                    .await?;
            }
            return Ok(next);
        }
    }

    /// Claims the row: takes one of its integration's in-flight slots for it, which only
    /// one worker can win; a duplicate job finds nothing to do. On PostgreSQL that is one
    /// call ([`Engine::claim_in_one`]); SQLite reads the row, then takes the slot
    /// ([`Engine::take_slot`]).
    async fn claim(&self, job: &DeliverLead) -> Result<Claim, Error> {
        // A job that names its integration is Busy before the database when the
        // integration already has its share of this process's slots: at full speed that is
        // most jobs, and for a hanging receiver all of them.
        if job
            .integration_id
            .as_deref()
            .is_some_and(|id| self.local_share_used(id))
        {
            return Ok(Claim::Busy);
        }
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            return self.claim_in_one(&job.delivery_id).await;
        }
        let now = now();
        let Some(row) = delivery::Entity::find_by_id(job.delivery_id.as_str())
            .one(&self.db)
            .await?
        else {
            return Ok(Claim::Nothing);
        };
        let leased =
            row.status == DeliveryStatus::InFlight && row.lease_until.is_some_and(|t| t > now);
        let waiting = matches!(
            row.status,
            DeliveryStatus::Pending | DeliveryStatus::RetryScheduled | DeliveryStatus::InFlight
        );
        if leased || !waiting {
            return Ok(Claim::Nothing);
        }
        if let Some(due) = row.next_attempt_at.filter(|due| *due > now) {
            return Ok(Claim::NotDue(
                (due - now).to_std().unwrap_or(Duration::ZERO),
            ));
        }
        if self.local_share_used(&row.integration_id) {
            return Ok(Claim::Busy);
        }
        // Busy, paused or taken by another: the row waits in the ledger, where a
        // settling delivery of its integration (or its reactivation) finds it.
        Ok(self
            .take_slot(&row.integration_id, Some(&row), now)
            .await?
            .map_or(Claim::Nothing, Claim::Won))
    }

    /// A claim in one call of `leadrelay_claim` (m0015), which checks the row as SQLite's
    /// read does and takes its slot under the integration's turn, returning it with its
    /// context. A row waiting but not due yet comes back as it is. Busy, paused, taken by
    /// another or finished are all nothing to do here: the row waits in the ledger.
    async fn claim_in_one(&self, delivery_id: &str) -> Result<Claim, Error> {
        let now = now();
        let claim = Func::cust("leadrelay_claim").args([
            Expr::val(delivery_id),
            Expr::val(now),
            Expr::val(now + chrono(self.settings.lease)),
        ]);
        let mut select = with_context();
        select.from_function(claim, delivery::Entity);
        let Some(row) = self
            .db
            .query_one_raw(DatabaseBackend::Postgres.build(&select))
            .await?
        else {
            return Ok(Claim::Nothing);
        };
        let Some(taken) = won(&row)? else {
            return Ok(Claim::Nothing);
        };
        if taken.0.status != DeliveryStatus::InFlight {
            return Ok(taken.0.next_attempt_at.map_or(Claim::Nothing, |due| {
                Claim::NotDue((due - now).to_std().unwrap_or(Duration::ZERO))
            }));
        }
        Ok(self
            .with_lead(Some(taken))
            .await?
            .map_or(Claim::Nothing, Claim::Won))
    }

    /// Takes one of the integration's `maxInFlight` slots for `row` (if it still has the
    /// status and `updated_at` it was read with), or with None for the integration's
    /// oldest due waiting row: the row goes IN_FLIGHT under a lease, and is returned with
    /// its integration as it is now.
    /// Nothing when the integration is busy or paused (a test row goes anyway), or the
    /// row changed meanwhile. SQLite only (one writer): PostgreSQL claims in one call
    /// ([`Engine::claim_in_one`]) and hands slots on inside the settle (`leadrelay_swap`).
    async fn take_slot(
        &self,
        integration_id: &str,
        row: Option<&delivery::Model>,
        now: DateTime<Utc>,
    ) -> Result<Option<Won>, Error> {
        let lease_until = now + chrono(self.settings.lease);
        let txn = self.db.begin().await?;
        let Some(integration) = integration::Entity::find_by_id(integration_id)
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let busy = delivery::Entity::find()
            .filter(delivery::Column::IntegrationId.eq(integration_id))
            .filter(holding_slot(now))
            .count(&txn)
            .await?;
        if busy >= u64::try_from(integration.max_in_flight).unwrap_or(1) {
            return Ok(None);
        }
        let update = take(lease_until, now);
        let taken = match row {
            Some(row) if integration.active || row.is_test => update
                .filter(delivery::Column::Id.eq(&row.id))
                .filter(delivery::Column::Status.eq(row.status))
                .filter(delivery::Column::UpdatedAt.eq(row.updated_at)),
            None if integration.active => update.filter(
                delivery::Column::Id.in_subquery(
                    Query::select()
                        .column(delivery::Column::Id)
                        .from(delivery::Entity)
                        .and_where(delivery::Column::IntegrationId.eq(integration_id))
                        .and_where(Expr::cust(WAITING))
                        .and_where(delivery::Column::NextAttemptAt.lte(now))
                        .order_by(delivery::Column::NextAttemptAt, sea_orm::Order::Asc)
                        .limit(1)
                        .to_owned(),
                ),
            ),
            _ => return Ok(None),
        }
        .exec_with_returning(&txn)
        .await?;
        txn.commit().await?;
        self.with_lead(taken.into_iter().next().map(|row| (row, integration, None)))
            .await
    }

    /// The taken row with its lead and list, read now if its statement did not see them.
    async fn with_lead(&self, taken: Option<Taken>) -> Result<Option<Won>, Error> {
        let Some((delivery, integration, context)) = taken else {
            return Ok(None);
        };
        let (lead, list) = match context {
            Some(context) => context,
            None => match lead::Entity::find_by_id(&delivery.lead_id)
                .find_also_related(list::Entity)
                .one(&self.db)
                .await?
            {
                Some((lead, Some(list))) => (lead, list),
                _ => {
                    return Err(Error::Db(sea_orm::DbErr::RecordNotFound(format!(
                        "lead or list of delivery {}",
                        delivery.id
                    ))));
                }
            },
        };
        Ok(Some(Box::new((delivery, integration, lead, list))))
    }

    /// The integration's headers, read and opened once per version of the integration.
    async fn headers(&self, integration: &integration::Model) -> Result<Headers, Error> {
        if let Some((stamp, headers)) = self.headers.get(&integration.id).await
            && stamp == integration.updated_at
        {
            return Ok(headers);
        }
        let headers: Headers = Arc::new(
            integration_header::Entity::find()
                .filter(integration_header::Column::IntegrationId.eq(&integration.id))
                .order_by_asc(integration_header::Column::Position)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|h| self.open_header(h))
                .collect::<Result<_, _>>()?,
        );
        self.headers
            .insert(
                integration.id.clone(),
                (integration.updated_at, headers.clone()),
            )
            .await;
        Ok(headers)
    }

    /// A header's name and its value, opened with the secret key.
    fn open_header(&self, h: integration_header::Model) -> Result<(String, String), Error> {
        match secrets::open_header(&self.secret_key, &h) {
            Ok(value) => Ok((h.name, value)),
            Err(source) => Err(Error::Unsealable {
                integration_id: h.integration_id,
                name: h.name,
                source,
            }),
        }
    }

    /// [`Engine::settle_once`], tried again for up to half the lease while the database
    /// fails (a dropped connection, a restarting server): the receiver has the lead, and a
    /// row left in flight would be sent again when its lease ends. A retry after a commit
    /// whose answer was lost finds the row settled already and changes nothing.
    async fn settle(
        &self,
        d: &delivery::Model,
        integration: &integration::Model,
        attempted: Attempted<'_>,
    ) -> Result<Option<(delivery::Model, Option<Won>)>, Error> {
        let deadline = tokio::time::Instant::now() + self.settings.lease / 2;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.settle_once(d, integration, &attempted).await {
                Err(Error::Db(e)) if tokio::time::Instant::now() + pause < deadline => {
                    tracing::warn!(error = %e, delivery_id = %d.id, "recording the attempt failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                settled => return settled,
            }
        }
    }

    /// Records the attempt and the row's next state together, and hands the freed slot to
    /// the integration's next waiting row (returned, claimed for this process), both in
    /// [`Engine::record`]; then publishes the outcome. None when the lease was lost
    /// meanwhile (another worker owns the row now).
    /// After [`Verdict::Continue`] the row stays in flight under a fresh lease and keeps
    /// its slot.
    async fn settle_once(
        &self,
        d: &delivery::Model,
        integration: &integration::Model,
        attempted: &Attempted<'_>,
    ) -> Result<Option<(delivery::Model, Option<Won>)>, Error> {
        let Attempted {
            url,
            request_headers,
            outcome,
            verdict,
            progress,
        } = *attempted;
        let now = now();
        let first_step = self
            .settings
            .retry_ladder
            .0
            .first()
            .copied()
            .unwrap_or(Duration::ZERO);
        let status = verdict.status();
        let (endpoint, ladder_attempts, next_attempt_at) = match verdict {
            Verdict::Failover => (Endpoint::Fallback, 0, Some(now + chrono(first_step))),
            Verdict::Retry(wait) => (d.endpoint, d.ladder_attempts + 1, Some(now + chrono(*wait))),
            // The next request starts its own ladder.
            Verdict::Continue => (d.endpoint, 0, None),
            _ => (d.endpoint, d.ladder_attempts + 1, None),
        };
        let settled = delivery::Model {
            status,
            endpoint,
            ladder_attempts,
            next_attempt_at,
            attempt_count: d.attempt_count + 1,
            lease_until: (*verdict == Verdict::Continue).then(|| now + chrono(self.settings.lease)),
            last_status_code: outcome.status.map(i32::from),
            delivered_at: (status == DeliveryStatus::Delivered).then_some(now),
            progress: match verdict {
                Verdict::Continue => progress.cloned(),
                Verdict::Delivered => None,
                _ => d.progress.clone(),
            },
            updated_at: now,
            ..d.clone()
        };
        let settle = delivery::Entity::update_many()
            .col_expr(delivery::Column::Status, Expr::value(settled.status))
            .col_expr(delivery::Column::Endpoint, Expr::value(settled.endpoint))
            .col_expr(
                delivery::Column::LadderAttempts,
                Expr::value(settled.ladder_attempts),
            )
            .col_expr(
                delivery::Column::NextAttemptAt,
                Expr::value(settled.next_attempt_at),
            )
            .col_expr(
                delivery::Column::AttemptCount,
                Expr::value(settled.attempt_count),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(settled.lease_until),
            )
            .col_expr(
                delivery::Column::Progress,
                Expr::value(settled.progress.clone()),
            )
            .col_expr(
                delivery::Column::LastStatusCode,
                Expr::value(settled.last_status_code),
            )
            .col_expr(
                delivery::Column::DeliveredAt,
                Expr::value(settled.delivered_at),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.eq(&d.id))
            .filter(delivery::Column::Status.eq(DeliveryStatus::InFlight))
            .filter(delivery::Column::UpdatedAt.eq(d.updated_at))
            .into_query();
        let attempt = delivery_attempt::ActiveModel {
            id: Set(new_id("att")),
            tenant_id: Set(d.tenant_id.clone()),
            delivery_id: Set(d.id.clone()),
            number: Set(settled.attempt_count),
            endpoint: Set(d.endpoint),
            url: Set(url.to_owned()),
            request_headers: Set(json!(request_headers)),
            status_code: Set(outcome.status.map(i32::from)),
            response_body: Set(outcome.body_excerpt.clone()),
            duration_ms: Set(i32::try_from(outcome.duration.as_millis()).unwrap_or(i32::MAX)),
            error_kind: Set(outcome.error_kind),
            error: Set(outcome.error.clone()),
            started_at: Set(now - chrono(outcome.duration)),
        };
        // A freed slot goes to the next waiting row, unless the row keeps it (Continue) or
        // the process is stopping.
        let hand_off = *verdict != Verdict::Continue && !self.stopping.load(Ordering::Relaxed);
        let next = match self
            .record(settle, attempt, &d.integration_id, now, hand_off)
            .await?
        {
            Recorded::Settled(next) => next,
            Recorded::LeaseLost => {
                tracing::warn!(delivery_id = %d.id, "lease lost before the attempt was recorded; another worker owns the row");
                return Ok(None);
            }
        };
        if *verdict == Verdict::Continue {
            // Still in flight: no slot is freed and the integration's health waits for the
            // delivery's outcome.
            return Ok(Some((settled, None)));
        }
        // The outcome is recorded: subscribers hear it before anything else happens to
        // the row (a resend right after it, say).
        self.publish(&settled, settled.attempt_count).await;
        // A test (`sendTestLead`) says nothing about the integration's live health. Kept
        // after the commit, in statements of its own, so the integration's row is never
        // locked across a round trip. It cannot undo the settle: a failure is logged.
        if !d.is_test {
            match self.record_health(integration, status, now).await {
                Ok(Some(paused)) => self.events.publish(paused).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, integration_id = %integration.id, "recording the integration's health failed");
                }
            }
        }
        Ok(Some((settled, next)))
    }

    /// Applies `settle` (an UPDATE of one in-flight row, conditional on its lease) and
    /// inserts `attempt` only if it did, atomically. On PostgreSQL that is one statement,
    /// one round trip instead of a transaction's four, which also narrows the window in
    /// which a crash after the POST sends a lead twice: `WITH settled AS (UPDATE …
    /// RETURNING …), recorded AS (INSERT … SELECT … FROM settled)`, whose result is one
    /// row per settled row. With `hand_off` it also hands the freed slot on:
    /// `leadrelay_swap` (m0012) moves the integration's oldest due waiting row in flight in
    /// the same transaction, returned with its integration. Should the answer be lost
    /// after the commit, [`Engine::settle`]'s retry finds the lease lost and that row
    /// waits out its lease, as after a crash. SQLite (one writer) commits, then takes the
    /// row as a claim would; a failure there is logged, and the sweeper finds the row.
    async fn record(
        &self,
        mut settle: UpdateStatement,
        attempt: delivery_attempt::ActiveModel,
        integration_id: &str,
        now: DateTime<Utc>,
        hand_off: bool,
    ) -> Result<Recorded, Error> {
        let (columns, values) = db::set_values(&attempt);
        let mut insert = Query::insert();
        insert.into_table(delivery_attempt::Entity).columns(columns);
        let backend = self.db.get_database_backend();
        if backend == DatabaseBackend::Postgres {
            let settled = Alias::new("settled");
            settle.returning_col(delivery::Column::Id);
            insert.select_from(
                Query::select()
                    .exprs(values)
                    .from(settled.clone())
                    .to_owned(),
            )?;
            // No lease: the function returns at once (the row keeps its slot).
            let swap = Func::cust("leadrelay_swap").args([
                Expr::col((settled.clone(), delivery::Column::Id)),
                Expr::val(integration_id),
                Expr::val(now),
                Expr::val(hand_off.then(|| now + chrono(self.settings.lease))),
            ]);
            let swapped = Alias::new("swapped");
            let per_settled = Query::select()
                .expr(Expr::col((swapped.clone(), Asterisk)))
                .from(settled.clone())
                .join_lateral(
                    JoinType::LeftJoin,
                    Query::select()
                        .column(Asterisk)
                        .from_function(swap, swapped.clone())
                        .to_owned(),
                    swapped,
                    Expr::cust("TRUE"),
                )
                .to_owned();
            let statement = WithClause::new()
                .cte(
                    CommonTableExpression::new()
                        .query(settle)
                        .table_name(settled)
                        .to_owned(),
                )
                .cte(
                    CommonTableExpression::new()
                        .query(insert)
                        .table_name(Alias::new("recorded"))
                        .to_owned(),
                )
                .to_owned()
                .query(
                    with_context()
                        .from_subquery(per_settled, delivery::Entity)
                        .to_owned(),
                );
            let rows = self.db.query_all_raw(backend.build(&statement)).await?;
            return match rows.first() {
                None => Ok(Recorded::LeaseLost),
                Some(row) => Ok(Recorded::Settled(self.with_lead(won(row)?).await?)),
            };
        }
        let txn = self.db.begin().await?;
        if txn
            .execute_raw(backend.build(&settle))
            .await?
            .rows_affected()
            == 0
        {
            return Ok(Recorded::LeaseLost);
        }
        insert.values(values)?;
        txn.execute_raw(backend.build(&insert)).await?;
        txn.commit().await?;
        if !hand_off {
            return Ok(Recorded::Settled(None));
        }
        let next = self
            .take_slot(integration_id, None, now)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, integration_id, "handing the slot on failed");
                None
            });
        Ok(Recorded::Settled(next))
    }

    /// Keeps the integration's health, and pauses it after `auto_pause_after`
    /// consecutive failed deliveries when that is set. Each write is one conditional
    /// UPDATE, so concurrent settles of one integration count every failure.
    async fn record_health(
        &self,
        integration: &integration::Model,
        status: DeliveryStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<IntegrationEvent>, Error> {
        let this =
            integration::Entity::update_many().filter(integration::Column::Id.eq(&integration.id));
        match status {
            // A busy integration's row is stamped at most once a second.
            DeliveryStatus::Delivered
                if integration.consecutive_failures == 0
                    && integration
                        .last_success_at
                        .is_some_and(|at| now - at < chrono(SUCCESS_STAMP)) =>
            {
                Ok(None)
            }
            // The integration as claimed may be stale: concurrent deliveries stamp it once.
            DeliveryStatus::Delivered => {
                this.col_expr(integration::Column::ConsecutiveFailures, Expr::value(0))
                    .col_expr(integration::Column::LastSuccessAt, Expr::value(Some(now)))
                    .filter(
                        Condition::any()
                            .add(integration::Column::ConsecutiveFailures.ne(0))
                            .add(integration::Column::LastSuccessAt.is_null())
                            .add(
                                integration::Column::LastSuccessAt.lt(now - chrono(SUCCESS_STAMP)),
                            ),
                    )
                    .exec(&self.db)
                    .await?;
                Ok(None)
            }
            DeliveryStatus::Failed | DeliveryStatus::Error => {
                this.clone()
                    .col_expr(
                        integration::Column::ConsecutiveFailures,
                        Expr::col(integration::Column::ConsecutiveFailures).add(1),
                    )
                    .col_expr(integration::Column::LastFailureAt, Expr::value(Some(now)))
                    .exec(&self.db)
                    .await?;
                if integration.auto_pause_after.is_none() {
                    return Ok(None);
                }
                let paused = this
                    .col_expr(integration::Column::Active, Expr::value(false))
                    .col_expr(
                        integration::Column::PausedReason,
                        Expr::cust(
                            "'paused after ' || auto_pause_after || ' consecutive failed deliveries'",
                        ),
                    )
                    .filter(integration::Column::Active.eq(true))
                    .filter(
                        Expr::col(integration::Column::ConsecutiveFailures)
                            .gte(Expr::col(integration::Column::AutoPauseAfter)),
                    )
                    .exec_with_returning(&self.db)
                    .await?;
                Ok(paused.into_iter().next().map(|paused| {
                    tracing::warn!(integration_id = %paused.id, limit = ?paused.auto_pause_after, "pausing integration after consecutive failed deliveries");
                    IntegrationEvent {
                        tenant_id: paused.tenant_id,
                        integration_id: paused.id,
                        list_id: paused.list_id,
                        active: false,
                        reason: paused.paused_reason,
                    }
                }))
            }
            _ => Ok(None),
        }
    }

    /// Stops taking on waiting rows when deliveries settle (graceful shutdown: the
    /// in-flight set only shrinks from here).
    pub fn stop_taking_on(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Hands back every row this process still has in flight, due at once, so another
    /// worker takes it without waiting for the lease (graceful shutdown).
    pub async fn release_in_flight(&self) -> Result<u64, Error> {
        let ids: Vec<String> = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(delivery_id, _)| delivery_id)
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let now = now();
        let released = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::RetryScheduled),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(Some(now)))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Id.is_in(ids))
            .filter(delivery::Column::Status.eq(DeliveryStatus::InFlight))
            .exec(&self.db)
            .await?;
        Ok(released.rows_affected)
    }

    /// How many of this process's slots one integration may hold: three quarters of them,
    /// so an integration whose receiver hangs (and whose `maxInFlight` is as large as the
    /// process's concurrency) cannot starve the others. The heartbeat tells intake.
    pub fn integration_share(&self) -> usize {
        (usize::from(self.settings.worker_concurrency) * 3 / 4).max(1)
    }

    /// Whether the integration already holds its share of this process's slots. Its running
    /// deliveries hand their slots on to its waiting rows meanwhile.
    fn local_share_used(&self, integration_id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|id| *id == integration_id)
            .count()
            >= self.integration_share()
    }

    /// How many rows this process has in flight now.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    async fn publish(&self, d: &delivery::Model, attempt: i32) {
        self.events.publish(DeliveryEvent::new(d, attempt)).await;
    }

    /// The ledger this engine writes to.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The queue this engine re-pushes to.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }
}
