//! The sweeper (ARCHITECTURE §5): Redis may lose jobs, a worker may die mid-attempt, an
//! integration may come back from a pause. Every interval one process (an advisory lock
//! on PostgreSQL) re-enqueues rows that are due but unclaimed and rows whose lease ran out.

use crate::{engine::now, error::Error, metrics, queue::Queue};
use leadrelay_entity::{DeliveryStatus, delivery, integration};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait, sea_query::Query,
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
    let ids: Vec<String> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::IntegrationId.in_subquery(active))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(
                            delivery::Column::Status
                                .is_in([DeliveryStatus::Pending, DeliveryStatus::RetryScheduled]),
                        )
                        .add(delivery::Column::NextAttemptAt.lte(overdue)),
                )
                .add(
                    Condition::all()
                        .add(delivery::Column::Status.eq(DeliveryStatus::InFlight))
                        .add(delivery::Column::LeaseUntil.lt(now)),
                ),
        )
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(BATCH)
        .into_tuple()
        .all(&txn)
        .await?;
    let oldest: Option<Option<chrono::DateTime<chrono::Utc>>> = delivery::Entity::find()
        .select_only()
        .column_as(delivery::Column::NextAttemptAt.min(), "oldest")
        .filter(
            delivery::Column::Status
                .is_in([DeliveryStatus::Pending, DeliveryStatus::RetryScheduled]),
        )
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
    let count = ids.len();
    if count > 0 {
        tracing::info!(count, "sweeper re-enqueued deliveries");
        queue.push(ids).await?;
    }
    Ok(count)
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
