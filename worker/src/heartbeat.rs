//! Worker heartbeats in the ledger, so readiness can report which workers are alive, and
//! intake and the sweeper know how many deliveries of one integration the live workers
//! take at once.

use crate::{engine::now, error::Error};
use chrono::{DateTime, Utc};
use leadrelay_entity::{integration, worker};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func, OnConflict, Query},
};
use std::time::Duration;

/// How often a worker reports itself.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// A unique name for this worker process: host, pid and a random suffix.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "worker".to_owned(), |h| h.trim().to_owned());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Records that `name` is alive now, and lets one integration hold `share` of its slots.
pub async fn beat(db: &DatabaseConnection, name: &str, share: i32) -> Result<(), Error> {
    let now = now();
    worker::Entity::insert(worker::ActiveModel {
        name: Set(name.to_owned()),
        started_at: Set(now),
        last_seen_at: Set(now),
        integration_share: Set(Some(share)),
    })
    .on_conflict(
        OnConflict::column(worker::Column::Name)
            .update_columns([worker::Column::LastSeenAt, worker::Column::IntegrationShare])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Beats every [`INTERVAL`] until the process ends.
pub async fn run(db: DatabaseConnection, name: String, share: i32) {
    loop {
        if let Err(e) = beat(&db, &name, share).await {
            tracing::warn!(error = %e, "worker heartbeat failed");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Removes `name` (a clean stop).
pub async fn remove(db: &DatabaseConnection, name: &str) -> Result<(), Error> {
    worker::Entity::delete_by_id(name.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

/// The oldest heartbeat at `now` of a worker counted as alive: three intervals ago.
pub fn live_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::from_std(INTERVAL * 3).unwrap_or_default()
}

/// How many workers reported within three intervals.
pub async fn live(db: &DatabaseConnection) -> Result<u64, Error> {
    Ok(worker::Entity::find()
        .filter(worker::Column::LastSeenAt.gte(live_since(now())))
        .count(db)
        .await?)
}

/// The most deliveries of one integration (the query's `integrations` row) in flight at
/// once: `LEAST(max_in_flight, the sum of the live workers' shares)`, or `max_in_flight`
/// alone when no live worker reports a share.
pub fn slot_cap(now: DateTime<Utc>) -> Expr {
    let max_in_flight = Expr::col((integration::Entity, integration::Column::MaxInFlight));
    let shares = Query::select()
        .expr(Expr::col(worker::Column::IntegrationShare).sum())
        .from(worker::Entity)
        .and_where(Expr::col(worker::Column::LastSeenAt).gte(live_since(now)))
        .to_owned();
    Func::least([
        max_in_flight.clone(),
        Func::coalesce([Expr::SubQuery(None, Box::new(shares.into())), max_in_flight]).into(),
    ])
    .into()
}
