//! Outbound safety from day one: https only, and no loopback, private, link-local or
//! metadata targets; the development switch allows http and loopback, nothing else.

use leadrelay_tests::{Mode, TestApp};
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, list_id: &str, url: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id url } }",
        json!({ "input": { "listId": list_id, "name": "t", "url": url } }),
    )
    .await
}

fn refused(response: &Value) -> bool {
    response["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        && response["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("url:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_accepts_only_public_https_targets() {
    let app = TestApp::start(Mode::Production, &[]).await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Safe").await;
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://[::1]/x",
        "https://10.0.0.1/x",
        "https://172.16.0.1/x",
        "https://192.168.0.10/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://100.64.0.1/",
        "ftp://example.com/x",
        "not a url",
    ] {
        let r = create(&app, &owner.token, &list.id, url).await;
        assert!(refused(&r), "{url} should be refused: {r}");
    }
    let ok = create(
        &app,
        &owner.token,
        &list.id,
        "https://hooks.example.com/leads",
    )
    .await;
    assert_eq!(
        ok["data"]["createIntegration"]["url"],
        "https://hooks.example.com/leads"
    );
    let fallback = app
        .gql(
            Some(&owner.token),
            "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }",
            json!({ "input": { "listId": list.id, "name": "t", "url": "https://hooks.example.com/a", "fallbackUrl": "http://10.1.2.3/" } }),
        )
        .await;
    assert_eq!(
        fallback["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert!(
        fallback["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("fallbackUrl:")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_switch_allows_http_and_loopback_only() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Dev").await;
    for url in [
        "http://127.0.0.1:9000/x",
        "http://localhost:9000/x",
        "http://[::1]:9000/x",
        "http://hooks.example.com/x",
    ] {
        let r = create(&app, &owner.token, &list.id, url).await;
        assert!(r["errors"].is_null(), "{url} should be allowed: {r}");
    }
    for url in [
        "http://10.0.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/",
        "http://[fe80::1]/",
    ] {
        let r = create(&app, &owner.token, &list.id, url).await;
        assert!(refused(&r), "{url} must stay blocked: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_integration_settings_name_the_field() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Fields").await;
    for (input, field) in [
        (json!({ "timeoutMs": 0 }), "timeoutMs"),
        (
            json!({ "headers": [{ "name": "Host", "value": "evil" }] }),
            "headers[0].name",
        ),
        (
            json!({ "headers": [{ "name": "X-Ok", "value": "a\nb" }] }),
            "headers[0].value",
        ),
        (json!({ "name": "  " }), "name"),
    ] {
        let mut full = json!({ "listId": list.id, "name": "n", "url": "http://127.0.0.1:9/x" });
        full.as_object_mut()
            .unwrap()
            .extend(input.as_object().unwrap().clone());
        let r = app
            .gql(Some(&owner.token), "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }", json!({ "input": full }))
            .await;
        assert_eq!(
            r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{r}"
        );
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{field}: {r}"
        );
    }
}
