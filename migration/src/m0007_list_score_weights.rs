//! Per-list score weights (`scoreWeights`): the points a list gives each check where it
//! differs from the defaults, as a JSON object (`{"email_valid": 40}`); empty: defaults.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Lists::Table)
                .add_column(json(Lists::ScoreWeights).default("{}").to_owned())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Lists::Table)
                .drop_column(Lists::ScoreWeights)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Lists {
    Table,
    ScoreWeights,
}
