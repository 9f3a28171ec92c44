//! The scenarios of issue 5. The floor runs three times per invocation; every scenario
//! runs `--runs` times, each on a fresh stack, and is reported as the median with the
//! spread, relative to the floor.

use crate::{
    Neighbour, Options, Scenario, cpu, floor,
    load::{self, Pace},
    receiver::Receiver,
    report::{self, Figures, Report},
    stack::{self, Binaries, List, Setup, Stack, Tenant},
    transactions,
};
use anyhow::{Context, Result, bail, ensure};
use indicatif::ProgressBar;
use leadrelay_tests::database;
use sea_orm::sqlx::{Connection, PgConnection, query};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Timeout of the integrations whose receiver answers at once (the product's default).
const TIMEOUT_MS: u32 = 10_000;
/// Floor runs per invocation (the median is the floor).
const FLOOR_RUNS: usize = 3;

/// Runs `scenario` and writes the report; false when a chaos run lost a lead.
pub async fn run(scenario: Scenario, options: &Options) -> Result<bool> {
    ensure!(options.runs > 0, "--runs must be at least 1");
    ensure!(options.rate != Some(0), "--rate must be at least 1");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chosen = match scenario {
        Scenario::All => Scenario::EVERY.to_vec(),
        Scenario::Floor => Vec::new(),
        one => vec![one],
    };
    // Built (or found) first: a build that fails should fail before minutes of floor.
    let bins = if chosen.is_empty() {
        None
    } else {
        Some(Binaries::locate(options.prebuilt)?)
    };
    println!(
        "floor: {} leads × {FLOOR_RUNS} runs, {} connections",
        options.floor_leads, options.api_pool
    );
    let mut floor_runs = Vec::new();
    for _ in 0..FLOOR_RUNS {
        floor_runs.push(floor::run(options).await?);
    }
    let mut floor = Report {
        scenario: "floor",
        runs: floor_runs,
        floor: 0.0,
        derived: Figures::new(),
    };
    floor.floor = floor.median()["leads_per_s"];
    let floor_rate = floor.floor;
    let mut reports = vec![floor];
    for scenario in chosen {
        let Some(bins) = &bins else { break };
        let mut runs = Vec::new();
        for run in 1..=options.runs {
            println!("\n{} run {run}/{}", scenario.name(), options.runs);
            runs.push(run_once(scenario, bins, options).await?);
        }
        reports.push(Report {
            scenario: scenario.name(),
            runs,
            floor: floor_rate,
            derived: Figures::new(),
        });
    }
    relate_backlog_to_throughput(&mut reports);
    report::write(&reports, options, scenario == Scenario::All)?;
    let lost_in_chaos = reports
        .iter()
        .filter(|r| r.scenario == Scenario::Chaos.name())
        .flat_map(|r| &r.runs)
        .any(|run| run.get("lost").is_some_and(|lost| *lost > 0.0));
    Ok(!lost_in_chaos)
}

/// Backlog's `ratio_to_throughput`, when throughput ran in the same invocation.
fn relate_backlog_to_throughput(reports: &mut [Report]) {
    let find = |reports: &[Report], name: &str, figure: &str| {
        reports
            .iter()
            .find(|r| r.scenario == name)
            .and_then(|r| r.median().get(figure).copied())
    };
    let throughput = find(reports, "throughput", "leads_per_s");
    let drain = find(reports, "backlog", "drain_per_s");
    if let (Some(throughput), Some(drain)) = (throughput, drain)
        && throughput > 0.0
        && let Some(backlog) = reports.iter_mut().find(|r| r.scenario == "backlog")
    {
        backlog
            .derived
            .insert("ratio_to_throughput", drain / throughput);
    }
}

async fn run_once(scenario: Scenario, bins: &Binaries, options: &Options) -> Result<Figures> {
    let fastest = |default: u64| Pace::Fastest {
        leads: options.leads.unwrap_or(default),
        concurrency: options.concurrency,
    };
    let at_rate = |rate: u64, seconds: u64| Pace::Rate {
        per_s: options.rate.unwrap_or(rate),
        seconds: options.duration.unwrap_or(seconds),
    };
    match scenario {
        Scenario::Throughput => steady(bins, options, &paths(&["/ok"]), fastest(20_000)).await,
        Scenario::Latency => steady(bins, options, &paths(&["/ok"]), at_rate(500, 60)).await,
        Scenario::Fanout => {
            let fanout: Vec<String> = (0..10).map(|i| format!("/ok/{i}")).collect();
            steady(bins, options, &fanout, fastest(2_000)).await
        }
        Scenario::NoisyNeighbour => noisy_neighbour(bins, options, at_rate(200, 20)).await,
        Scenario::Backlog => backlog(bins, options, options.leads.unwrap_or(100_000)).await,
        Scenario::Chaos => chaos(bins, options, fastest(20_000)).await,
        Scenario::Floor | Scenario::All => bail!("{} is not a single run", scenario.name()),
    }
}

fn paths(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// Runs `body` on a fresh stack and receiver, and tears the stack down whatever happens.
async fn on_stack(
    bins: &Binaries,
    options: &Options,
    setup: Setup,
    body: impl AsyncFnOnce(&mut Stack, &Receiver) -> Result<Figures>,
) -> Result<Figures> {
    let receiver = Receiver::start().await?;
    let mut stack = Stack::start(bins, options, setup).await?;
    let result = body(&mut stack, &receiver).await;
    stack.teardown().await;
    result
}

/// A new tenant with one list and an integration to each of `paths` on the receiver
/// (`--max-in-flight`, a timeout of `timeout_ms`); returns the tenant, the list and the
/// integrations' ids.
async fn tenant_with(
    stack: &Stack,
    receiver: &Receiver,
    paths: &[String],
    options: &Options,
    timeout_ms: u32,
) -> Result<(Tenant, List, Vec<String>)> {
    let tenant = stack.sign_up("bench").await?;
    let list = stack.create_list(&tenant, "bench").await?;
    let mut integrations = Vec::new();
    for path in paths {
        integrations.push(
            stack
                .create_integration(
                    &tenant,
                    &list,
                    &receiver.url(path),
                    options.max_in_flight,
                    timeout_ms,
                )
                .await?,
        );
    }
    Ok((tenant, list, integrations))
}

/// Posts `--warm-up` leads to a tenant of their own as fast as the load's connections
/// allow, and waits for them to arrive: a fresh stack opens connections, prepares
/// statements and fills caches on its first leads, which would otherwise be the measured
/// run's slowest (about 100 ms for the first 150 ms of a fixed-rate run).
async fn warm_up(
    stack: &Stack,
    receiver: &Receiver,
    http: &reqwest::Client,
    options: &Options,
) -> Result<()> {
    if options.warm_up == 0 {
        return Ok(());
    }
    let warm = paths(&["/ok/warm-up"]);
    let (_, list, _) = tenant_with(stack, receiver, &warm, options, TIMEOUT_MS).await?;
    let pace = Pace::Fastest {
        leads: options.warm_up,
        concurrency: options.concurrency,
    };
    let bar = report::bar(options.warm_up, "warm-up");
    let sent = load::run(http, &list.inbound_url, &tag(), pace, &bar).await;
    let accepted = sent.iter().filter(|s| s.lead_id.is_ok()).count() as u64;
    let timeout = Duration::from_secs(options.drain_timeout);
    receiver
        .drain(&warm, accepted, timeout, &report::bar(accepted, "warmed"))
        .await;
    Ok(())
}

/// Posts leads to `list` at `pace`, waits until each arrived on every path (or the drain
/// deadline), and measures.
async fn deliver(
    http: &reqwest::Client,
    receiver: &Receiver,
    list: &List,
    paths: &[String],
    pace: Pace,
    options: &Options,
    posting: ProgressBar,
) -> Figures {
    let sent = load::run(http, &list.inbound_url, &tag(), pace, &posting).await;
    let expected = sent.iter().filter(|s| s.lead_id.is_ok()).count() as u64 * paths.len() as u64;
    let drain = report::bar(expected, "delivered");
    receiver
        .drain(
            paths,
            expected,
            Duration::from_secs(options.drain_timeout),
            &drain,
        )
        .await;
    if let Some(file) = &options.trace
        && let Err(e) = report::trace(file, &sent, receiver, paths)
    {
        eprintln!("bench: {e:#}");
    }
    report::measure(&sent, receiver, paths)
}

/// One tenant, one list, an integration per path; leads at `pace` (throughput, latency,
/// fanout).
async fn steady(
    bins: &Binaries,
    options: &Options,
    paths: &[String],
    pace: Pace,
) -> Result<Figures> {
    let setup = Setup {
        workers: options.workers,
        chaos: false,
    };
    on_stack(bins, options, setup, async |stack, receiver| {
        let (_, list, _) = tenant_with(stack, receiver, paths, options, TIMEOUT_MS).await?;
        let http = load::client(options.concurrency)?;
        warm_up(stack, receiver, &http, options).await?;
        let posting = report::bar(pace.leads(), "posted");
        let before = cpu::busy_ms();
        let transactions_per_lead = async {
            match pace {
                Pace::Rate { per_s, seconds } => {
                    let per_second = transactions::per_second(&stack.database_url, seconds);
                    per_second.await.map(|t| t / per_s as f64)
                }
                Pace::Fastest { .. } => None,
            }
        };
        let (mut figures, transactions_per_lead) = tokio::join!(
            deliver(&http, receiver, &list, paths, pace, options, posting),
            transactions_per_lead
        );
        if let Some(per_lead) = transactions_per_lead {
            figures.insert("db_transactions_per_lead", per_lead);
        }
        // The whole machine's CPU time from the first POST to the last arrival, per lead.
        let accepted = figures.get("accepted").copied().unwrap_or(0.0);
        if let (Some(before), Some(after)) = (before, cpu::busy_ms())
            && accepted > 0.0
        {
            figures.insert("cpu_ms_per_lead", (after - before) / accepted);
        }
        Ok(figures)
    })
    .await
}

/// Tenant B alone, then B beside tenant A whose receiver hangs until the timeout (or,
/// with `--neighbour ok`, answers at once); both post at `pace`. The figures are B's
/// beside A, plus B's p99 alone and the increase.
async fn noisy_neighbour(bins: &Binaries, options: &Options, pace: Pace) -> Result<Figures> {
    let b_paths = paths(&["/ok/b"]);
    let alone = steady(bins, options, &b_paths, pace).await?;
    let setup = Setup {
        workers: options.workers,
        chaos: false,
    };
    let mut beside = on_stack(bins, options, setup, async |stack, receiver| {
        let a_path = match options.neighbour {
            Neighbour::Hang => "/hang/a",
            Neighbour::Ok => "/ok/a",
        };
        let (_, a_list, _) = tenant_with(
            stack,
            receiver,
            &paths(&[a_path]),
            options,
            options.hang_timeout_ms,
        )
        .await?;
        let (_, b_list, _) = tenant_with(stack, receiver, &b_paths, options, TIMEOUT_MS).await?;
        let http = load::client(options.concurrency)?;
        warm_up(stack, receiver, &http, options).await?;
        let posting = report::bar(pace.leads(), "B posted");
        let (a_tag, a_bar) = (tag(), ProgressBar::hidden());
        let (mut b, a) = tokio::join!(
            deliver(&http, receiver, &b_list, &b_paths, pace, options, posting),
            load::run(&http, &a_list.inbound_url, &a_tag, pace, &a_bar),
        );
        // The control's A is answered in full; a hanging A never is.
        if options.neighbour == Neighbour::Ok {
            let accepted = a.iter().filter(|s| s.lead_id.is_ok()).count() as u64;
            let timeout = Duration::from_secs(options.drain_timeout);
            receiver
                .wait_for(|r| r.answered(a_path), accepted, timeout, &a_bar)
                .await;
        }
        b.insert("a_answered", receiver.answered(a_path) as f64);
        Ok(b)
    })
    .await?;
    let p99 = |f: &Figures| f.get("e2e_ms.p99").copied().unwrap_or(0.0);
    let (b_alone, b_beside) = (p99(&alone), p99(&beside));
    beside.insert("b_p99_alone_ms", b_alone);
    beside.insert("b_p99_with_a_ms", b_beside);
    if b_alone > 0.0 {
        beside.insert("p99_increase_pct", (b_beside / b_alone - 1.0) * 100.0);
    }
    Ok(beside)
}

/// `leads` leads with one PENDING due delivery each, written straight into the ledger
/// (the columns intake writes) while no worker runs.
async fn fill_ledger(
    database_url: &str,
    tenant: &Tenant,
    list: &List,
    integration: &str,
    leads: u64,
) -> Result<()> {
    let mut db = PgConnection::connect(&stack::local(database_url))
        .await
        .context("connecting to fill the ledger")?;
    let leads = i64::try_from(leads)?;
    query(
        "INSERT INTO leads (id, tenant_id, list_id, email, name, phone, company, custom_fields, \
         verifications, score, status, is_test, source_ip, raw_body, created_at, qualified_at) \
         SELECT 'lead_' || lpad(to_hex(g), 32, '0'), $1, $2, 'backlog' || g || '@example.com', \
         'Lead ' || g, '+5511999999999', NULL, '{}'::json, \
         '{\"email_valid\":null,\"phone_valid\":null,\"cnpj_valid\":null,\"cnpj_status\":null,\
         \"ip_risk_score\":null,\"ip_proxy\":null,\"ip_vpn\":null}'::json, NULL, 'QUALIFIED', false, \
         '127.0.0.1', '{\"email\":\"backlog' || g || '@example.com\"}', now(), now() \
         FROM generate_series(1, $3) AS g",
    )
    .bind(&tenant.id)
    .bind(&list.id)
    .bind(leads)
    .execute(&mut db)
    .await
    .context("inserting the backlog's leads")?;
    query(
        "INSERT INTO deliveries (id, tenant_id, lead_id, list_id, integration_id, status, \
         attempt_count, next_attempt_at, lease_until, last_status_code, is_test, endpoint, \
         ladder_attempts, delivered_at, created_at, updated_at) \
         SELECT 'dlv_' || lpad(to_hex(g), 32, '0'), $1, 'lead_' || lpad(to_hex(g), 32, '0'), $2, $3, \
         'PENDING', 0, now(), NULL, NULL, false, 'PRIMARY', 0, NULL, now(), now() \
         FROM generate_series(1, $4) AS g",
    )
    .bind(&tenant.id)
    .bind(&list.id)
    .bind(integration)
    .bind(leads)
    .execute(&mut db)
    .await
    .context("inserting the backlog's deliveries")?;
    db.close().await?;
    Ok(())
}

/// `leads` due deliveries in the ledger and no worker; then the workers start and the
/// sweeper finds the rows (no job is in Redis). Measures the time to empty it.
async fn backlog(bins: &Binaries, options: &Options, leads: u64) -> Result<Figures> {
    let setup = Setup {
        workers: 0,
        chaos: false,
    };
    on_stack(bins, options, setup, async |stack, receiver| {
        let ok = paths(&["/ok"]);
        let (tenant, list, integrations) =
            tenant_with(stack, receiver, &ok, options, TIMEOUT_MS).await?;
        fill_ledger(&stack.database_url, &tenant, &list, &integrations[0], leads).await?;
        let started = Instant::now();
        for _ in 0..options.workers.max(1) {
            stack.start_worker().await?;
        }
        let drain = report::bar(leads, "drained");
        receiver
            .drain(
                &ok,
                leads,
                Duration::from_secs(options.drain_timeout),
                &drain,
            )
            .await;
        let arrivals = receiver.arrivals("/ok");
        let delivered = arrivals.len() as f64;
        let drain_s = arrivals
            .values()
            .max()
            .map_or(0.0, |last| last.duration_since(started).as_secs_f64());
        let drain_per_s = if drain_s > 0.0 {
            delivered / drain_s
        } else {
            0.0
        };
        println!("  backlog: {delivered} of {leads} in {drain_s:.2} s = {drain_per_s:.0}/s");
        Ok(Figures::from([
            ("leads", leads as f64),
            ("accepted", leads as f64),
            ("delivered", delivered),
            ("lost", leads as f64 - delivered),
            ("duplicates", receiver.duplicates("/ok") as f64),
            ("leads_per_s", drain_per_s),
            ("drain_per_s", drain_per_s),
            ("drain_s", drain_s),
        ]))
    })
    .await
}

/// Throughput on a private Redis with two or more workers, a 3 s lease and a 1 s sweep,
/// while a worker is SIGKILLed (and replaced) every `--kill-every` seconds, Redis is
/// flushed at a third of the load and the database backends are killed at two thirds.
async fn chaos(bins: &Binaries, options: &Options, pace: Pace) -> Result<Figures> {
    let setup = Setup {
        workers: options.workers.max(2),
        chaos: true,
    };
    on_stack(bins, options, setup, async |stack, receiver| {
        let ok = paths(&["/ok"]);
        let (_, list, _) = tenant_with(stack, receiver, &ok, options, TIMEOUT_MS).await?;
        let http = load::client(options.concurrency)?;
        let posting = report::bar(pace.leads(), "posted");
        let (stop, stopped) = oneshot::channel();
        let delivering = async {
            let figures =
                deliver(&http, receiver, &list, &ok, pace, options, posting.clone()).await;
            let _ = stop.send(());
            figures
        };
        let (mut figures, events) = tokio::join!(
            delivering,
            disturb(stack, &posting, pace.leads(), options, stopped)
        );
        let events = events?;
        let delivered = figures.get("delivered").copied().unwrap_or(0.0);
        let duplicates = figures.get("duplicates").copied().unwrap_or(0.0);
        figures.insert("kills", events.kills.len() as f64);
        if delivered > 0.0 {
            figures.insert("duplicates_pct", duplicates / delivered * 100.0);
        }
        // A kill re-sends what its worker had sent but not yet recorded: each duplicate's
        // first copy should have arrived just before a kill, or just after one on a
        // connection that carried nothing more (its sender died; the receiver, as busy
        // as the rest of the machine, took the request off the socket late). The others
        // are put down to the flush or the killed backends when one came within the
        // window after.
        let mut widest = None;
        let (mut after_a_kill, mut far, mut before_flush, mut before_backends) =
            (0.0, 0.0, 0.0, 0.0);
        for repeated in receiver.repeated("/ok") {
            let first = repeated.first;
            if let Some(gap) = within_window(first, events.kills.iter().copied()) {
                widest = widest.max(Some(gap));
                continue;
            }
            let sender_died = repeated.connection_last_used == first;
            if sender_died
                && events
                    .kills
                    .iter()
                    .any(|&kill| within_window(kill, [first]).is_some())
            {
                after_a_kill += 1.0;
                continue;
            }
            far += 1.0;
            eprintln!(
                "duplicate far from a kill: first copy at {:.3} s (its connection's last request at {:.3} s), flush at {:?}, backends killed at {:?}",
                (first - events.start).as_secs_f64(),
                (repeated.connection_last_used - events.start).as_secs_f64(),
                events.flushed.map(|at| (at - events.start).as_secs_f64()),
                events.terminated.map(|at| (at - events.start).as_secs_f64()),
            );
            if within_window(first, events.flushed).is_some() {
                before_flush += 1.0;
            }
            if within_window(first, events.terminated).is_some() {
                before_backends += 1.0;
            }
        }
        figures.insert("duplicates_just_after_a_kill", after_a_kill);
        figures.insert("duplicates_far_from_a_kill", far);
        figures.insert("duplicates_before_the_flush", before_flush);
        figures.insert("duplicates_before_the_backends_died", before_backends);
        if let Some(widest) = widest {
            figures.insert("duplicate_before_kill_ms_max", widest.as_secs_f64() * 1000.0);
        }
        Ok(figures)
    })
    .await
}

/// The gap from `first` to the first of `events` at or after it, if within [`KILL_WINDOW`]
/// (`within_window(kill, [first])`: `first` came within the window after `kill`).
fn within_window(first: Instant, events: impl IntoIterator<Item = Instant>) -> Option<Duration> {
    events
        .into_iter()
        .filter(|&at| at >= first)
        .map(|at| at - first)
        .min()
        .filter(|gap| *gap <= KILL_WINDOW)
}

/// How long before a kill a duplicated lead's first copy may have arrived for the kill to
/// explain the duplicate: far more than a delivery's answer and its record take.
const KILL_WINDOW: Duration = Duration::from_secs(1);

/// When the chaos events happened.
struct Events {
    start: Instant,
    kills: Vec<Instant>,
    flushed: Option<Instant>,
    terminated: Option<Instant>,
}

/// The chaos events, until `stop`.
async fn disturb(
    stack: &mut Stack,
    posted: &ProgressBar,
    leads: u64,
    options: &Options,
    mut stop: oneshot::Receiver<()>,
) -> Result<Events> {
    let every = Duration::from_secs(options.kill_every);
    let start = Instant::now();
    let mut events = Events {
        start,
        kills: Vec::new(),
        flushed: None,
        terminated: None,
    };
    let mut last_kill = start;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(events),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let position = posted.position();
        if events.flushed.is_none() && position * 3 >= leads {
            events.flushed = Some(Instant::now());
            stack.flush_redis().await;
        }
        if events.terminated.is_none() && position * 3 >= leads * 2 {
            events.terminated = Some(Instant::now());
            database::terminate_backends(&stack.database_url).await;
        }
        if last_kill.elapsed() >= every {
            events.kills.push(Instant::now());
            stack.kill_worker().await?;
            stack.start_worker().await?;
            last_kill = Instant::now();
        }
    }
}
