//! Plans that do not depend on when a session first ran a statement. PostgreSQL caches a
//! generic plan for a statement after its fifth run; made while `deliveries` was nearly
//! empty (a fresh deployment, every bench run), each index looks as good as another, and
//! the plan it kept could read every row of an integration on each delivery. The bench
//! then ran at 250–650 leads/s instead of 800, depending on timing.
//! `ix_deliveries_due` becomes partial, over the waiting rows its one reader (the
//! sweeper's oldest due row) asks for. An UPDATE of one in-flight row by id and status
//! (every settle) then has only the primary key to use, not a walk of every in-flight
//! row's index entry (dead ones included) with a filter on the id. (`leadrelay_take`,
//! m0010, plans its hand-off query per call for the same reason.)

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same partial-index syntax works on PostgreSQL and SQLite.
const DUE: &str = "CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_at) \
     WHERE status IN ('PENDING', 'RETRY_SCHEDULED')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX ix_deliveries_due")
            .await?;
        db.execute_unprepared(DUE).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX ix_deliveries_due")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_deliveries_due ON deliveries (status, next_attempt_at)",
        )
        .await?;
        Ok(())
    }
}
