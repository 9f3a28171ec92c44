//! Durability on the real stack (ARCHITECTURE §5): the ledger, not Redis and not a worker
//! process, is what keeps a lead. A worker killed mid-delivery, a flushed or stopped Redis,
//! dropped database connections and a worker stopping under load never lose a lead, and
//! cost at most a few duplicates (which the `webhook-id` header lets receivers drop).
//!
//! Each test has its own database; the tests that disturb Redis start a private
//! `redis-server`, and database backends are terminated by this test's database name only.

use futures::{StreamExt, stream};
use leadrelay_tests::{
    ListInfo, Mode, Received, Receiver, RedisServer, Session, TestApp, database, eventually,
};
use serde_json::json;
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

/// Short lease and sweep interval, so a dead worker's rows come back within seconds.
const FAST_API: [&str; 6] = [
    "--allow-insecure-targets",
    "true",
    "--lease",
    "3s",
    "--sweep-interval",
    "1s",
];
/// The same settings for `leadrelay-worker` processes.
const FAST_WORKER: [(&str, &str); 2] = [
    ("LEADRELAY_LEASE", "3s"),
    ("LEADRELAY_SWEEP_INTERVAL", "1s"),
];

/// A tenant with one list delivering to `receiver` with at most `max_in_flight`
/// deliveries in flight at once.
async fn list_to(app: &TestApp, receiver: &Receiver, max_in_flight: i32) -> (Session, ListInfo) {
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Durable").await;
    let integration = app
        .create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!, $n: Int!) { updateIntegration(id: $id, input: { maxInFlight: $n }) { id } }",
        json!({ "id": integration, "n": max_in_flight }),
    )
    .await;
    (owner, list)
}

/// When each lead first reached the receiver.
fn first_arrivals(receiver: &Receiver) -> HashMap<String, Instant> {
    let mut first = HashMap::new();
    for request in receiver.requests() {
        let lead_id = request.json()["lead"]["id"]
            .as_str()
            .expect("lead.id")
            .to_owned();
        first
            .entry(lead_id)
            .and_modify(|at: &mut Instant| *at = (*at).min(request.at))
            .or_insert(request.at);
    }
    first
}

/// The distinct deliveries among the receiver's requests (their `webhook-id`).
fn webhook_ids(requests: &[Received]) -> HashSet<String> {
    requests
        .iter()
        .map(|r| r.header("webhook-id").expect("webhook-id").to_owned())
        .collect()
}

/// An api (without a worker of its own) on a private Redis, and a receiver that answers
/// each request after `delay`.
async fn on_private_redis(delay: Duration) -> (RedisServer, TestApp, Receiver) {
    let redis = RedisServer::start().await;
    let app = TestApp::start_on_redis(Mode::ProductionNoWorker, &redis.url(), &FAST_API).await;
    let receiver = Receiver::start().await;
    receiver.delay_by(delay);
    (redis, app, receiver)
}

