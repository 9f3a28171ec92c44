//! The two modes, one engine: production with the worker as a separate process, and
//! embedded on SQLite; in both a subscriber sees the delivery go IN_FLIGHT and DELIVERED.

use leadrelay_tests::{Mode, Receiver, Session, Subscription, TestApp};
use serde_json::{Value, json};
use std::time::Duration;

async fn lead_travels_and_is_watched(app: &TestApp) {
    let receiver = Receiver::start().await;
    let owner: Session = app.signup().await;
    let list = app.create_list(&owner, "Watched").await;
    app.create_integration(
        &owner,
        &list.id,
        &receiver.url("/in"),
        &[("X-Token", "tok-abcdef-123456")],
    )
    .await;
    let mut sub = app.subscribe_deliveries(&owner).await;

    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "watch@example.com"}))
        .await;
    assert_eq!(status, 202, "{answer}");
    let body = receiver.wait_for(1, Duration::from_secs(20)).await[0].json();
    assert_eq!(body["lead"]["email"], "watch@example.com");

    let deliveries = app
        .lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
        .await;
    let seen = sub
        .delivery_statuses_until(&deliveries[0], "DELIVERED")
        .await;
    assert_eq!(seen, ["IN_FLIGHT", "DELIVERED"]);
    let delivery = app
        .wait_for_delivery(&owner, &deliveries[0], "DELIVERED")
        .await;
    assert_eq!(delivery["attempts"][0]["statusCode"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_with_a_separate_worker_process() {
    let app = TestApp::start(
        Mode::ProductionNoWorker,
        &["--allow-insecure-targets", "true"],
    )
    .await;
    let worker = app.spawn_worker().await;
    lead_travels_and_is_watched(&app).await;

    // The api's readiness reports the worker's heartbeat; the worker's metrics count
    // what it delivered.
    let ready: Value = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready["workers"].as_u64().is_some_and(|n| n >= 1), "{ready}");
    let metrics = app
        .http
        .get(format!("{}/metrics", worker.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"leadrelay_attempts_total{outcome="delivered"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"leadrelay_deliveries_total{outcome="delivered"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("leadrelay_lead_to_delivered_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("leadrelay_attempt_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("leadrelay_record_lag_seconds_count 1"),
        "{metrics}"
    );
    // The api's push of the lead's job woke the worker through Redis, not only its tick.
    let wakeups = metrics
        .lines()
        .find_map(|line| line.strip_prefix("leadrelay_queue_wakeups_total "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(wakeups.is_some_and(|n| n >= 1), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_mode_on_sqlite() {
    let app = TestApp::embedded().await;
    assert!(app.database_url.starts_with("sqlite://"));
    lead_travels_and_is_watched(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_only_their_own_tenant() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let (alice, bob) = (app.signup().await, app.signup().await);
    let alice_list = app.create_list(&alice, "A").await;
    let bob_list = app.create_list(&bob, "B").await;
    app.create_integration(&alice, &alice_list.id, &receiver.url("/a"), &[])
        .await;
    app.create_integration(&bob, &bob_list.id, &receiver.url("/b"), &[])
        .await;
    let mut bob_sub = app.subscribe_deliveries(&bob).await;

    app.post_lead(&alice_list.inbound_url, &json!({"email": "a@example.com"}))
        .await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    let (_, answer) = app
        .post_lead(&bob_list.inbound_url, &json!({"email": "b@example.com"}))
        .await;
    let bob_delivery = app
        .lead_deliveries(&bob, answer["lead_id"].as_str().unwrap())
        .await
        .remove(0);
    // Every event Bob sees is about Bob's delivery, ending with DELIVERED.
    let seen = bob_sub
        .delivery_statuses_until(&bob_delivery, "DELIVERED")
        .await;
    assert_eq!(seen.last().map(String::as_str), Some("DELIVERED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_without_a_valid_token_is_refused() {
    let app = TestApp::production().await;
    let refused = Subscription::try_open(
        &app.base,
        "not-a-token",
        "subscription { deliveryUpdates { status } }",
    )
    .await;
    assert!(refused.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_in_both_modes() {
    for app in [TestApp::production().await, TestApp::embedded().await] {
        let health = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let ready = app
            .http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["database"], true);
        assert_eq!(
            body["redis"],
            if app.mode == Mode::Embedded {
                Value::Null
            } else {
                Value::Bool(true)
            }
        );
        let page = app.http.get(format!("{}/", app.base)).send().await.unwrap();
        assert!(page.text().await.unwrap().contains("LeadRelay"));
        let graphiql = app
            .http
            .get(format!("{}/graphql", app.base))
            .send()
            .await
            .unwrap();
        assert!(
            graphiql
                .text()
                .await
                .unwrap()
                .to_lowercase()
                .contains("graphiql")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_leave_nothing_behind_in_redis() {
    let app = TestApp::start(
        Mode::ProductionNoWorker,
        &["--allow-insecure-targets", "true"],
    )
    .await;
    let _worker = app
        .spawn_worker_with(&[("LEADRELAY_SWEEP_INTERVAL", "200ms")])
        .await;
    let receiver = Receiver::start().await;
    let owner: Session = app.signup().await;
    let list = app.create_list(&owner, "Vacuumed").await;
    app.create_integration(&owner, &list.id, &receiver.url("/in"), &[])
        .await;
    for n in 0..5 {
        let lead = json!({"email": format!("vacuum{n}@example.com")});
        let (status, answer) = app.post_lead(&list.inbound_url, &lead).await;
        assert_eq!(status, 202, "{answer}");
    }
    receiver.wait_for(5, Duration::from_secs(20)).await;

    // Each sweep removes the finished jobs: their ids, data and metadata.
    let queue = format!("{}:deliveries", app.redis_prefix);
    let client = redis::Client::open(app.redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    leadrelay_tests::eventually(
        "the finished jobs to leave Redis",
        Duration::from_secs(20),
        || {
            let (mut conn, queue) = (conn.clone(), queue.clone());
            async move {
                let done: usize = redis::cmd("SCARD")
                    .arg(format!("{queue}:done"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let data: usize = redis::cmd("HLEN")
                    .arg(format!("{queue}:data"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                let meta: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{queue}:meta:*"))
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                (done == 0 && data == 0 && meta.is_empty()).then_some(())
            }
        },
    )
    .await;
    // The keys looked at are the queue's: its worker is registered under the same name.
    let registered: usize = redis::cmd("EXISTS")
        .arg(format!("{queue}:workers"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(registered, 1);
}
