//! `leadrelay_claim` (PostgreSQL only): a fresh job's claim in one call, without reading
//! the row first. The job names its delivery; the function locks the row, checks that it
//! is waiting and due, and takes one of its integration's in-flight slots for it with
//! `leadrelay_take` (m0010), as for a row the worker read.
//! A claim was two round trips per delivery (the read, then the take); now it is one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Arguments: the delivery, now, and the lease's end. Returns the row taken (IN_FLIGHT
/// under the new lease); the row unchanged when it is waiting but not due yet, so the
/// caller can wait for it; or nothing: the row is gone, held by a settling worker,
/// finished or under a live lease, or `leadrelay_take` finds its integration paused (a
/// test row goes anyway), gone or at `max_in_flight`. The row is locked before the
/// integration's turn, as `leadrelay_take` and a settle do, so none of them deadlock;
/// holding it until the take, nothing changes the row between the check and the UPDATE.
const CREATE: &str = r"
CREATE FUNCTION leadrelay_claim(p_delivery text, p_now timestamptz, p_lease_until timestamptz)
RETURNS SETOF deliveries
LANGUAGE plpgsql ROWS 1 AS $$
DECLARE
    v_row deliveries;
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
    RETURN QUERY SELECT * FROM leadrelay_take(v_row.integration_id, p_delivery,
        v_row.status::text, v_row.updated_at, p_now, p_lease_until);
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
