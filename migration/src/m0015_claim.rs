//! `leadrelay_claim` (PostgreSQL only): a fresh job's claim in one call, without reading
//! the row first. The job names its delivery; the function locks the row, checks that it
//! is waiting and due, and takes one of its integration's in-flight slots for it under
//! the integration's turn, as `leadrelay_take` (m0010) does for a row the worker read.
//! A claim was two round trips per delivery (the read, then the take); now it is one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Arguments: the delivery, now, and the lease's end. Returns the row taken (IN_FLIGHT
/// under the new lease); the row unchanged when it is waiting but not due yet, so the
/// caller can wait for it; or nothing: the row is gone, held by a settling worker,
/// finished, under a live lease, its integration is paused (a test row goes anyway) or
/// gone, or the integration's rows under a live lease fill `max_in_flight`. The row's
/// lock comes before the integration's turn, as in `leadrelay_take` and a settle, so
/// the three never deadlock; holding it from the check to the UPDATE, nothing can change
/// the row in between.
const CREATE: &str = r"
CREATE FUNCTION leadrelay_claim(p_delivery text, p_now timestamptz, p_lease_until timestamptz)
RETURNS SETOF deliveries
LANGUAGE plpgsql ROWS 1 AS $$
DECLARE
    v_row deliveries;
    v_cap integer;
    v_active boolean;
BEGIN
    SELECT * INTO v_row FROM deliveries WHERE id = p_delivery FOR NO KEY UPDATE SKIP LOCKED;
    IF NOT FOUND
            OR v_row.status NOT IN ('PENDING', 'RETRY_SCHEDULED', 'IN_FLIGHT')
            OR (v_row.status = 'IN_FLIGHT' AND v_row.lease_until > p_now) THEN
        RETURN;
    END IF;
    IF v_row.next_attempt_at > p_now THEN
        RETURN NEXT v_row;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(727002, hashtext(v_row.integration_id));
    SELECT max_in_flight, active INTO v_cap, v_active
        FROM integrations WHERE id = v_row.integration_id;
    IF NOT FOUND OR NOT (v_active OR v_row.is_test)
            OR (SELECT count(*) FROM deliveries WHERE integration_id = v_row.integration_id
                AND status = 'IN_FLIGHT' AND lease_until > p_now) >= v_cap THEN
        RETURN;
    END IF;
    RETURN QUERY UPDATE deliveries SET status = 'IN_FLIGHT', lease_until = p_lease_until,
            next_attempt_at = NULL, updated_at = p_now
        WHERE id = p_delivery
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
            "DROP FUNCTION leadrelay_claim(text, timestamptz, timestamptz)",
        )
        .await
    }
}