/// Waits until every lead of `lead_ids` reached the receiver and every delivery row is
/// DELIVERED (the ledger agrees with the receiver).
async fn wait_until_all_delivered(
    app: &TestApp,
    receiver: &Receiver,
    lead_ids: &HashSet<String>,
    timeout: Duration,
) {
    eventually("every lead at the receiver", timeout, || async {
        let arrived = first_arrivals(receiver);
        lead_ids
            .iter()
            .all(|id| arrived.contains_key(id))
            .then_some(())
    })
    .await;
    eventually("every delivery row DELIVERED", timeout, || async {
        (app.count_where("deliveries", "status <> 'DELIVERED'").await == 0).then_some(())
    })
    .await;
    assert_eq!(app.count_rows("deliveries").await, lead_ids.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lead_is_lost_when_a_worker_redis_and_the_database_connections_die_mid_run() {
    const LEADS: usize = 300;
    // Slow while the load builds, so the chaos strikes mid-run however fast this machine
    // posts; quick afterwards, so the recovery time measures the engine, not the receiver.
    let (redis, app, receiver) = on_private_redis(Duration::from_millis(200)).await;
    // Only what was in flight (sent, not yet recorded) can be sent twice: the killed
    // worker's deliveries and those whose database connection or Redis poll was cut. The
    // integration's cap bounds them together: 2 in flight leaves room within the 1 %.
    let (_owner, list) = list_to(&app, &receiver, 2).await;
    let mut victim = app.spawn_worker_with(&FAST_WORKER).await;
    let _survivor = app.spawn_worker_with(&FAST_WORKER).await;

    let lead_ids = app.post_leads(&list.inbound_url, LEADS).await;
    assert_eq!(lead_ids.len(), LEADS);
    receiver.wait_for(LEADS / 10, Duration::from_secs(60)).await;

    // Everything at once: a worker dies mid-delivery, Redis forgets every job, and every
    // connection to this test's database drops.
    let killed_at = Instant::now();
    victim.kill().await;
    redis.flushdb().await;
    let terminated = database::terminate_backends(&app.database_url).await;
    let delivered_before = first_arrivals(&receiver).len();
    assert!(
        delivered_before < LEADS,
        "the chaos must strike mid-run; all {LEADS} leads were already delivered"
    );
    receiver.delay_by(Duration::from_millis(20));
    let _replacement = app.spawn_worker_with(&FAST_WORKER).await;

    wait_until_all_delivered(&app, &receiver, &lead_ids, Duration::from_secs(120)).await;
    let arrived = first_arrivals(&receiver);
    let last = arrived.values().max().expect("deliveries");
    let requests = receiver.requests().len();
    let lost = lead_ids
        .iter()
        .filter(|id| !arrived.contains_key(*id))
        .count();
    let duplicates = requests - arrived.len();
    println!(
        "crash: leads={LEADS} delivered={} lost={lost} duplicates={duplicates} \
         delivered_before_kill={delivered_before} backends_terminated={terminated} \
         seconds_from_kill_to_last_delivery={:.1}",
        arrived.len(),
        last.saturating_duration_since(killed_at).as_secs_f64(),
    );
    assert_eq!(lost, 0);
    assert!(
        duplicates * 100 <= LEADS,
        "{duplicates} duplicates for {LEADS} leads (more than 1 %)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_sends_no_delivery_twice() {
    const LEADS: usize = 4;
    // Every delivery is still waiting on the receiver when Redis loses the worker's jobs.
    let (redis, app, receiver) = on_private_redis(Duration::from_secs(1)).await;
    let (_owner, list) = list_to(&app, &receiver, LEADS as i32).await;
    let _worker = app.spawn_worker_with(&FAST_WORKER).await;

    let lead_ids = app.post_leads(&list.inbound_url, LEADS).await;
    receiver.wait_for(LEADS, Duration::from_secs(20)).await;
    // apalis drops a worker whose registration vanished, and the jobs it was running
    // with it: a delivery cancelled there, after its POST, was sent again once its
    // lease ended.
    redis.flushdb().await;

    wait_until_all_delivered(&app, &receiver, &lead_ids, Duration::from_secs(30)).await;
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        webhook_ids(&requests).len(),
        "each delivery is sent once: it finished and was recorded"
    );
    assert_eq!(
        app.count_rows("delivery_attempts").await,
        LEADS as i64,
        "one attempt per delivery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_accepted_while_redis_is_down_is_delivered_when_it_returns() {
    let mut redis = RedisServer::start().await;
    let app = TestApp::start_on_redis(Mode::Production, &redis.url(), &FAST_API).await;
    let receiver = Receiver::start().await;
    let (owner, list) = list_to(&app, &receiver, 8).await;

    redis.stop().await;
    let posted_at = Instant::now();
    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({ "email": "outage@example.com" }))
        .await;
    assert_eq!(status, 202, "{answer}");
    let intake = posted_at.elapsed();
    // Redis is the fast path, not the ledger: a sender with a short timeout gets its
    // answer (the push is abandoned after a second; it waited out ~9 s of reconnects).
    assert!(intake < Duration::from_secs(3), "intake took {intake:?}");
    let lead_id = answer["lead_id"].as_str().expect("lead_id");
    let deliveries = app.lead_deliveries(&owner, lead_id).await;
    assert_eq!(deliveries.len(), 1, "the delivery is in the ledger");
    let delivery = app.delivery(&owner, &deliveries[0]).await;
    assert_eq!(delivery["status"], "PENDING");
    assert!(receiver.requests().is_empty(), "nothing delivered yet");

    redis.restart().await;
    let restarted_at = Instant::now();
    let received = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(received[0].json()["lead"]["id"], lead_id);
    println!(
        "redis outage: intake_seconds={:.1} seconds_from_restart_to_delivery={:.1}",
        intake.as_secs_f64(),
        received[0]
            .at
            .saturating_duration_since(restarted_at)
            .as_secs_f64()
    );
    app.wait_for_delivery(&owner, &deliveries[0], "DELIVERED")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopping_under_load_hands_back_what_it_could_not_finish() {
    const LEADS: usize = 48;
    let app = TestApp::start(Mode::ProductionNoWorker, &FAST_API).await;
    let receiver = Receiver::start().await;
    receiver.delay_by(Duration::from_millis(500));
    let (_owner, list) = list_to(&app, &receiver, 8).await;
    let mut env = FAST_WORKER.to_vec();
    env.push(("LEADRELAY_SHUTDOWN_GRACE", "100ms"));
    let mut leaving = app.spawn_worker_with(&env).await;

    let lead_ids = app.post_leads(&list.inbound_url, LEADS).await;
    // The leaving worker is alone: once a request arrives, it has deliveries in flight,
    // each answered only after 500 ms, longer than its grace.
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let _staying = app.spawn_worker_with(&FAST_WORKER).await;
    // Stopped just after a request went out, so it is still waiting on the receiver when
    // the grace ends: stopped as a batch of answers came back, the worker hands nothing
    // on and has nothing left to hand back.
    let seen = receiver.requests().len();
    receiver.wait_for(seen + 1, Duration::from_secs(20)).await;
    let terminated_at = Instant::now();
    leaving.terminate();
    let status = leaving.wait_for_exit(Duration::from_secs(10)).await;
    let exit_after = terminated_at.elapsed();
    assert!(status.success(), "the worker exits cleanly: {status}");
    assert_eq!(
        app.count_where(
            "deliveries",
            "status = 'IN_FLIGHT' AND (lease_until IS NULL OR lease_until < now())"
        )
        .await,
        0,
        "nothing is left in flight without a live lease"
    );

    wait_until_all_delivered(&app, &receiver, &lead_ids, Duration::from_secs(60)).await;
    let requests = receiver.requests();
    let handed_back = requests.len() - webhook_ids(&requests).len();
    println!(
        "shutdown: leads={LEADS} requests={} handed_back_and_resent={handed_back} \
         exited_after_ms={}",
        requests.len(),
        exit_after.as_millis()
    );
    assert!(
        handed_back > 0,
        "deliveries still waiting on the receiver after the grace are handed back and sent \
         again by the other worker (same webhook-id)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_answers_503_not_500_while_the_database_drops_its_connections() {
    const LEADS: usize = 400;
    let app = TestApp::start(Mode::ProductionNoWorker, &FAST_API).await;
    let receiver = Receiver::start().await;
    let (_owner, list) = list_to(&app, &receiver, 8).await;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let database_url = app.database_url.clone();
    // Every connection of this test's database dropped again and again while leads arrive.
    let killer = tokio::spawn(async move {
        let mut terminated = 0;
        while !*stopped.borrow_and_update() {
            terminated += database::terminate_backends(&database_url).await;
            let _ = tokio::time::timeout(Duration::from_millis(5), stopped.changed()).await;
        }
        terminated
    });
    let http = reqwest::Client::new();
    let answers: Vec<(u16, Option<String>, serde_json::Value)> = stream::iter(0..LEADS)
        .map(|i| {
            let (http, url) = (http.clone(), list.inbound_url.clone());
            async move {
                let response = http
                    .post(&url)
                    .json(&json!({ "email": format!("lead{i}@example.com") }))
                    .send()
                    .await
                    .expect("inbound request");
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                (
                    status,
                    retry_after,
                    response.json().await.unwrap_or_default(),
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    stop.send(true).expect("stop the killer");
    let terminated = killer.await.expect("killer");

    let count = |status: u16| answers.iter().filter(|(s, ..)| *s == status).count();
    println!(
        "leads={LEADS} accepted={} unavailable={} backends_terminated={terminated}",
        count(202),
        count(503)
    );
    assert!(terminated > 0, "no backend was terminated");
    for (status, retry_after, answer) in &answers {
        match status {
            202 => {}
            503 => {
                assert_eq!(answer["code"], "UNAVAILABLE", "{answer}");
                assert_eq!(retry_after.as_deref(), Some("1"), "{answer}");
            }
            other => panic!("intake answered {other}: {answer}"),
        }
    }
    // Every accepted lead is stored.
    let accepted: Vec<&str> = answers
        .iter()
        .filter(|(s, ..)| *s == 202)
        .filter_map(|(_, _, answer)| answer["lead_id"].as_str())
        .collect();
    assert_eq!(accepted.len(), count(202));
    for id in accepted {
        assert_eq!(
            app.count_where("leads", &format!("id = '{id}'")).await,
            1,
            "accepted lead {id} is stored"
        );
    }
}
