//! The network-backed verifications seen from outside: the api asks a CNPJ registry and
//! an IP provider (real HTTP servers on loopback answering in BrasilAPI's and
//! proxycheck.io's formats) about the client behind a trusted proxy, and the lead's
//! verifications, score and delivered body show their answers. A hanging registry
//! delays intake by no more than the lookup timeout.

use leadrelay_tests::{Mode, Receiver, TestApp, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
/// A public address, as a client behind our proxy would have.
const CLIENT_IP: &str = "1.2.3.4";

/// A registry answering every CNPJ as an active company, as BrasilAPI does.
async fn registry() -> Receiver {
    let registry = Receiver::start().await;
    registry.respond_with(
        200,
        &json!({"cnpj": "11222333000181", "razao_social": "EMPRESA TESTE LTDA",
                "situacao_cadastral": 2, "descricao_situacao_cadastral": "ATIVA"})
        .to_string(),
    );
    registry
}

/// Posts `lead` as a client at `forwarded_for` behind the test's proxy (127.0.0.1).
async fn post_forwarded(app: &TestApp, url: &str, lead: &Value, forwarded_for: &str) -> Value {
    let response = app
        .http
        .post(url)
        .header("x-forwarded-for", forwarded_for)
        .json(lead)
        .send()
        .await
        .expect("inbound request");
    assert_eq!(response.status(), 202);
    response.json().await.expect("json answer")
}

async fn stored_lead(app: &TestApp, token: &str, lead_id: &str) -> Value {
    app.gql_ok(
        token,
        "query($id: ID!) { lead(id: $id) { status score scoreReasons verifications sourceIp } }",
        json!({ "id": lead_id }),
    )
    .await["lead"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_and_provider_answers_reach_the_lead_and_its_delivery() {
    let registry = registry().await;
    let provider = Receiver::start().await;
    provider.respond_with(
        200,
        &json!({"status": "ok", CLIENT_IP: {"proxy": "yes", "type": "VPN", "risk": 66}})
            .to_string(),
    );
    let app = TestApp::start(
        Mode::Production,
        &[
            "--allow-insecure-targets",
            "true",
            "--cnpj-registry-url",
            &registry.url("/"),
            "--ip-provider-url",
            &provider.url(""),
            "--ip-provider-key",
            "test-provider-key",
            "--trusted-proxies",
            "10.0.0.0/8,127.0.0.1/32",
        ],
    )
    .await;
    let crm = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Looked up").await;
    app.create_integration(&owner, &list.id, &crm.url("/crm"), &[])
        .await;

    let lead = json!({"email": "ana@example.com", "phone": "11987654321", "name": "Ana",
                      "company": "ACME", "cnpj": "11.222.333/0001-81"});
    // The client wrote its own entry on the left; our proxy appended the real one.
    let answer = post_forwarded(
        &app,
        &list.inbound_url,
        &lead,
        &format!("9.9.9.9, {CLIENT_IP}"),
    )
    .await;
    assert_eq!(answer["status"], "qualified", "{answer}");

    let body = crm.wait_for(1, WAIT).await[0].json();
    let v = &body["lead"]["verifications"];
    assert_eq!(
        [
            &v["cnpj_valid"],
            &v["cnpj_status"],
            &v["ip_risk_score"],
            &v["ip_proxy"],
            &v["ip_vpn"]
        ],
        [
            &json!(true),
            &json!("Active"),
            &json!(66),
            &json!(false),
            &json!(true)
        ],
        "{v}"
    );
    let stored = stored_lead(&app, &owner.token, answer["lead_id"].as_str().unwrap()).await;
    assert_eq!(stored["verifications"], *v);
    assert_eq!(stored["sourceIp"], CLIENT_IP);
    let reasons = stored["scoreReasons"].to_string();
    assert!(
        reasons.contains("cnpj active: +5") && reasons.contains("ip is a vpn: -15"),
        "{reasons}"
    );
    assert_eq!(stored["score"], 83, "{reasons}");

    let asked = registry.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path, "/api/cnpj/v1/11222333000181");
    let asked = provider.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].path, format!("/v2/{CLIENT_IP}"));

    // The same company and client again: answered from the caches.
    let again = post_forwarded(
        &app,
        &list.inbound_url,
        &json!({"email": "bia@example.com", "cnpj": "11222333000181"}),
        CLIENT_IP,
    )
    .await;
    let stored = stored_lead(&app, &owner.token, again["lead_id"].as_str().unwrap()).await;
    assert_eq!(stored["verifications"]["cnpj_status"], "Active");
    assert_eq!(stored["verifications"]["ip_vpn"], true);
    assert_eq!(
        (registry.requests().len(), provider.requests().len()),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_header_from_an_untrusted_peer_is_ignored() {
    let provider = Receiver::start().await;
    let app = TestApp::start(
        Mode::Embedded,
        &[
            "--ip-provider-url",
            &provider.url(""),
            "--trusted-proxies",
            "10.0.0.0/8",
        ],
    )
    .await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Spoofed").await;
    let answer = post_forwarded(
        &app,
        &list.inbound_url,
        &json!({"email": "ana@example.com"}),
        CLIENT_IP,
    )
    .await;
    let stored = stored_lead(&app, &owner.token, answer["lead_id"].as_str().unwrap()).await;
    // The source is the loopback peer: not assessed, no provider asked.
    assert_eq!(stored["sourceIp"], "127.0.0.1");
    let v = &stored["verifications"];
    assert_eq!(
        [&v["ip_risk_score"], &v["ip_proxy"], &v["ip_vpn"]],
        [&Value::Null, &Value::Null, &Value::Null]
    );
    assert!(provider.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_registry_delays_intake_by_at_most_the_timeout() {
    let registry = registry().await;
    registry.delay_by(Duration::from_secs(30));
    let timeout = Duration::from_millis(700);
    let app = TestApp::start(
        Mode::Production,
        &[
            "--allow-insecure-targets",
            "true",
            "--cnpj-registry-url",
            &registry.url(""),
            "--lookup-timeout-ms",
            &timeout.as_millis().to_string(),
        ],
    )
    .await;
    let crm = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Slow registry").await;
    app.create_integration(&owner, &list.id, &crm.url("/crm"), &[])
        .await;

    let started = Instant::now();
    let (status, answer) = app
        .post_lead(
            &list.inbound_url,
            &json!({"email": "ana@example.com", "cnpj": "11.222.333/0001-81"}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "qualified", "{answer}");
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(1500),
        "intake took {took:?} with a {timeout:?} lookup timeout"
    );
    let stored = stored_lead(&app, &owner.token, answer["lead_id"].as_str().unwrap()).await;
    let v = &stored["verifications"];
    assert_eq!(v["cnpj_valid"], true);
    assert_eq!(v["cnpj_status"], Value::Null);
    assert_eq!(v["cnpj_reasons"], json!(["cnpj_lookup_timeout"]));
    // The lead goes on: it is delivered, with the status null.
    let body = crm.wait_for(1, WAIT).await[0].json();
    assert_eq!(body["lead"]["verifications"]["cnpj_status"], Value::Null);
    eventually("the registry to have been asked", WAIT, || async {
        (!registry.requests().is_empty()).then_some(())
    })
    .await;
}
