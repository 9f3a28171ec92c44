//! `leadrelay_take` (m0010) and `leadrelay_swap` (m0012) return at most one row; they say
//! so here. PostgreSQL otherwise plans a set-returning function for 1,000 rows, and the
//! claim and the settle, which join the row they return to its lead and list, read the
//! whole `leads` table into a hash on every call instead of looking one lead up by its key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TAKE: &str = "leadrelay_take(text, text, text, timestamptz, timestamptz, timestamptz)";
const SWAP: &str = "leadrelay_swap(text, text, timestamptz, timestamptz)";

async fn estimate(m: &SchemaManager<'_>, rows: u32) -> Result<(), DbErr> {
    for function in [TAKE, SWAP] {
        crate::on_postgres(m, &format!("ALTER FUNCTION {function} ROWS {rows}")).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        estimate(m, 1).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        estimate(m, 1000).await
    }
}
