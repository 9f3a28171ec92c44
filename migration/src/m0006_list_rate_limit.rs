//! An optional inbound rate limit per list (`rateLimitPerMinute`); none by default.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Lists::Table)
                .add_column(integer_null(Lists::RateLimitPerMinute))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Lists::Table)
                .drop_column(Lists::RateLimitPerMinute)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Lists {
    Table,
    RateLimitPerMinute,
}
