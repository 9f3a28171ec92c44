//! `leadrelay_take` (PostgreSQL only): takes one of an integration's in-flight slots for a
//! delivery row, server-side in one call. Claims and hand-offs of one integration take
//! turns; done from the client under the integration's row lock, that turn was held
//! across four round trips (count, update, commit) and every delivery of a busy
//! integration queued on it. Here it is held for the microseconds the function runs. SQLite (one writer) runs the
//! same steps from the engine (`worker/src/engine.rs`, `take_slot`).

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, DatabaseBackend},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Arguments: the integration; the row to take with the status and `updated_at` it was
/// read with, or NULL for the integration's oldest due waiting row (a hand-off); now; the
/// lease's end. Returns the row taken, or nothing: the integration has `max_in_flight`
/// rows under a live lease, is paused (and the row is no test) or is gone, or the row
/// changed since it was read. Each statement of a PL/pgSQL function sees a fresh
/// snapshot, so the count after the lock sees every claim committed before it.
const CREATE: &str = r"
CREATE FUNCTION leadrelay_take(
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
        -- Planned for its values on each call: kept generic (made while `deliveries`
        -- was nearly empty), the plan read and sorted every waiting row of the
        -- integration instead of taking the first of `ix_deliveries_waiting`.
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
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(CREATE).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared(
                "DROP FUNCTION leadrelay_take(text, text, text, timestamptz, timestamptz, timestamptz)",
            )
            .await?;
        }
        Ok(())
    }
}
