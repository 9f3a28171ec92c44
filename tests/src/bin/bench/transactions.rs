//! PostgreSQL transactions per lead: the database's round trips per lead (each of the
//! product's statements outside a transaction block is a transaction of its own), a
//! figure that does not depend on how fast or how busy the machine is. Counted in
//! `pg_stat_database` over the middle half of a fixed-rate run: a busy backend reports its
//! counts about once a second, so the counts at the run's start and end are incomplete.
//! A backend that finds the database's entry locked by another's flush keeps its counts
//! for up to 10 s (PostgreSQL 15's `PGSTAT_IDLE_INTERVAL`), so a short run on a busy
//! server can undercount.

use crate::stack;
use sea_orm::sqlx::{Connection, PgConnection, query_scalar};
use std::time::{Duration, Instant};

/// Transactions a second in the database at `database_url`, from a quarter to three
/// quarters of a run of `seconds` that starts now; None when they cannot be read.
pub async fn per_second(database_url: &str, seconds: u64) -> Option<f64> {
    let quarter = Duration::from_secs(seconds) / 4;
    tokio::time::sleep(quarter).await;
    let (first, from) = (count(database_url).await?, Instant::now());
    tokio::time::sleep(quarter * 2).await;
    let last = count(database_url).await?;
    Some((last - first) / from.elapsed().as_secs_f64())
}

/// Transactions committed or rolled back in the database so far.
async fn count(database_url: &str) -> Option<f64> {
    let mut db = PgConnection::connect(&stack::local(database_url))
        .await
        .ok()?;
    let count: i64 = query_scalar(
        "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(&mut db)
    .await
    .ok()?;
    let _ = db.close().await;
    Some(count as f64)
}
