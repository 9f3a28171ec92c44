//! `workers.integration_share`: how many of a worker's slots one integration may hold
//! (three quarters of them). Intake sums it over the live workers: an integration that
//! holds that many deliveries in flight is full even below its `maxInFlight`, and a new
//! delivery of it gets no job, as at its cap (its job would only be fetched and
//! dropped). NULL for a worker that does not say (a process older than this).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .add_column(integer_null(Workers::IntegrationShare))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Workers::Table)
                .drop_column(Workers::IntegrationShare)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    IntegrationShare,
}
