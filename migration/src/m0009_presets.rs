//! Presets (issue 7): an integration's preset settings (e.g. Pipedrive's lead creation),
//! and a delivery's progress through the requests of a several-request preset (the
//! Pipedrive person a lead is linked to). Both nullable JSON; null means the defaults, and
//! nothing sent yet. The kind column is a string, so the new kinds need no change.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .add_column(json_null(Integrations::Settings))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Deliveries::Table)
                .add_column(json_null(Deliveries::Progress))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Deliveries::Table)
                .drop_column(Deliveries::Progress)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Integrations::Table)
                .drop_column(Integrations::Settings)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Integrations {
    Table,
    Settings,
}

#[derive(DeriveIden, Clone, Copy)]
enum Deliveries {
    Table,
    Progress,
}
