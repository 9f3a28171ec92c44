//! The delivery engine's columns: signing secrets, integration health and auto-pause,
//! the endpoint and ladder position of each delivery, and worker heartbeats.

use base64::Engine as _;
use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, Statement},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A `whsec_` secret for integrations created before signing existed.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string(Integrations::SigningSecret).default("").to_owned(),
            string_null(Integrations::PreviousSigningSecret),
            timestamp_with_time_zone_null(Integrations::PreviousSecretExpiresAt),
            integer_null(Integrations::AutoPauseAfter),
            integer(Integrations::ConsecutiveFailures)
                .default(0)
                .to_owned(),
            timestamp_with_time_zone_null(Integrations::LastSuccessAt),
            timestamp_with_time_zone_null(Integrations::LastFailureAt),
            text_null(Integrations::PausedReason),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Integrations::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        for column in [
            string_len(Deliveries::Endpoint, 16)
                .default("PRIMARY")
                .to_owned(),
            integer(Deliveries::LadderAttempts).default(0).to_owned(),
            timestamp_with_time_zone_null(Deliveries::DeliveredAt),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_table(
            Table::create()
                .table(Workers::Table)
                .col(string_len(Workers::Name, 128).primary_key())
                .col(timestamp_with_time_zone(Workers::StartedAt))
                .col(timestamp_with_time_zone(Workers::LastSeenAt))
                .to_owned(),
        )
        .await?;

        let db = m.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT id FROM integrations WHERE signing_secret = ''",
            ))
            .await?;
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let update = Query::update()
                .table(Integrations::Table)
                .value(Integrations::SigningSecret, new_secret())
                .and_where(Expr::col(Integrations::Id).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Workers::Table).to_owned())
            .await?;
        for column in [
            Deliveries::Endpoint,
            Deliveries::LadderAttempts,
            Deliveries::DeliveredAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        for column in [
            Integrations::SigningSecret,
            Integrations::PreviousSigningSecret,
            Integrations::PreviousSecretExpiresAt,
            Integrations::AutoPauseAfter,
            Integrations::ConsecutiveFailures,
            Integrations::LastSuccessAt,
            Integrations::LastFailureAt,
            Integrations::PausedReason,
        ] {
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

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    SigningSecret,
    PreviousSigningSecret,
    PreviousSecretExpiresAt,
    AutoPauseAfter,
    ConsecutiveFailures,
    LastSuccessAt,
    LastFailureAt,
    PausedReason,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Endpoint,
    LadderAttempts,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum Workers {
    Table,
    Name,
    StartedAt,
    LastSeenAt,
}
