//! Worker heartbeats in the ledger, so readiness can report which workers are alive.

use crate::{engine::now, error::Error};
use leadrelay_entity::worker;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::OnConflict,
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

/// Records that `name` is alive now.
pub async fn beat(db: &DatabaseConnection, name: &str) -> Result<(), Error> {
    let now = now();
    worker::Entity::insert(worker::ActiveModel {
        name: Set(name.to_owned()),
        started_at: Set(now),
        last_seen_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(worker::Column::Name)
            .update_column(worker::Column::LastSeenAt)
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Beats every [`INTERVAL`] until the process ends.
pub async fn run(db: DatabaseConnection, name: String) {
    loop {
        if let Err(e) = beat(&db, &name).await {
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

/// How many workers reported within three intervals.
pub async fn live(db: &DatabaseConnection) -> Result<u64, Error> {
    let since = now() - chrono::Duration::from_std(INTERVAL * 3).unwrap_or_default();
    Ok(worker::Entity::find()
        .filter(worker::Column::LastSeenAt.gte(since))
        .count(db)
        .await?)
}
