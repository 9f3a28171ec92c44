//! An index of the rows waiting for a slot, per integration in due order: when a delivery
//! settles, its worker hands the freed slot to the integration's oldest waiting row, and
//! the sweeper takes the first few of each integration; both must stay instant with
//! 100,000 rows waiting.

use sea_orm_migration::{prelude::*, sea_orm::ConnectionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same partial-index syntax works on PostgreSQL and SQLite.
const CREATE: &str = "CREATE INDEX ix_deliveries_waiting ON deliveries (integration_id, next_attempt_at) \
     WHERE status IN ('PENDING', 'RETRY_SCHEDULED')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX ix_deliveries_waiting")
            .await?;
        Ok(())
    }
}
