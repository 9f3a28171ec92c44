//! Dispatch filters and field mappings per integration (issue 7): two nullable JSON
//! columns on `integrations`; null means every lead, and the default body.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [Integrations::Filter, Integrations::Mapping] {
            m.alter_table(
                Table::alter()
                    .table(Integrations::Table)
                    .add_column(json_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Integrations::Filter, Integrations::Mapping] {
            m.alter_table(
                Table::alter()
                    .table(Integrations::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Integrations {
    Table,
    Filter,
    Mapping,
}
