//! `leadrelay_dedupe` (PostgreSQL only): intake's duplicate check in one round trip. It
//! takes the lead's advisory locks, then looks for the oldest lead of the list sharing
//! its email or phone. The lookups must run after the locks are granted: in one plain
//! statement they would read a snapshot taken before a concurrent intake holding the
//! same key committed, and miss its lead. Each statement of a PL/pgSQL function sees a
//! fresh snapshot, so the function can do both. SQLite runs one writing transaction at
//! a time and needs no locks; intake looks up each key itself there.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Arguments: the lock keys (a JSON array of text, locked in its order, so callers sort
/// it), the tenant, the list, the email and the phone to look for (NULL: not a key of
/// this list, or the lead has none) and the start of the dedupe window. Returns the id
/// of the oldest non-test, non-duplicate lead of the list within the window sharing
/// either value, or NULL. Each lookup matches its own index (`list_id`, key,
/// `created_at`) and is planned for its values on each call: a generic plan made while
/// the list was small can pick the other key's index and walk the whole window.
pub(crate) const CREATE: &str = r"
CREATE FUNCTION leadrelay_dedupe(
    p_locks jsonb, p_tenant text, p_list text, p_email text, p_phone text,
    p_since timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_id text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(k)) FROM jsonb_array_elements_text(p_locks) AS k;
    IF p_email IS NULL AND p_phone IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT id FROM (
            (SELECT id, created_at FROM leads WHERE tenant_id = $1 AND list_id = $2
                AND email = $3 AND created_at >= $5 AND is_test = false
                AND status <> ''DUPLICATE'' ORDER BY created_at LIMIT 1)
            UNION ALL
            (SELECT id, created_at FROM leads WHERE tenant_id = $1 AND list_id = $2
                AND phone = $4 AND created_at >= $5 AND is_test = false
                AND status <> ''DUPLICATE'' ORDER BY created_at LIMIT 1)
        ) AS found ORDER BY created_at LIMIT 1'
        INTO v_id USING p_tenant, p_list, p_email, p_phone, p_since;
    RETURN v_id;
END
$$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(m, CREATE).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        crate::on_postgres(
            m,
            "DROP FUNCTION leadrelay_dedupe(jsonb, text, text, text, text, timestamptz)",
        )
        .await
    }
}
