//! Tenants, users, lists, leads, integrations, deliveries and their attempts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Ids are prefixed strings (`lead_…`), so every key column has the same type.
fn id<T: IntoIden>(col: T) -> ColumnDef {
    string_len(col, 64)
}

fn tenant_fk(table: impl IntoIden, name: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, Alias::new("tenant_id"))
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .col(id(Tenants::Id).primary_key())
                .col(string(Tenants::Name))
                .col(timestamp_with_time_zone(Tenants::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(id(Users::Id).primary_key())
                .col(string_uniq(Users::Email))
                .col(string(Users::PasswordHash))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(id(Memberships::Id).primary_key())
                .col(id(Memberships::TenantId))
                .col(id(Memberships::UserId))
                .col(string_len(Memberships::Role, 16))
                .col(timestamp_with_time_zone(Memberships::CreatedAt))
                .foreign_key(&mut tenant_fk(Memberships::Table, "fk_memberships_tenant"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_memberships_user")
                        .from(Memberships::Table, Memberships::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_memberships_tenant_user")
                .table(Memberships::Table)
                .col(Memberships::TenantId)
                .col(Memberships::UserId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_memberships_user")
                .table(Memberships::Table)
                .col(Memberships::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Lists::Table)
                .col(id(Lists::Id).primary_key())
                .col(id(Lists::TenantId))
                .col(string(Lists::Name))
                .col(boolean(Lists::Active))
                .col(string_len_uniq(Lists::InboundToken, 64))
                .col(string_len(Lists::DefaultPhoneRegion, 2))
                .col(timestamp_with_time_zone(Lists::CreatedAt))
                .foreign_key(&mut tenant_fk(Lists::Table, "fk_lists_tenant"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_lists_tenant")
                .table(Lists::Table)
                .col(Lists::TenantId)
                .col(Lists::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Leads::Table)
                .col(id(Leads::Id).primary_key())
                .col(id(Leads::TenantId))
                .col(id(Leads::ListId))
                .col(string_null(Leads::Email))
                .col(string_null(Leads::Name))
                .col(string_null(Leads::Phone))
                .col(string_null(Leads::Company))
                .col(json(Leads::CustomFields))
                .col(json(Leads::Verifications))
                .col(integer_null(Leads::Score))
                .col(string_len(Leads::Status, 16))
                .col(boolean(Leads::IsTest))
                .col(string_len_null(Leads::SourceIp, 64))
                .col(text(Leads::RawBody))
                .col(timestamp_with_time_zone(Leads::CreatedAt))
                .col(timestamp_with_time_zone_null(Leads::QualifiedAt))
                .foreign_key(&mut tenant_fk(Leads::Table, "fk_leads_tenant"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_leads_list")
                        .from(Leads::Table, Leads::ListId)
                        .to(Lists::Table, Lists::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_leads_tenant")
                .table(Leads::Table)
                .col(Leads::TenantId)
                .col(Leads::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Integrations::Table)
                .col(id(Integrations::Id).primary_key())
                .col(id(Integrations::TenantId))
                .col(id(Integrations::ListId))
                .col(string(Integrations::Name))
                .col(string_len(Integrations::Kind, 24))
                .col(text(Integrations::Url))
                .col(text_null(Integrations::FallbackUrl))
                .col(boolean(Integrations::Active))
                .col(integer(Integrations::TimeoutMs))
                .col(integer(Integrations::MaxInFlight))
                .col(timestamp_with_time_zone(Integrations::CreatedAt))
                .col(timestamp_with_time_zone(Integrations::UpdatedAt))
                .foreign_key(&mut tenant_fk(
                    Integrations::Table,
                    "fk_integrations_tenant",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_integrations_list")
                        .from(Integrations::Table, Integrations::ListId)
                        .to(Lists::Table, Lists::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_integrations_list")
                .table(Integrations::Table)
                .col(Integrations::ListId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IntegrationHeaders::Table)
                .col(id(IntegrationHeaders::Id).primary_key())
                .col(id(IntegrationHeaders::TenantId))
                .col(id(IntegrationHeaders::IntegrationId))
                .col(integer(IntegrationHeaders::Position))
                .col(string(IntegrationHeaders::Name))
                .col(text(IntegrationHeaders::Value))
                .foreign_key(&mut tenant_fk(
                    IntegrationHeaders::Table,
                    "fk_integration_headers_tenant",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_integration_headers_integration")
                        .from(IntegrationHeaders::Table, IntegrationHeaders::IntegrationId)
                        .to(Integrations::Table, Integrations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_integration_headers_integration")
                .table(IntegrationHeaders::Table)
                .col(IntegrationHeaders::IntegrationId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Deliveries::Table)
                .col(id(Deliveries::Id).primary_key())
                .col(id(Deliveries::TenantId))
                .col(id(Deliveries::LeadId))
                .col(id(Deliveries::ListId))
                .col(id(Deliveries::IntegrationId))
                .col(string_len(Deliveries::Status, 16))
                .col(integer(Deliveries::AttemptCount))
                .col(timestamp_with_time_zone_null(Deliveries::NextAttemptAt))
                .col(timestamp_with_time_zone_null(Deliveries::LeaseUntil))
                .col(integer_null(Deliveries::LastStatusCode))
                .col(boolean(Deliveries::IsTest))
                .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                .col(timestamp_with_time_zone(Deliveries::UpdatedAt))
                .foreign_key(&mut tenant_fk(Deliveries::Table, "fk_deliveries_tenant"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_deliveries_lead")
                        .from(Deliveries::Table, Deliveries::LeadId)
                        .to(Leads::Table, Leads::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_deliveries_integration")
                        .from(Deliveries::Table, Deliveries::IntegrationId)
                        .to(Integrations::Table, Integrations::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "ix_deliveries_tenant",
                vec![Deliveries::TenantId, Deliveries::Id],
            ),
            ("ix_deliveries_lead", vec![Deliveries::LeadId]),
            (
                "ix_deliveries_integration",
                vec![Deliveries::IntegrationId, Deliveries::Status],
            ),
            (
                "ix_deliveries_due",
                vec![Deliveries::Status, Deliveries::NextAttemptAt],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Deliveries::Table);
            for col in cols {
                index.col(col);
            }
            m.create_index(index.to_owned()).await?;
        }

        m.create_table(
            Table::create()
                .table(DeliveryAttempts::Table)
                .col(id(DeliveryAttempts::Id).primary_key())
                .col(id(DeliveryAttempts::TenantId))
                .col(id(DeliveryAttempts::DeliveryId))
                .col(integer(DeliveryAttempts::Number))
                .col(string_len(DeliveryAttempts::Endpoint, 16))
                .col(text(DeliveryAttempts::Url))
                .col(json(DeliveryAttempts::RequestHeaders))
                .col(integer_null(DeliveryAttempts::StatusCode))
                .col(text_null(DeliveryAttempts::ResponseBody))
                .col(integer(DeliveryAttempts::DurationMs))
                .col(string_len_null(DeliveryAttempts::ErrorKind, 16))
                .col(text_null(DeliveryAttempts::Error))
                .col(timestamp_with_time_zone(DeliveryAttempts::StartedAt))
                .foreign_key(&mut tenant_fk(
                    DeliveryAttempts::Table,
                    "fk_delivery_attempts_tenant",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_delivery_attempts_delivery")
                        .from(DeliveryAttempts::Table, DeliveryAttempts::DeliveryId)
                        .to(Deliveries::Table, Deliveries::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_delivery_attempts_number")
                .table(DeliveryAttempts::Table)
                .col(DeliveryAttempts::DeliveryId)
                .col(DeliveryAttempts::Number)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DeliveryAttempts::Table.into_iden(),
            Deliveries::Table.into_iden(),
            IntegrationHeaders::Table.into_iden(),
            Integrations::Table.into_iden(),
            Leads::Table.into_iden(),
            Lists::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    Id,
    TenantId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Lists {
    Table,
    Id,
    TenantId,
    Name,
    Active,
    InboundToken,
    DefaultPhoneRegion,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    Id,
    TenantId,
    ListId,
    Email,
    Name,
    Phone,
    Company,
    CustomFields,
    Verifications,
    Score,
    Status,
    IsTest,
    SourceIp,
    RawBody,
    CreatedAt,
    QualifiedAt,
}

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    TenantId,
    ListId,
    Name,
    Kind,
    Url,
    FallbackUrl,
    Active,
    TimeoutMs,
    MaxInFlight,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IntegrationHeaders {
    Table,
    Id,
    TenantId,
    IntegrationId,
    Position,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    TenantId,
    LeadId,
    ListId,
    IntegrationId,
    Status,
    AttemptCount,
    NextAttemptAt,
    LeaseUntil,
    LastStatusCode,
    IsTest,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Id,
    TenantId,
    DeliveryId,
    Number,
    Endpoint,
    Url,
    RequestHeaders,
    StatusCode,
    ResponseBody,
    DurationMs,
    ErrorKind,
    Error,
    StartedAt,
}
