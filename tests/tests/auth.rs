//! Sign-up, log-in and what happens without a valid session.

use leadrelay_tests::{TestApp, error_code};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_then_log_in_as_owner() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let me = app
        .gql_ok(
            &owner.token,
            "{ me { id email } tenant { id name } }",
            json!({}),
        )
        .await;
    assert_eq!(me["me"]["id"], owner.user_id.as_str());
    assert_eq!(me["tenant"]["id"], owner.tenant_id.as_str());
    assert_eq!(me["tenant"]["name"], "Acme Leads");

    let login = app
        .gql(
            None,
            "mutation($i: LogInInput!) { logIn(input: $i) { token role tenant { id } } }",
            json!({ "i": { "email": owner.email.to_uppercase(), "password": "correct horse battery" } }),
        )
        .await;
    assert_eq!(login["data"]["logIn"]["role"], "OWNER");
    assert_eq!(
        login["data"]["logIn"]["tenant"]["id"],
        owner.tenant_id.as_str()
    );
    let token = login["data"]["logIn"]["token"].as_str().unwrap();
    app.gql_ok(token, "{ me { id } }", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_are_unauthenticated() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    for (email, password) in [
        (owner.email.as_str(), "wrong password"),
        ("nobody@example.com", "correct horse battery"),
    ] {
        let r = app
            .gql(
                None,
                "mutation($i: LogInInput!) { logIn(input: $i) { token } }",
                json!({ "i": { "email": email, "password": password } }),
            )
            .await;
        assert_eq!(error_code(&r), "UNAUTHENTICATED", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::production().await;
    let no_token = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&no_token), "UNAUTHENTICATED");
    let forged = app
        .gql(
            Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
            "{ lists { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&forged), "UNAUTHENTICATED");
    let mutation = app
        .gql(
            None,
            "mutation { createList(input: { name: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&mutation), "UNAUTHENTICATED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_email_is_a_conflict_and_weak_input_is_refused() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let signup = "mutation($i: SignUpInput!) { signUp(input: $i) { token } }";
    let again = app.gql(None, signup, json!({ "i": { "email": owner.email, "password": "another password", "tenantName": "X" } })).await;
    assert_eq!(error_code(&again), "CONFLICT");
    let short = app
        .gql(
            None,
            signup,
            json!({ "i": { "email": "new@example.com", "password": "short", "tenantName": "X" } }),
        )
        .await;
    assert_eq!(error_code(&short), "BAD_USER_INPUT");
    let bad_email = app
        .gql(
            None,
            signup,
            json!({ "i": { "email": "nope", "password": "long enough pw", "tenantName": "X" } }),
        )
        .await;
    assert_eq!(error_code(&bad_email), "BAD_USER_INPUT");
}
