//! Plans that do not depend on when a session first ran a statement. PostgreSQL caches a
//! generic plan for a statement after its fifth run; made while `deliveries` was nearly
//! empty (a fresh deployment, every bench run), each index looks as good as another, and
//! the plan it kept could read every row of an integration on each delivery. The bench
//! then ran at 250–650 leads/s instead of 800, depending on timing.
//! - `ix_deliveries_due` becomes partial, over the waiting rows its one reader (the
//!   sweeper's oldest due row) asks for. An UPDATE of one in-flight row by id and status
//!   (every settle) then has only the primary key to use, not a walk of every in-flight
//!   row's index entry (dead ones included) with a filter on the id.
//! - `leadrelay_take` plans the hand-off's query (the integration's oldest due waiting
//!   row) for each call with `EXECUTE`: kept generic, it read and sorted all of the
//!   integration's waiting rows instead of taking the first of `ix_deliveries_waiting`.

use crate::m0010_take_slot;
use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DatabaseBackend},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same partial-index syntax works on PostgreSQL and SQLite.
const DUE: &str = "CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_at) \
     WHERE status IN ('PENDING', 'RETRY_SCHEDULED')";

/// As m0010's, with the hand-off's query planned for its values on each call.
const TAKE: &str = r"
CREATE OR REPLACE FUNCTION leadrelay_take(
    p_integration text, p_delivery text, p_status text, p_updated_at timestamptz,
    p_now timestamptz, p_lease_until timestamptz)
RETURNS SETOF deliveries
LANGUAGE plpgsql AS $$
DECLARE
    v_cap integer;
    v_active boolean;
    v_id text;
BEGIN
    -- The row before the integration, as in a settle, so the two never deadlock; a row
    -- a settling worker holds is left to it.
    IF p_delivery IS NOT NULL THEN
        SELECT id INTO v_id FROM deliveries WHERE id = p_delivery FOR NO KEY UPDATE SKIP LOCKED;
        IF v_id IS NULL THEN
            RETURN;
        END IF;
    END IF;
    -- The integration's turn: an advisory lock, not a row lock, which would write the
    -- row (and a MultiXact beside intake's foreign-key checks) on every call.
    PERFORM pg_advisory_xact_lock(727002, hashtext(p_integration));
    SELECT max_in_flight, active INTO v_cap, v_active
        FROM integrations WHERE id = p_integration;
    IF NOT FOUND OR (SELECT count(*) FROM deliveries WHERE integration_id = p_integration
            AND status = 'IN_FLIGHT' AND lease_until > p_now) >= v_cap THEN
        RETURN;
    END IF;
    IF p_delivery IS NULL THEN
        IF NOT v_active THEN
            RETURN;
        END IF;
        EXECUTE 'SELECT id FROM deliveries WHERE integration_id = $1
                AND status IN (''PENDING'', ''RETRY_SCHEDULED'') AND next_attempt_at <= $2
                ORDER BY next_attempt_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED'
            INTO v_id USING p_integration, p_now;
    END IF;
    RETURN QUERY UPDATE deliveries SET status = 'IN_FLIGHT', lease_until = p_lease_until,
            next_attempt_at = NULL, updated_at = p_now
        WHERE id = v_id AND (p_delivery IS NULL
            OR (status = p_status AND updated_at = p_updated_at AND (v_active OR is_test)))
        RETURNING *;
END
$$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        db.execute_unprepared("DROP INDEX ix_deliveries_due")
            .await?;
        db.execute_unprepared(DUE).await?;
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(TAKE).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(&m0010_take_slot::CREATE.replacen(
                "CREATE FUNCTION",
                "CREATE OR REPLACE FUNCTION",
                1,
            ))
            .await?;
        }
        db.execute_unprepared("DROP INDEX ix_deliveries_due")
            .await?;
        db.execute_unprepared(
            "CREATE INDEX ix_deliveries_due ON deliveries (status, next_attempt_at)",
        )
        .await?;
        Ok(())
    }
}
