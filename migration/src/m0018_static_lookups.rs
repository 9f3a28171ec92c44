//! The duplicate lookup of `leadrelay_dedupe` (m0013) and the hand-off lookup of
//! `leadrelay_swap` (m0016) become static statements, planned once per session instead
//! of parsed and planned on every call (`EXECUTE`). That was most of each function's
//! time: 0.25 ms a call of `leadrelay_dedupe` against 0.04 ms static, on the bench's
//! machine; intake runs it for every lead and a settle runs the swap for every delivery.
//!
//! `EXECUTE` was there because a cached generic plan could take the wrong index. Both
//! functions now run with `enable_sort = off`, and each lookup has one index that gives
//! its order without a sort, whatever the statistics said when the plan was made:
//! - each duplicate lookup (one key, the list, the window, oldest first) is served by its
//!   own index (`list_id`, key, `created_at`);
//! - the hand-off bounds `(integration_id, next_attempt_at)` as one row value and orders
//!   by both columns: only `ix_deliveries_waiting` gives that order. Written as
//!   `integration_id = $1 … ORDER BY next_attempt_at`, a generic plan made while
//!   `deliveries` was empty walked `ix_deliveries_due` (every integration's waiting rows)
//!   and filtered on the integration: 41 ms behind another integration's 95,000 rows.
//!   Without `enable_sort = off`, a plan read every row of the integration, delivered
//!   ones too, through `ix_deliveries_integration` and sorted the few waiting: 3.3 ms a
//!   call on average after a minute at 200 leads/s.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// m0013's duplicate lookup, static.
const DEDUPE_STATIC: &str = r"SELECT id INTO v_id FROM (
            (SELECT id, created_at FROM leads WHERE tenant_id = p_tenant AND list_id = p_list
                AND email = p_email AND created_at >= p_since AND is_test = false
                AND status <> 'DUPLICATE' ORDER BY created_at LIMIT 1)
            UNION ALL
            (SELECT id, created_at FROM leads WHERE tenant_id = p_tenant AND list_id = p_list
                AND phone = p_phone AND created_at >= p_since AND is_test = false
                AND status <> 'DUPLICATE' ORDER BY created_at LIMIT 1)
        ) AS found ORDER BY created_at LIMIT 1;";

/// m0016's hand-off lookup, static, in a form only `ix_deliveries_waiting` serves.
const SWAP_STATIC: &str = r"SELECT id INTO v_id FROM deliveries
            WHERE (integration_id, next_attempt_at) >= (p_integration, '-infinity')
                AND (integration_id, next_attempt_at) <= (p_integration, p_now)
                AND status IN ('PENDING', 'RETRY_SCHEDULED') AND id <> p_settled
            ORDER BY integration_id, next_attempt_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;";

/// The functions as m0013 and m0016 left them, each with its signature and the static
/// lookup that replaces its one `EXECUTE`.
fn functions() -> [(String, &'static str, &'static str); 2] {
    [
        (
            crate::m0013_dedupe::CREATE.replacen(
                "CREATE FUNCTION",
                "CREATE OR REPLACE FUNCTION",
                1,
            ),
            "leadrelay_dedupe(jsonb, text, text, text, text, timestamptz)",
            DEDUPE_STATIC,
        ),
        (
            crate::m0016_swap_turn_first::REPLACE.to_owned(),
            "leadrelay_swap(text, text, timestamptz, timestamptz)",
            SWAP_STATIC,
        ),
    ]
}

/// `function` with its one `EXECUTE … USING …;` replaced by `fixed`; an error if it has
/// none.
fn with_static_lookup(function: &str, fixed: &str) -> Result<String, DbErr> {
    let found = function.find("EXECUTE '").and_then(|start| {
        let using = start + function[start..].find("USING")?;
        Some((start, using + function[using..].find(';')?))
    });
    let Some((start, end)) = found else {
        return Err(DbErr::Migration(format!(
            "m0018: no EXECUTE to replace in {}",
            function.lines().nth(1).unwrap_or_default()
        )));
    };
    Ok(format!(
        "{}{fixed}{}",
        &function[..start],
        &function[end + 1..]
    ))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (function, signature, fixed) in functions() {
            crate::on_postgres(m, &with_static_lookup(&function, fixed)?).await?;
            crate::on_postgres(
                m,
                &format!("ALTER FUNCTION {signature} SET enable_sort = off"),
            )
            .await?;
        }
        Ok(())
    }

    /// Back to m0013's and m0016's functions, with the planner's settings of the session.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (function, signature, _) in functions() {
            crate::on_postgres(m, &format!("ALTER FUNCTION {signature} RESET enable_sort")).await?;
            crate::on_postgres(m, &function).await?;
        }
        Ok(())
    }
}
