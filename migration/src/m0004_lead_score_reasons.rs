//! The reasons behind a lead's score, shown beside it (`scoreReasons`). Leads stored
//! before scoring existed have none.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Leads::Table)
                .add_column(json(Leads::ScoreReasons).default("[]").to_owned())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Leads::Table)
                .drop_column(Leads::ScoreReasons)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    ScoreReasons,
}
