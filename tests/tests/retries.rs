//! The delivery engine's ladder on the real stack (PostgreSQL + Redis, ladders in
//! seconds): transient failures retry at the ladder's spacing, configuration errors fail
//! at once, the fallback takes over, and finished deliveries can be resent.

use leadrelay_tests::{Mode, Receiver, Session, TestApp, eventually};
use leadrelay_worker::queue::{DeliverLead, Queue};
use serde_json::{Value, json};
use std::time::Duration;

async fn app_with_ladder(ladder: &str) -> TestApp {
    app_with_ladder_and(ladder, &[]).await
}

/// An app with `ladder` and the `extra` arguments.
async fn app_with_ladder_and(ladder: &str, extra: &[&str]) -> TestApp {
    let mut args = vec!["--allow-insecure-targets", "true", "--retry-ladder", ladder];
    args.extend(extra);
    TestApp::start(Mode::Production, &args).await
}

/// Creates a list with one integration (extra `input` fields merged) and posts a lead;
/// returns the delivery id.
async fn one_delivery(app: &TestApp, owner: &Session, input: Value) -> (String, String) {
    let list = app.create_list(owner, "Retries").await;
    let mut full = json!({ "listId": list.id });
    full.as_object_mut()
        .unwrap()
        .extend(input.as_object().unwrap().clone());
    let integration = app.create_integration_with(owner, full).await;
    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({ "email": "retry@example.com" }))
        .await;
    assert_eq!(status, 202);
    let delivery = app
        .lead_deliveries(owner, answer["lead_id"].as_str().unwrap())
        .await
        .remove(0);
    (delivery, integration)
}

