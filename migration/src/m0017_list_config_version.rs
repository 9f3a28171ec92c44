//! `lists.config_version`: a counter that PostgreSQL triggers bump on every change to a
//! list, and to what intake reads of its integrations (any column but the health the
//! worker stamps per delivery). The api keeps each list with its integrations in memory;
//! intake's statement stores a lead from that copy only while the list's counter still
//! matches it, so a change made through any api process, or by hand, reaches the next
//! lead, and a lead needs no read of its list. SQLite (embedded mode, one api process)
//! reads the list for every lead: the column is there, the triggers are not.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The counter's triggers. The integration columns left out are those the worker writes
/// as deliveries settle (`record_health`): intake reads none of them, and a bump per
/// delivery would make every copy stale.
const TRIGGERS: &str = r"
CREATE FUNCTION leadrelay_list_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.config_version := OLD.config_version + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER lists_config_version BEFORE UPDATE ON lists
    FOR EACH ROW EXECUTE FUNCTION leadrelay_list_changed();
CREATE FUNCTION leadrelay_integration_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Any UPDATE of a list bumps its counter (lists_config_version).
    IF TG_OP = 'INSERT' THEN
        UPDATE lists SET config_version = config_version WHERE id = NEW.list_id;
        RETURN NULL;
    END IF;
    UPDATE lists SET config_version = config_version WHERE id = OLD.list_id;
    IF TG_OP = 'UPDATE' AND NEW.list_id <> OLD.list_id THEN
        UPDATE lists SET config_version = config_version WHERE id = NEW.list_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER integrations_added_or_removed AFTER INSERT OR DELETE ON integrations
    FOR EACH ROW EXECUTE FUNCTION leadrelay_integration_changed();
CREATE TRIGGER integrations_changed AFTER UPDATE ON integrations
    FOR EACH ROW WHEN (
        to_jsonb(OLD) - '{consecutive_failures,last_success_at,last_failure_at}'::text[]
        IS DISTINCT FROM
        to_jsonb(NEW) - '{consecutive_failures,last_success_at,last_failure_at}'::text[]
    ) EXECUTE FUNCTION leadrelay_integration_changed()";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Lists::Table)
                .add_column(big_integer(Lists::ConfigVersion).default(0))
                .to_owned(),
        )
        .await?;
        crate::on_postgres(m, TRIGGERS).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(
            m,
            "DROP TRIGGER integrations_changed ON integrations; \
             DROP TRIGGER integrations_added_or_removed ON integrations; \
             DROP FUNCTION leadrelay_integration_changed(); \
             DROP TRIGGER lists_config_version ON lists; \
             DROP FUNCTION leadrelay_list_changed()",
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Lists::Table)
                .drop_column(Lists::ConfigVersion)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum Lists {
    Table,
    ConfigVersion,
}
