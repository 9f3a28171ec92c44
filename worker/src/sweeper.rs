//! The sweeper (ARCHITECTURE §5): Redis may lose jobs, a worker may die mid-attempt, an
//! integration may come back from a pause. Every interval one process (an advisory lock
//! on PostgreSQL) re-enqueues rows that are due but unclaimed and rows whose lease ran out.
//! Of the rows waiting for a slot it takes as many per integration as it has free slots:
//! those restart the integration's deliveries, and each settling one hands its slot on to
//! the next waiting row, so 100,000 waiting rows never become 100,000 jobs, and an
//! integration whose slots are all held (a hanging receiver) gets none.

use crate::{
    engine::{WAITING, holding_slot, now},
    error::Error,
    heartbeat, metrics,
    queue::{DeliverLead, Queue},
};
use chrono::{DateTime, Utc};
use leadrelay_entity::{DeliveryStatus, delivery, integration};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Func, JoinType, Order, Query},
};
use std::time::Duration;

/// Rows re-enqueued per sweep at most; the next sweep takes the rest.
const BATCH: u64 = 2000;
/// Key of the PostgreSQL advisory lock that makes one sweeper run at a time.
const SWEEP_LOCK: i64 = 7_270_002;

/// Re-enqueues what is due and unclaimed for longer than `grace`, and expired leases.
/// Returns how many rows it pushed (0 when another process holds the sweep lock).
pub async fn sweep_once(
    db: &DatabaseConnection,
    queue: &Queue,
    grace: Duration,
) -> Result<usize, Error> {
    let now = now();
    let overdue = now - chrono::Duration::from_std(grace).unwrap_or_default();
    let txn = db.begin().await?;
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        let got = txn
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                format!("SELECT pg_try_advisory_xact_lock({SWEEP_LOCK}) AS got"),
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "got"))
            .transpose()?
            .unwrap_or(false);
        if !got {
            return Ok(0);
        }
    }
    let active = Query::select()
        .column(integration::Column::Id)
        .from(integration::Entity)
        .and_where(integration::Column::Active.eq(true))
        .to_owned();
    let mut rows: Vec<(String, String)> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .column(delivery::Column::IntegrationId)
        .filter(delivery::Column::IntegrationId.in_subquery(active))
        .filter(delivery::Column::Status.eq(DeliveryStatus::InFlight))
        .filter(delivery::Column::LeaseUntil.lt(now))
        .order_by_asc(delivery::Column::LeaseUntil)
        .limit(BATCH)
        .into_tuple()
        .all(&txn)
        .await?;
    let expired = rows.len();
    rows.extend(first_waiting(&txn, now, overdue).await?);
    let oldest: Option<Option<chrono::DateTime<chrono::Utc>>> = delivery::Entity::find()
        .select_only()
        .column_as(delivery::Column::NextAttemptAt.min(), "oldest")
        // Spelt as the partial index `ix_deliveries_due` is, so even a generic plan uses it.
        .filter(Expr::cust(WAITING))
        .filter(delivery::Column::NextAttemptAt.lte(now))
        .into_tuple()
        .one(&txn)
        .await?;
    metrics::queue_lag(
        oldest
            .flatten()
            .and_then(|t| (now - t).to_std().ok())
            .unwrap_or_default(),
    );
    txn.commit().await?;
    let count = rows.len();
    if count > 0 {
        tracing::info!(count, "sweeper re-enqueued deliveries");
        queue
            .push(
                rows.into_iter()
                    .map(|(id, integration)| DeliverLead::due(id, integration)),
            )
            .await?;
    }
    metrics::swept(expired, count - expired);
    Ok(count)
}

#[derive(FromQueryResult)]
struct Waiting {
    id: String,
    integration_id: String,
}

/// The ids and integrations of the rows that have waited since `overdue` or longer, in
/// due order, as many of each active integration's as it has free slots at `now` (its
/// [`heartbeat::slot_cap`] less the rows [`holding_slot`]): a job for any more would be
/// fetched and dropped (`Busy`), since the rows under way hand their slots on as they
/// settle.
async fn first_waiting(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    overdue: DateTime<Utc>,
) -> Result<Vec<(String, String)>, Error> {
    let (d, f, free) = (Alias::new("d"), Alias::new("f"), Alias::new("free"));
    let free_slots = Query::select()
        .column((integration::Entity, integration::Column::Id))
        .expr_as(
            heartbeat::slot_cap(now).sub(Func::count(Expr::col((
                delivery::Entity,
                delivery::Column::Id,
            )))),
            free.clone(),
        )
        .from(integration::Entity)
        .join(
            JoinType::LeftJoin,
            delivery::Entity,
            Condition::all()
                .add(
                    Expr::col((delivery::Entity, delivery::Column::IntegrationId))
                        .equals((integration::Entity, integration::Column::Id)),
                )
                .add(holding_slot(now)),
        )
        .and_where(Expr::col((integration::Entity, integration::Column::Active)).eq(true))
        .group_by_col((integration::Entity, integration::Column::Id))
        .group_by_col((integration::Entity, integration::Column::MaxInFlight))
        .to_owned();
    let ranked = Query::select()
        .column((d.clone(), delivery::Column::Id))
        .column((d.clone(), delivery::Column::IntegrationId))
        .column((d.clone(), delivery::Column::NextAttemptAt))
        .column((f.clone(), free.clone()))
        .expr_as(
            Expr::cust(
                "row_number() OVER (PARTITION BY d.integration_id ORDER BY d.next_attempt_at)",
            ),
            Alias::new("rank"),
        )
        .from_as(delivery::Entity, d.clone())
        .join_subquery(
            JoinType::InnerJoin,
            free_slots,
            f.clone(),
            Expr::col((f, integration::Column::Id))
                .equals((d.clone(), delivery::Column::IntegrationId)),
        )
        .and_where(Expr::cust(format!("d.{WAITING}")))
        .and_where(Expr::col((d, delivery::Column::NextAttemptAt)).lte(overdue))
        .to_owned();
    let w = Alias::new("w");
    let first = Query::select()
        .column((w.clone(), delivery::Column::Id))
        .column((w.clone(), delivery::Column::IntegrationId))
        .from_subquery(ranked, w.clone())
        .and_where(Expr::col((w.clone(), Alias::new("rank"))).lte(Expr::col((w.clone(), free))))
        .order_by((w, delivery::Column::NextAttemptAt), Order::Asc)
        .limit(BATCH)
        .to_owned();
    let backend = txn.get_database_backend();
    Ok(Waiting::find_by_statement(backend.build(&first))
        .all(txn)
        .await?
        .into_iter()
        .map(|w| (w.id, w.integration_id))
        .collect())
}

/// Sweeps (and vacuums the queue of finished jobs) every `interval` until the process ends.
pub async fn run(db: DatabaseConnection, queue: Queue, interval: Duration) {
    loop {
        if let Err(e) = sweep_once(&db, &queue, interval).await {
            tracing::warn!(error = %e, "sweep failed; retrying next interval");
        }
        if let Err(e) = queue.vacuum().await {
            tracing::warn!(error = %e, "vacuuming finished jobs failed");
        }
        tokio::time::sleep(interval).await;
    }
}
