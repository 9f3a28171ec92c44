//! `leadrelay_swap` (PostgreSQL only): a settling delivery hands its in-flight slot to
//! its integration's oldest due waiting row inside the settle's own statement. One row
//! leaves IN_FLIGHT and one enters it in the same transaction, so the integration's
//! in-flight count never rises and the swap needs no turn on the integration's advisory
//! lock (`leadrelay_take`, m0010): under a backlog a delivery's settle and hand-off are
//! one round trip, and hand-offs no longer queue behind claims. When it finds nothing
//! the engine hands off with `leadrelay_take` after the commit as before, which sees
//! every row a claim left waiting while this one held the slot.

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
/// one else holds.
const CREATE: &str = r"
CREATE FUNCTION leadrelay_swap(
    p_settled text, p_integration text, p_now timestamptz, p_lease_until timestamptz)
RETURNS SETOF deliveries
LANGUAGE plpgsql AS $$
DECLARE
    v_id text;
BEGIN
    IF p_lease_until IS NULL OR NOT EXISTS (SELECT 1 FROM integrations i
            WHERE i.id = p_integration AND i.active
            AND (SELECT count(*) FROM deliveries WHERE integration_id = p_integration
                AND status = 'IN_FLIGHT' AND lease_until > p_now AND id <> p_settled)
                < i.max_in_flight) THEN
        RETURN;
    END IF;
    -- Planned for its values on each call, as in leadrelay_take.
    EXECUTE 'SELECT id FROM deliveries WHERE integration_id = $1
            AND status IN (''PENDING'', ''RETRY_SCHEDULED'') AND next_attempt_at <= $2
            AND id <> $3
            ORDER BY next_attempt_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED'
        INTO v_id USING p_integration, p_now, p_settled;
    RETURN QUERY UPDATE deliveries SET status = 'IN_FLIGHT', lease_until = p_lease_until,
            next_attempt_at = NULL, updated_at = p_now
        WHERE id = v_id
        RETURNING *;
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
