//! `leadrelay_swap` (PostgreSQL only): a settling delivery hands its in-flight slot to
//! its integration's oldest due waiting row inside the settle's own statement, so a
//! delivery's settle and hand-off are one round trip. One row leaves IN_FLIGHT and one
//! enters it in the same transaction, so the integration's in-flight count never rises:
//! under a backlog the swap needs no turn on the integration's advisory lock, and
//! hand-offs no longer queue behind claims (`leadrelay_take`, m0010). When nothing could
//! be swapped in so, it takes the turn and looks again: a claim that found the
//! integration busy while this row held the slot decided under that turn, so its row is
//! visible now, and a later claim waits for this statement's commit.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Arguments: the settled row (its UPDATE may or may not be visible here: PostgreSQL does
/// not order a statement's parts, so the row is left out of both the count and the
/// candidates), its integration, now, and the lease's end: NULL when the settled row
/// keeps its slot (a multi-step preset's next request) or the worker is stopping.
/// Returns the row taken, or nothing: no lease, the integration is paused or gone, its
/// other rows under a live lease already fill `max_in_flight` (it was lowered, or the
/// settled row's lease ran out and a claim took its slot), or nothing is waiting that no
/// one else holds. Each statement of a PL/pgSQL function sees a fresh snapshot.
pub(crate) const CREATE: &str = r"
CREATE FUNCTION leadrelay_swap(
    p_settled text, p_integration text, p_now timestamptz, p_lease_until timestamptz)
RETURNS SETOF deliveries
LANGUAGE plpgsql AS $$
DECLARE
    v_cap integer;
    v_id text;
BEGIN
    IF p_lease_until IS NULL THEN
        RETURN;
    END IF;
    SELECT max_in_flight INTO v_cap FROM integrations WHERE id = p_integration AND active;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOR v_pass IN 1..2 LOOP
        IF v_pass = 2 THEN
            PERFORM pg_advisory_xact_lock(727002, hashtext(p_integration));
        END IF;
        IF (SELECT count(*) FROM deliveries WHERE integration_id = p_integration
                AND status = 'IN_FLIGHT' AND lease_until > p_now AND id <> p_settled)
                >= v_cap THEN
            RETURN;
        END IF;
        -- Planned for its values on each call, as in leadrelay_take.
        EXECUTE 'SELECT id FROM deliveries WHERE integration_id = $1
                AND status IN (''PENDING'', ''RETRY_SCHEDULED'') AND next_attempt_at <= $2
                AND id <> $3
                ORDER BY next_attempt_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED'
            INTO v_id USING p_integration, p_now, p_settled;
        IF v_id IS NOT NULL THEN
            RETURN QUERY UPDATE deliveries SET status = 'IN_FLIGHT',
                    lease_until = p_lease_until, next_attempt_at = NULL, updated_at = p_now
                WHERE id = v_id
                RETURNING *;
            RETURN;
        END IF;
    END LOOP;
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
            "DROP FUNCTION leadrelay_swap(text, text, timestamptz, timestamptz)",
        )
        .await
    }
}
