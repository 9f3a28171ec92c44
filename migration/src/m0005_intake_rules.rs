//! Qualification rules, duplicate detection and inbound options per list (issue 6):
//! rule columns on `lists`, the disqualification reasons and the original of a duplicate
//! on `leads`, the indexes the duplicate lookup needs, and the idempotency ledger.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// SQLite adds one column per `ALTER TABLE`.
async fn add_columns(
    m: &SchemaManager<'_>,
    table: impl IntoIden + Copy,
    cols: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    for mut col in cols {
        m.alter_table(Table::alter().table(table).add_column(&mut col).to_owned())
            .await?;
    }
    Ok(())
}

async fn drop_columns(
    m: &SchemaManager<'_>,
    table: impl IntoIden + Copy,
    cols: &[Alias],
) -> Result<(), DbErr> {
    for col in cols {
        m.alter_table(
            Table::alter()
                .table(table)
                .drop_column(col.clone())
                .to_owned(),
        )
        .await?;
    }
    Ok(())
}

const LIST_COLUMNS: [&str; 8] = [
    "min_score",
    "required_checks",
    "required_fields",
    "dedupe_window_days",
    "dedupe_fields",
    "aliases",
    "api_key_hash",
    "thank_you_url",
];

const LEAD_COLUMNS: [&str; 2] = ["reasons", "duplicate_of"];

/// The duplicate lookup: one index per key field, newest last.
const INDEXES: [(&str, &str); 2] = [
    ("ix_leads_list_email", "email"),
    ("ix_leads_list_phone", "phone"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            m,
            Lists::Table,
            vec![
                integer(Lists::MinScore).default(0).to_owned(),
                json(Lists::RequiredChecks).default("[]").to_owned(),
                json(Lists::RequiredFields).default("[]").to_owned(),
                integer(Lists::DedupeWindowDays).default(30).to_owned(),
                json(Lists::DedupeFields)
                    .default(r#"["email","phone"]"#)
                    .to_owned(),
                json(Lists::Aliases).default("[]").to_owned(),
                string_len_null(Lists::ApiKeyHash, 64),
                string_len_null(Lists::ThankYouUrl, 2048),
            ],
        )
        .await?;
        add_columns(
            m,
            Leads::Table,
            vec![
                json(Leads::Reasons).default("[]").to_owned(),
                string_len_null(Leads::DuplicateOf, 64),
            ],
        )
        .await?;
        for (name, col) in INDEXES {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(Leads::Table)
                    .col(Leads::ListId)
                    .col(Alias::new(col))
                    .col(Leads::CreatedAt)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(string_len(IdempotencyKeys::ListId, 64))
                .col(string_len(IdempotencyKeys::Key, 255))
                .col(json(IdempotencyKeys::Answer))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::ListId)
                        .col(IdempotencyKeys::Key),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_idempotency_keys_list")
                        .from(IdempotencyKeys::Table, IdempotencyKeys::ListId)
                        .to(Lists::Table, Lists::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        for (name, _) in INDEXES {
            m.drop_index(Index::drop().name(name).table(Leads::Table).to_owned())
                .await?;
        }
        drop_columns(m, Leads::Table, &LEAD_COLUMNS.map(Alias::new)).await?;
        drop_columns(m, Lists::Table, &LIST_COLUMNS.map(Alias::new)).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Lists {
    Table,
    Id,
    MinScore,
    RequiredChecks,
    RequiredFields,
    DedupeWindowDays,
    DedupeFields,
    Aliases,
    ApiKeyHash,
    ThankYouUrl,
}

#[derive(DeriveIden, Clone, Copy)]
enum Leads {
    Table,
    ListId,
    CreatedAt,
    Reasons,
    DuplicateOf,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ListId,
    Key,
    Answer,
    CreatedAt,
}
