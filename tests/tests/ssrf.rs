//! Delivery-time target safety (ARCHITECTURE §7): names are resolved by LeadRelay's own
//! resolver and every address is checked, so a name pointing inside the network is
//! BLOCKED even though it was accepted at save time; the allowlist and an extra CA reach
//! on-premise https receivers; redirects are never followed.
//!
//! Assertions are on the attempt (`errorKind`, `statusCode`) and the receivers, not on the
//! delivery's final status, which the retry policy decides.

use leadrelay_tests::{Mode, Receiver, Session, TestApp, TestCa};
use serde_json::{Value, json};
use std::{collections::HashMap, time::Duration};

/// Posts a lead to `inbound_url`; waits until each of its deliveries has an attempt and
/// returns them keyed by integration id.
async fn deliver_lead(app: &TestApp, owner: &Session, inbound_url: &str) -> HashMap<String, Value> {
    let (status, answer) = app
        .post_lead(
            inbound_url,
            &json!({ "email": "ana@example.com", "name": "Ana" }),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let lead_id = answer["lead_id"].as_str().expect("lead_id");
    let mut by_integration = HashMap::new();
    for id in app.lead_deliveries(owner, lead_id).await {
        let delivery = app.wait_for_attempt(owner, &id).await;
        let integration = delivery["integration"]["id"].as_str().unwrap().to_owned();
        by_integration.insert(integration, delivery);
    }
    by_integration
}

fn first_attempt(delivery: &Value) -> &Value {
    &delivery["attempts"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_inside_the_network_are_blocked_at_delivery_time() {
    let ca = TestCa::new();
    let receiver =
        Receiver::start_https(ca.server_config(&["loop.test", "private.test", "meta.test"])).await;
    let app = TestApp::start(
        Mode::Production,
        &[
            "--extra-ca-file",
            &ca.pem_arg(),
            "--dns-override",
            "loop.test=127.0.0.1,private.test=10.0.0.1,meta.test=169.254.169.254",
        ],
    )
    .await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Rebound").await;
    let mut hosts = HashMap::new();
    for host in ["loop.test", "private.test", "meta.test"] {
        // A name is accepted at save time: there is no DNS lookup then.
        let id = app
            .create_integration(&owner, &list.id, &receiver.url_at(host, "/x"), &[])
            .await;
        hosts.insert(id, host);
    }

    let deliveries = deliver_lead(&app, &owner, &list.inbound_url).await;
    assert_eq!(deliveries.len(), 3);
    for (integration, delivery) in &deliveries {
        let host = hosts[integration];
        let attempt = first_attempt(delivery);
        assert_eq!(attempt["errorKind"], "BLOCKED", "{host}: {delivery}");
        assert_eq!(attempt["statusCode"], Value::Null, "{host}");
        assert!(
            attempt["error"]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("target {host} "))),
            "{host}: {attempt}"
        );
    }
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_switch_reaches_loopback_names_but_not_private_ones() {
    let receiver = Receiver::start().await;
    let app = TestApp::start(
        Mode::Production,
        &[
            "--allow-insecure-targets",
            "true",
            "--dns-override",
            "loop.test=127.0.0.1,private.test=10.0.0.1",
        ],
    )
    .await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Dev").await;
    let loopback = app
        .create_integration(
            &owner,
            &list.id,
            &receiver.url_at("loop.test", "/loop"),
            &[],
        )
        .await;
    let private = app
        .create_integration(
            &owner,
            &list.id,
            &receiver.url_at("private.test", "/private"),
            &[],
        )
        .await;

    let deliveries = deliver_lead(&app, &owner, &list.inbound_url).await;
    let delivered = first_attempt(&deliveries[&loopback]);
    assert_eq!(delivered["statusCode"], 200, "{delivered}");
    assert_eq!(delivered["errorKind"], Value::Null);
    let blocked = first_attempt(&deliveries[&private]);
    assert_eq!(blocked["errorKind"], "BLOCKED", "{blocked}");
    assert_eq!(blocked["statusCode"], Value::Null);

    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/loop");
    assert_eq!(got[0].json()["lead"]["email"], "ana@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlisted_https_receiver_with_the_extra_ca_is_delivered() {
    let ca = TestCa::new();
    let receiver = Receiver::start_https(ca.server_config(&["receiver.test", "mixed.test"])).await;
    let app = TestApp::start(
        Mode::Production,
        &[
            "--extra-ca-file",
            &ca.pem_arg(),
            "--target-allowlist",
            "127.0.0.1/32",
            "--dns-override",
            // mixed.test also resolves outside the allowlist: one refused address is enough.
            "receiver.test=127.0.0.1,mixed.test=127.0.0.1,mixed.test=10.0.0.1",
        ],
    )
    .await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "On-premise").await;
    let allowed = app
        .create_integration(
            &owner,
            &list.id,
            &receiver.url_at("receiver.test", "/leads"),
            &[],
        )
        .await;
    let mixed = app
        .create_integration(
            &owner,
            &list.id,
            &receiver.url_at("mixed.test", "/mixed"),
            &[],
        )
        .await;

    let deliveries = deliver_lead(&app, &owner, &list.inbound_url).await;
    let delivery = app
        .wait_for_delivery(
            &owner,
            deliveries[&allowed]["id"].as_str().unwrap(),
            "DELIVERED",
        )
        .await;
    assert_eq!(first_attempt(&delivery)["statusCode"], 200, "{delivery}");
    assert_eq!(first_attempt(&deliveries[&mixed])["errorKind"], "BLOCKED");

    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/leads");
    assert_eq!(got[0].json()["lead"]["email"], "ana@example.com");

    // Literal addresses are judged at save time by the same allowlist.
    let literal = app.create_list(&owner, "Literal").await;
    for (url, allowed) in [
        ("https://127.0.0.1:9/x", true),
        ("https://127.0.0.2:9/x", false),
        ("https://10.0.0.1/x", false),
    ] {
        let r = app
            .gql(
                Some(&owner.token),
                "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }",
                json!({ "input": { "listId": literal.id, "name": "t", "url": url } }),
            )
            .await;
        assert_eq!(r["errors"].is_null(), allowed, "{url}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_receiver_with_an_untrusted_certificate_is_a_tls_error() {
    let ca = TestCa::new();
    let receiver = Receiver::start_https(ca.server_config(&["receiver.test"])).await;
    let app = TestApp::start(
        Mode::Production,
        &[
            "--target-allowlist",
            "127.0.0.1/32",
            "--dns-override",
            "receiver.test=127.0.0.1",
        ],
    )
    .await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Untrusted").await;
    let integration = app
        .create_integration(
            &owner,
            &list.id,
            &receiver.url_at("receiver.test", "/leads"),
            &[],
        )
        .await;

    let deliveries = deliver_lead(&app, &owner, &list.inbound_url).await;
    let attempt = first_attempt(&deliveries[&integration]);
    assert_eq!(attempt["errorKind"], "TLS", "{attempt}");
    assert_eq!(attempt["statusCode"], Value::Null);
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_recorded_not_followed() {
    let app = TestApp::production().await;
    let target = Receiver::start().await;
    let redirecting = Receiver::start().await;
    redirecting.redirect_to(302, &target.url("/stolen"));
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Redirect").await;
    let integration = app
        .create_integration(&owner, &list.id, &redirecting.url("/leads"), &[])
        .await;

    let deliveries = deliver_lead(&app, &owner, &list.inbound_url).await;
    let attempt = first_attempt(&deliveries[&integration]);
    assert_eq!(attempt["statusCode"], 302, "{attempt}");
    assert_eq!(redirecting.requests().len(), 1);
    // The attempt is recorded once the response is in: a followed redirect would be done.
    assert!(target.requests().is_empty());
}