fn gaps(receiver: &Receiver) -> Vec<Duration> {
    let at: Vec<_> = receiver.requests().iter().map(|r| r.at).collect();
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

fn assert_spacing(gaps: &[Duration], steps: &[u64]) {
    assert_eq!(gaps.len(), steps.len(), "{gaps:?}");
    for (gap, step) in gaps.iter().zip(steps) {
        let step = Duration::from_secs(*step);
        assert!(
            *gap + Duration::from_millis(200) >= step && *gap <= step + Duration::from_secs(2),
            "gap {gap:?} is not within -0.2 s/+2 s of the ladder step {step:?} (all gaps {gaps:?})"
        );
    }
}

fn statuses_of(attempts: &Value) -> Vec<(i64, String, Value)> {
    attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["number"].as_i64().unwrap(),
                a["endpoint"].as_str().unwrap().to_owned(),
                a["statusCode"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_always_answers_503_gets_five_attempts_on_the_ladder_then_error() {
    let app = app_with_ladder("0s,1s,2s,1s,1s").await;
    let receiver = Receiver::start().await;
    receiver.respond_with(503, "maintenance");
    let owner = app.signup().await;
    let (delivery, _) = one_delivery(&app, &owner, json!({ "url": receiver.url("/x") })).await;

    receiver.wait_for(1, Duration::from_secs(15)).await;
    let scheduled = leadrelay_tests::eventually(
        "RETRY_SCHEDULED with nextAttemptAt",
        Duration::from_secs(10),
        || async {
            let d = app.delivery(&owner, &delivery).await;
            (d["status"] == "RETRY_SCHEDULED" && d["nextAttemptAt"].is_string()).then_some(d)
        },
    )
    .await;
    assert!(scheduled["attemptCount"].as_i64().unwrap() >= 1);

    let done = app.wait_for_delivery(&owner, &delivery, "ERROR").await;
    let attempts = statuses_of(&done["attempts"]);
    assert_eq!(attempts.len(), 5);
    for (i, (number, endpoint, status)) in attempts.iter().enumerate() {
        assert_eq!(*number, i as i64 + 1);
        assert_eq!(endpoint, "PRIMARY");
        assert_eq!(*status, json!(503));
    }
    assert_eq!(done["attemptCount"], 5);
    assert_eq!(receiver.requests().len(), 5, "no sixth attempt");
    assert_spacing(&gaps(&receiver), &[1, 2, 1, 1]);
    let ids: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| *id == delivery),
        "webhook-id is the delivery id on every retry: {ids:?}"
    );
}

/// A job that names its delivery and comes before the row's retry is due (a second job
/// for the row, or one that came early) sends nothing: the retry still goes out once, at
/// its step of the ladder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_comes_before_its_retry_is_due_waits_for_the_ladder() {
    let app = app_with_ladder("0s,3s").await;
    let receiver = Receiver::start().await;
    receiver.respond_with(503, "maintenance");
    let owner = app.signup().await;
    let (delivery, integration) =
        one_delivery(&app, &owner, json!({ "url": receiver.url("/x") })).await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    app.wait_for_delivery(&owner, &delivery, "RETRY_SCHEDULED")
        .await;
    receiver.respond_with(200, "ok");

    let conn = redis::Client::open(app.redis_url.as_str())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    Queue::redis(conn, &app.redis_prefix, 1)
        .push([DeliverLead::due(&delivery, &integration)])
        .await
        .unwrap();

    let done = app.wait_for_delivery(&owner, &delivery, "DELIVERED").await;
    assert_eq!(done["attemptCount"], 2);
    assert_eq!(receiver.requests().len(), 2, "the early job sent nothing");
    assert_spacing(&gaps(&receiver), &[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_takes_over_when_the_primary_ladder_is_spent() {
    let app = app_with_ladder("0s,1s,1s").await;
    let (primary, fallback) = (Receiver::start().await, Receiver::start().await);
    primary.respond_with(503, "down");
    let owner = app.signup().await;
    let mut sub = app.subscribe_deliveries(&owner).await;
    let (delivery, _) = one_delivery(
        &app,
        &owner,
        json!({ "url": primary.url("/p"), "fallbackUrl": fallback.url("/f") }),
    )
    .await;

    let done = app.wait_for_delivery(&owner, &delivery, "DELIVERED").await;
    let attempts = statuses_of(&done["attempts"]);
    assert_eq!(
        attempts,
        vec![
            (1, "PRIMARY".into(), json!(503)),
            (2, "PRIMARY".into(), json!(503)),
            (3, "PRIMARY".into(), json!(503)),
            (4, "FALLBACK".into(), json!(200)),
        ]
    );
    assert_eq!(done["attempts"][3]["url"], fallback.url("/f"));
    assert_eq!(fallback.requests().len(), 1);
    assert_eq!(
        fallback.requests()[0].json()["lead"]["email"],
        "retry@example.com"
    );

    let seen = sub.delivery_statuses_until(&delivery, "DELIVERED").await;
    assert!(
        !seen.iter().any(|s| s == "ERROR"),
        "no ERROR between the primary and the fallback: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| *s == "IN_FLIGHT").count(),
        4,
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_on_the_fallback_fails() {
    let app = app_with_ladder("0s").await;
    let (primary, fallback) = (Receiver::start().await, Receiver::start().await);
    primary.respond_with(500, "boom");
    fallback.respond_with(422, "bad payload");
    let owner = app.signup().await;
    let (delivery, _) = one_delivery(
        &app,
        &owner,
        json!({ "url": primary.url("/p"), "fallbackUrl": fallback.url("/f") }),
    )
    .await;
    let done = app.wait_for_delivery(&owner, &delivery, "FAILED").await;
    assert_eq!(
        statuses_of(&done["attempts"]),
        vec![
            (1, "PRIMARY".into(), json!(500)),
            (2, "FALLBACK".into(), json!(422))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_fails_after_one_attempt_and_a_resend_after_the_fix_delivers() {
    let app = app_with_ladder("0s,1s,1s").await;
    let (broken, fixed) = (Receiver::start().await, Receiver::start().await);
    broken.respond_with(400, r#"{"error":"missing field: cpf"}"#);
    let owner = app.signup().await;
    let mut sub = app.subscribe_deliveries(&owner).await;
    let (delivery, integration) =
        one_delivery(&app, &owner, json!({ "url": broken.url("/v1") })).await;

    let failed = app.wait_for_delivery(&owner, &delivery, "FAILED").await;
    assert_eq!(failed["attemptCount"], 1);
    assert_eq!(failed["attempts"][0]["statusCode"], 400);
    assert_eq!(
        failed["attempts"][0]["responseBody"],
        r#"{"error":"missing field: cpf"}"#
    );
    assert_eq!(failed["attempts"][0]["errorKind"], "HTTP");
    assert_eq!(failed["nextAttemptAt"], Value::Null);

    // The customer fixes the integration (a new URL) and resends.
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!, $url: String!) { updateIntegration(id: $id, input: { url: $url }) { id } }",
        json!({ "id": integration, "url": fixed.url("/v2") }),
    )
    .await;
    let resent = app
        .gql_ok(
            &owner.token,
            "mutation($id: ID!) { resendDelivery(id: $id) { id status } }",
            json!({ "id": delivery }),
        )
        .await;
    assert_eq!(resent["resendDelivery"]["status"], "PENDING");
    let done = app.wait_for_delivery(&owner, &delivery, "DELIVERED").await;
    assert_eq!(
        statuses_of(&done["attempts"]),
        vec![
            (1, "PRIMARY".into(), json!(400)),
            (2, "PRIMARY".into(), json!(200))
        ]
    );
    assert_eq!(done["attempts"][1]["url"], fixed.url("/v2"));
    assert_eq!(broken.requests().len(), 1, "a 4xx is never retried");
    assert_eq!(
        fixed.requests()[0].header("webhook-id"),
        Some(delivery.as_str()),
        "stable across resends"
    );

    let seen = sub.delivery_statuses_until(&delivery, "DELIVERED").await;
    assert_eq!(
        seen,
        ["IN_FLIGHT", "FAILED", "PENDING", "IN_FLIGHT", "DELIVERED"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_answers_conflict_while_in_progress_and_not_found_across_tenants() {
    let app = app_with_ladder("0s,1s").await;
    let receiver = Receiver::start().await;
    receiver.delay_by(Duration::from_secs(3));
    let owner = app.signup().await;
    let (delivery, _) = one_delivery(&app, &owner, json!({ "url": receiver.url("/slow") })).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    let resend = "mutation($id: ID!) { resendDelivery(id: $id) { id } }";
    let busy = app
        .gql(Some(&owner.token), resend, json!({ "id": delivery }))
        .await;
    assert_eq!(
        busy["errors"][0]["extensions"]["code"], "CONFLICT",
        "{busy}"
    );
    let stranger = app.signup().await;
    let theirs = app
        .gql(Some(&stranger.token), resend, json!({ "id": delivery }))
        .await;
    assert_eq!(
        theirs["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{theirs}"
    );
    let bulk = app
        .gql_ok(&stranger.token, "mutation { resendDeliveries(filter: { status: [DELIVERED, FAILED, ERROR] }) { count } }", json!({}))
        .await;
    assert_eq!(bulk["resendDeliveries"]["count"], 0);
    app.wait_for_delivery(&owner, &delivery, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_resend_restarts_every_matching_finished_delivery() {
    let app = app_with_ladder("0s").await;
    let receiver = Receiver::start().await;
    receiver.respond_with(401, "bad token");
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Bulk").await;
    let integration = app
        .create_integration(&owner, &list.id, &receiver.url("/b"), &[])
        .await;
    let mut deliveries = Vec::new();
    for i in 0..3 {
        let (_, answer) = app
            .post_lead(
                &list.inbound_url,
                &json!({ "email": format!("b{i}@example.com") }),
            )
            .await;
        deliveries.extend(
            app.lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
                .await,
        );
    }
    for id in &deliveries {
        app.wait_for_delivery(&owner, id, "FAILED").await;
    }
    receiver.respond_with(200, "ok");
    let bulk = app
        .gql_ok(
            &owner.token,
            "mutation($f: DeliveryFilter!) { resendDeliveries(filter: $f) { count } }",
            json!({ "f": { "integrationId": integration, "status": ["FAILED"] } }),
        )
        .await;
    assert_eq!(bulk["resendDeliveries"]["count"], 3);
    for id in &deliveries {
        let done = app.wait_for_delivery(&owner, id, "DELIVERED").await;
        assert_eq!(done["attemptCount"], 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured_and_408_is_retried() {
    let app = app_with_ladder("0s,1s,1s").await;
    let receiver = Receiver::start().await;
    receiver.respond_with(429, "slow down");
    receiver.with_header("retry-after", "3");
    let owner = app.signup().await;
    let (delivery, _) = one_delivery(&app, &owner, json!({ "url": receiver.url("/r") })).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    receiver.respond_with(408, "request timeout");
    receiver.wait_for(2, Duration::from_secs(10)).await;
    receiver.respond_with(200, "ok");
    let done = app.wait_for_delivery(&owner, &delivery, "DELIVERED").await;
    let codes: Vec<_> = statuses_of(&done["attempts"])
        .into_iter()
        .map(|(_, _, c)| c)
        .collect();
    assert_eq!(codes, [json!(429), json!(408), json!(200)]);
    assert_spacing(&gaps(&receiver), &[3, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_is_a_timeout_after_the_integration_timeout() {
    let app = app_with_ladder("0s").await;
    let receiver = Receiver::start().await;
    receiver.delay_by(Duration::from_secs(20));
    let owner = app.signup().await;
    let (delivery, _) = one_delivery(
        &app,
        &owner,
        json!({ "url": receiver.url("/hang"), "timeoutMs": 700 }),
    )
    .await;
    let done = app.wait_for_delivery(&owner, &delivery, "ERROR").await;
    let attempt = &done["attempts"][0];
    assert_eq!(attempt["errorKind"], "TIMEOUT");
    assert_eq!(attempt["statusCode"], Value::Null);
    let took = attempt["durationMs"].as_i64().unwrap();
    assert!(
        (650..5000).contains(&took),
        "the attempt took {took} ms with a 700 ms timeout"
    );
}

/// A receiver answering after `delay`, an integration to it with `maxInFlight`, and
/// `leads` leads posted to its list; returns the receiver, the owner, the integration's
/// id and the list's inbound URL.
async fn capped(
    app: &TestApp,
    delay: Duration,
    max_in_flight: u32,
    leads: usize,
) -> (Receiver, Session, String, String) {
    let receiver = Receiver::start().await;
    receiver.delay_by(delay);
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Capped").await;
    let integration = app
        .create_integration_with(
            &owner,
            json!({ "listId": list.id, "url": receiver.url("/s"), "maxInFlight": max_in_flight }),
        )
        .await;
    app.post_leads(&list.inbound_url, leads).await;
    (receiver, owner, integration, list.inbound_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_integration_never_has_more_than_max_in_flight_requests() {
    let app = app_with_ladder("0s").await;
    let (receiver, _, _, _) = capped(&app, Duration::from_millis(400), 2, 8).await;
    receiver.wait_for(8, Duration::from_secs(30)).await;
    assert!(
        receiver.max_concurrent() <= 2,
        "{} requests at once with maxInFlight 2",
        receiver.max_concurrent()
    );
    assert_eq!(
        receiver.max_concurrent(),
        2,
        "the cap is used, not undershot"
    );
}

/// Intake's job counters, `leadrelay_intake_jobs_total` by outcome: pushed, and left
/// waiting in the ledger.
async fn intake_jobs(app: &TestApp) -> (u64, u64) {
    let jobs = |outcome: &str| format!("leadrelay_intake_jobs_total{{outcome=\"{outcome}\"}}");
    (
        app.counter(&jobs("pushed")).await,
        app.counter(&jobs("waiting")).await,
    )
}

/// [`capped`] with `first` leads; once they are all under way, `later` more (emails
/// `later{i}@…`), which find the integration busy. Returns the receiver.
async fn later_while_busy(
    app: &TestApp,
    delay: Duration,
    max_in_flight: u32,
    first: usize,
    later: usize,
) -> Receiver {
    let (receiver, _, _, inbound) = capped(app, delay, max_in_flight, first).await;
    receiver.wait_for(first, Duration::from_secs(20)).await;
    app.post_leads_as(&inbound, "later", later).await;
    receiver
}

/// A lead whose integration already has `maxInFlight` deliveries under way gets no job
/// (it would only be fetched and dropped): its delivery waits in the ledger, and the one
/// under way hands it the slot as it settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_for_a_full_integration_waits_in_the_ledger_without_a_job() {
    let app = app_with_ladder("0s").await;
    // The first request is under way and answers in a second: the three later leads find
    // the integration full.
    let receiver = later_while_busy(&app, Duration::from_secs(1), 1, 1, 3).await;
    assert_eq!(
        intake_jobs(&app).await,
        (1, 3),
        "only the first lead's job is pushed"
    );
    receiver.wait_for(4, Duration::from_secs(30)).await;
    assert_eq!(receiver.max_concurrent(), 1, "one request at a time");
}

/// The same below `maxInFlight` when the integration holds its share of the live
/// workers' slots (three of a worker's four here): its next job would be dropped too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_for_an_integration_at_the_workers_share_waits_without_a_job() {
    let app = app_with_ladder_and("0s", &["--worker-concurrency", "4"]).await;
    eventually(
        "the worker's heartbeat",
        Duration::from_secs(20),
        || async { (app.count_where("workers", "integration_share = 3").await == 1).then_some(()) },
    )
    .await;
    let receiver = later_while_busy(&app, Duration::from_secs(1), 8, 3, 2).await;
    assert_eq!(
        intake_jobs(&app).await,
        (3, 2),
        "the first three leads' jobs are pushed"
    );
    receiver.wait_for(5, Duration::from_secs(30)).await;
    assert_eq!(receiver.max_concurrent(), 3, "the worker's share at once");
}

/// The sweeper re-enqueues no overdue waiting row of an integration whose slots are all
/// held (its job would only be dropped); the rows under way hand their slots on as they
/// settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_pushes_no_job_for_an_integration_whose_slots_are_all_held() {
    let app = app_with_ladder_and("0s", &["--sweep-interval", "1s"]).await;
    let receiver = later_while_busy(&app, Duration::from_secs(8), 2, 2, 3).await;
    let sweeps = || app.counter("leadrelay_sweeps_total");
    let before = sweeps().await;
    // Three sweeps: the later rows are overdue (one interval) for the last ones.
    eventually("three more sweeps", Duration::from_secs(20), || async {
        (sweeps().await >= before + 3).then_some(())
    })
    .await;
    assert_eq!(
        receiver.requests().len(),
        2,
        "the first two still under way: the integration's slots stayed held"
    );
    assert_eq!(
        app.counter("leadrelay_swept_jobs_total{reason=\"waiting\"}")
            .await,
        0,
        "no waiting row re-enqueued while no slot was free"
    );
    receiver.delay_by(Duration::from_millis(100));
    receiver.wait_for(5, Duration::from_secs(30)).await;
    assert_eq!(receiver.max_concurrent(), 2, "maxInFlight at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_max_in_flight_applies_to_the_leads_already_waiting() {
    let app = app_with_ladder("0s").await;
    // The first four answer in 3 s, so the change lands while they are under way however
    // long the mutation takes; the rest answer quicker.
    let (receiver, owner, integration, _) = capped(&app, Duration::from_secs(3), 4, 12).await;
    receiver.wait_for(4, Duration::from_secs(30)).await;
    receiver.delay_by(Duration::from_millis(300));
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!) { updateIntegration(id: $id, input: { maxInFlight: 1 }) { id } }",
        json!({ "id": integration }),
    )
    .await;
    // The four in flight finish; each hands its slot on only while the others hold
    // fewer than the new cap, so the fifth request starts alone.
    receiver.wait_for(5, Duration::from_secs(30)).await;
    receiver.restart_max_concurrent();
    receiver.wait_for(12, Duration::from_secs(30)).await;
    assert_eq!(
        receiver.max_concurrent(),
        1,
        "requests at once after maxInFlight went from 4 to 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_tracked_and_auto_pause_stops_a_failing_integration() {
    let app = app_with_ladder("0s").await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let (first, integration) = one_delivery(
        &app,
        &owner,
        json!({ "url": receiver.url("/h"), "autoPauseAfter": 2 }),
    )
    .await;
    app.wait_for_delivery(&owner, &first, "DELIVERED").await;
    let health = "query($id: ID!) { integration(id: $id) { active pausedReason autoPauseAfter
        health { consecutiveFailures lastSuccessAt lastFailureAt } list { inboundUrl } } }";
    let data = app
        .gql_ok(&owner.token, health, json!({ "id": integration }))
        .await;
    assert_eq!(data["integration"]["health"]["consecutiveFailures"], 0);
    assert!(data["integration"]["health"]["lastSuccessAt"].is_string());
    let inbound = data["integration"]["list"]["inboundUrl"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut updates = leadrelay_tests::Subscription::open(
        &app.base,
        &owner.token,
        "subscription { integrationUpdates { active reason integration { id active } } }",
    )
    .await;
    receiver.respond_with(403, "forbidden");
    for i in 0..2 {
        let (_, answer) = app
            .post_lead(&inbound, &json!({ "email": format!("p{i}@example.com") }))
            .await;
        let id = app
            .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
            .await
            .remove(0);
        app.wait_for_delivery(&owner, &id, "FAILED").await;
    }
    // The pause follows the second failure's record, in statements of its own.
    let paused = leadrelay_tests::eventually("the pause", Duration::from_secs(10), || async {
        let integration = app
            .gql_ok(&owner.token, health, json!({ "id": integration }))
            .await["integration"]
            .clone();
        (integration["active"] == false).then_some(integration)
    })
    .await;
    assert_eq!(paused["health"]["consecutiveFailures"], 2);
    assert!(paused["health"]["lastFailureAt"].is_string());
    assert!(
        paused["pausedReason"]
            .as_str()
            .unwrap()
            .contains("2 consecutive"),
        "{paused}"
    );
    let event = updates
        .next_data(Duration::from_secs(10))
        .await
        .expect("a pause event")["integrationUpdates"]
        .clone();
    assert_eq!(event["active"], false);
    assert_eq!(event["integration"]["id"], integration.as_str());
    assert_eq!(event["reason"], paused["pausedReason"]);

    // A lead that arrives while it is paused waits in the ledger, and goes out once the
    // customer has fixed the receiver and reactivated the integration.
    let (status, answer) = app
        .post_lead(&inbound, &json!({ "email": "waiting@example.com" }))
        .await;
    assert_eq!(status, 202);
    let waiting = app
        .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
        .await
        .remove(0);
    let before = receiver.requests().len();
    assert_eq!(app.delivery(&owner, &waiting).await["status"], "PENDING");
    receiver.respond_with(200, "ok");
    app.gql_ok(
        &owner.token,
        "mutation($id: ID!) { updateIntegration(id: $id, input: { active: true }) { active } }",
        json!({ "id": integration }),
    )
    .await;
    let back = app
        .gql_ok(&owner.token, health, json!({ "id": integration }))
        .await["integration"]
        .clone();
    assert_eq!(back["active"], true);
    assert_eq!(back["pausedReason"], Value::Null);
    assert_eq!(back["health"]["consecutiveFailures"], 0);
    app.wait_for_delivery(&owner, &waiting, "DELIVERED").await;
    assert_eq!(receiver.requests().len(), before + 1);
}
