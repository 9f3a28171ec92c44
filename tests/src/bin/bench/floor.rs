//! The database floor: the statements the product runs per lead (intake, claim, settle
//! with its hand-off; copied from `api/src/intake.rs` and `worker/src/engine.rs`), run by a minimal
//! loop with the api's and the worker's pool sizes and as many tasks as the api's pool. No HTTP, no Redis: what
//! PostgreSQL on this machine allows, to compare the end-to-end rate with.

use crate::{Options, report::Figures, stack};
use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Utc};
use leadrelay_tests::database;
use leadrelay_worker::{engine::now, ids::new_id};
use sea_orm::sqlx::{
    PgPool, Row,
    postgres::{PgConnectOptions, PgPoolOptions},
    query,
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

/// The rows every lead refers to.
struct Fixture {
    tenant: String,
    list: String,
    token: String,
    integration: String,
    /// The list's `config_version` once its integration is in.
    version: i64,
}

const VERIFICATIONS: &str = r#"{"email_valid":null,"phone_valid":null,"cnpj_valid":null,"cnpj_status":null,"ip_risk_score":null,"ip_proxy":null,"ip_vpn":null}"#;

async fn fixture(pool: &PgPool, max_in_flight: u32) -> Result<Fixture> {
    let f = Fixture {
        tenant: new_id("ten"),
        list: new_id("list"),
        token: leadrelay_worker::ids::random_token(),
        integration: new_id("int"),
        version: 0,
    };
    query("INSERT INTO tenants (id, name, created_at) VALUES ($1, 'floor', now())")
        .bind(&f.tenant)
        .execute(pool)
        .await?;
    query(
        "INSERT INTO lists (id, tenant_id, name, active, inbound_token, default_phone_region, created_at) \
         VALUES ($1, $2, 'floor', true, $3, 'BR', now())",
    )
    .bind(&f.list)
    .bind(&f.tenant)
    .bind(&f.token)
    .execute(pool)
    .await?;
    query(
        "INSERT INTO integrations (id, tenant_id, list_id, name, kind, url, active, timeout_ms, \
         max_in_flight, created_at, updated_at, signing_secret) \
         VALUES ($1, $2, $3, 'floor', 'WEBHOOK', 'http://127.0.0.1:9/ok', true, 10000, $4, now(), now(), \
         'whsec_Zmxvb3JmbG9vcmZsb29yZmxvb3JmbG9vcmZsb29yZmw=')",
    )
    .bind(&f.integration)
    .bind(&f.tenant)
    .bind(&f.list)
    .bind(i32::try_from(max_in_flight).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    let version = query("SELECT config_version FROM lists WHERE id = $1")
        .bind(&f.list)
        .fetch_one(pool)
        .await?
        .try_get("config_version")?;
    Ok(Fixture { version, ..f })
}

/// Intake, with the list and its integrations known (the api keeps a copy): in one
/// statement the check that the list has not changed since, the duplicate check
/// (`leadrelay_dedupe`: the advisory locks on the lead's email and phone, then the lookup
/// of both, as a list's default rules have it), the lead (a duplicate if it found one)
/// and, unless it is a duplicate, its delivery; and whether the integration is full (the
/// product then pushes no job; the floor has none to push).
async fn intake(pool: &PgPool, f: &Fixture, i: u64) -> Result<String> {
    let now = now();
    let (lead, delivery) = (new_id("lead"), new_id("dlv"));
    let email = format!("lead{i}@example.com");
    let phone = format!("+55119{:08}", i % 100_000_000);
    let mut keys = [
        format!("{}:email:{email}", f.list),
        format!("{}:phone:{phone}", f.list),
    ];
    keys.sort_unstable();
    let original: Option<String> = query(
        "WITH found AS (SELECT leadrelay_dedupe(CAST($13 AS jsonb), $2, $3, $4, $6, $14) \
         AS original FROM lists WHERE id = $3 AND config_version = $15), \
         lead AS (INSERT INTO leads (id, tenant_id, list_id, email, name, phone, company, \
         custom_fields, verifications, score, status, reasons, duplicate_of, is_test, \
         source_ip, raw_body, created_at, qualified_at) \
         SELECT $1, $2, $3, $4, $5, $6, NULL, CAST($7 AS json), CAST($8 AS json), NULL, \
         CASE WHEN original IS NULL THEN 'QUALIFIED' ELSE 'DUPLICATE' END, \
         CASE WHEN original IS NULL THEN CAST('[]' AS jsonb) \
         ELSE jsonb_build_array(concat('duplicate of ', original)) END, original, \
         false, '127.0.0.1', $9, $10, CASE WHEN original IS NULL THEN $10 END FROM found \
         RETURNING duplicate_of), \
         queued AS (INSERT INTO deliveries (id, tenant_id, lead_id, list_id, integration_id, \
         status, attempt_count, next_attempt_at, lease_until, last_status_code, is_test, \
         endpoint, ladder_attempts, delivered_at, created_at, updated_at) \
         SELECT $11, $2, $1, $3, $12, 'PENDING', 0, $10, NULL, NULL, false, 'PRIMARY', 0, \
         NULL, $10, $10 FROM lead WHERE duplicate_of IS NULL) \
         SELECT duplicate_of, (SELECT string_agg(i.id, ',') FROM integrations AS i \
         WHERE i.id IN ($12) AND (NOT i.active OR (SELECT count(*) FROM deliveries AS d \
         WHERE d.integration_id = i.id AND d.status = 'IN_FLIGHT' AND d.lease_until > $10) \
         >= LEAST(i.max_in_flight, (SELECT sum(integration_share) FROM workers \
         WHERE last_seen_at >= $16)))) AS waiting_anyway FROM lead",
    )
    .bind(&lead)
    .bind(&f.tenant)
    .bind(&f.list)
    .bind(&email)
    .bind("Floor Lead")
    .bind(&phone)
    .bind("{}")
    .bind(VERIFICATIONS)
    .bind(format!(r#"{{"email":"{email}","name":"Floor Lead"}}"#))
    .bind(now)
    .bind(&delivery)
    .bind(&f.integration)
    .bind(serde_json::to_string(&keys)?)
    .bind(now - chrono::Duration::days(30))
    .bind(f.version)
    .bind(leadrelay_worker::heartbeat::live_since(now))
    .fetch_one(pool)
    .await?
    .try_get("duplicate_of")?;
    ensure!(
        original.is_none(),
        "the floor's lead {i} was taken for a duplicate"
    );
    Ok(delivery)
}

/// The joins of the engine's `with_context`: a taken row comes with its integration, its
/// lead and its list.
macro_rules! context {
    () => {
        "LEFT JOIN integrations AS i ON d.integration_id = i.id \
         LEFT JOIN leads AS l ON l.id = d.lead_id LEFT JOIN lists AS s ON s.id = d.list_id"
    };
}

/// Claim: the engine's claim of a fresh job (which names its integration) on
/// PostgreSQL: one call of `leadrelay_claim`, joined to what an attempt reads.
async fn claim(ledger: &PgPool, delivery: &str) -> Result<DateTime<Utc>> {
    let now = now();
    let taken = query(concat!(
        "SELECT * FROM leadrelay_claim($1, $2, $3) AS d ",
        context!()
    ))
    .bind(delivery)
    .bind(now)
    .bind(now + chrono::Duration::seconds(30))
    .fetch_optional(ledger)
    .await?;
    ensure!(taken.is_some(), "the floor lost a claim");
    Ok(now)
}

/// Settle: the row DELIVERED, the attempt and the hand-off of the freed slot to the
/// oldest waiting row in one statement, as the engine records them on PostgreSQL (the
/// integration's health is written at most once a second, as the engine does: not
/// here). With nothing waiting (one integration per task), the swap takes the
/// integration's turn and looks again, as in the product.
async fn settle(
    ledger: &PgPool,
    f: &Fixture,
    delivery: &str,
    claimed_at: DateTime<Utc>,
) -> Result<()> {
    let now = now();
    let recorded = query(concat!(
        "WITH settled AS (UPDATE deliveries SET status = 'DELIVERED', endpoint = 'PRIMARY', \
         ladder_attempts = 1, next_attempt_at = NULL, attempt_count = 1, lease_until = NULL, \
         last_status_code = 200, delivered_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'IN_FLIGHT' AND updated_at = $3 \
         RETURNING id, integration_id), \
         recorded AS (INSERT INTO delivery_attempts (id, tenant_id, delivery_id, number, \
         endpoint, url, request_headers, status_code, response_body, duration_ms, error_kind, \
         error, started_at) \
         SELECT $4, $5, id, 1, 'PRIMARY', 'http://127.0.0.1:9/ok', CAST($6 AS json), 200, \
         '{\"ok\":true}', 1, NULL, NULL, $1 FROM settled) \
         SELECT * FROM (SELECT swapped.* FROM settled LEFT JOIN LATERAL \
         (SELECT * FROM leadrelay_swap(settled.id, settled.integration_id, $1, $7)) AS swapped \
         ON TRUE) AS d ",
        context!()
    ))
    .bind(now)
    .bind(delivery)
    .bind(claimed_at)
    .bind(new_id("att"))
    .bind(&f.tenant)
    .bind(r#"[{"name":"content-type","value":"application/json"},{"name":"webhook-id","value":"dlv"}]"#)
    .bind(now + chrono::Duration::seconds(30))
    .fetch_all(ledger)
    .await?;
    ensure!(recorded.len() == 1, "the floor lost a lease");
    Ok(())
}

/// The two pools of the product: the api's (durable commits) and the worker's (the
/// engine's, whose commits do not wait for the WAL flush).
struct Pools {
    api: PgPool,
    ledger: PgPool,
}

async fn one_lead(pools: &Pools, f: &Fixture, i: u64) -> Result<()> {
    let delivery = intake(&pools.api, f, i).await?;
    let claimed_at = claim(&pools.ledger, &delivery).await?;
    settle(&pools.ledger, f, &delivery, claimed_at).await
}

/// One floor run on a fresh database: `floor_leads` leads through `api_pool` connections.
pub async fn run(options: &Options) -> Result<Figures> {
    let url = database::fresh().await;
    let result = async {
        let pool = PgPoolOptions::new()
            .max_connections(options.api_pool)
            .connect(&stack::local(&url))
            .await
            .context("connecting the floor's pool")?;
        let ledger = PgPoolOptions::new()
            .max_connections(options.worker_pool)
            .connect_with(
                stack::local(&url)
                    .parse::<PgConnectOptions>()?
                    .options([("synchronous_commit", "off")]),
            )
            .await
            .context("connecting the floor's ledger pool")?;
        let pools = Arc::new(Pools {
            api: pool.clone(),
            ledger,
        });
        // One list and integration per task: a hand-off then finds no other task's row,
        // and the floor has no integration lock to queue on (the product's single-integration
        // scenarios do), so it is the database's limit, not the engine's.
        let mut fixtures = Vec::new();
        for _ in 0..options.api_pool {
            fixtures.push(fixture(&pool, options.max_in_flight).await?);
        }
        let bar = crate::report::bar(options.floor_leads, "floor");
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for fixture in fixtures {
            let (pools, next, bar) = (pools.clone(), next.clone(), bar.clone());
            let leads = options.floor_leads;
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= leads {
                        return Ok::<_, anyhow::Error>(());
                    }
                    one_lead(&pools, &fixture, i).await?;
                    bar.inc(1);
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a floor task panicked")??;
        }
        let secs = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        pool.close().await;
        pools.ledger.close().await;
        let leads = options.floor_leads as f64;
        println!(
            "  floor: {leads} leads in {secs:.2} s = {:.0} leads/s",
            leads / secs
        );
        Ok(Figures::from([
            ("leads", leads),
            ("delivered", leads),
            ("lost", 0.0),
            ("duplicates", 0.0),
            ("leads_per_s", leads / secs),
        ]))
    }
    .await;
    stack::drop_database(&url).await?;
    result
}
