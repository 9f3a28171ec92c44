//! Qualification rules and duplicates per list: a lead failing the rules or repeating an
//! earlier one is stored with its reasons, answered so, and never delivered.

use futures::future::join_all;
use leadrelay_tests::{Receiver, TestApp, error_code};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_failing_the_rules_is_disqualified_and_not_delivered() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Strict").await;
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;
    let updated = app
        .update_list(
            &owner,
            &list.id,
            json!({"minScore": 50, "requiredChecks": ["phone_valid", "email_valid"],
                   "requiredFields": ["company"],
                   "aliases": [{"from": "Celular do Pai", "to": "phone"}]}),
        )
        .await;
    assert_eq!(
        updated["data"]["updateList"]["requiredChecks"],
        json!(["email_valid", "phone_valid"]),
        "{updated}"
    );

    let (status, answer) = app
        .post_lead(&list.inbound_url, &json!({"email": "not-an-email"}))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "disqualified");
    let expected = json!([
        "score 15 is below the minimum 50",
        "required check email_valid failed",
        "required check phone_valid not done",
        "required field company missing"
    ]);
    assert_eq!(answer["reasons"], expected);
    let lead = app.lead(&owner, answer["lead_id"].as_str().unwrap()).await;
    assert_eq!(lead["status"], "DISQUALIFIED");
    assert_eq!(lead["reasons"], expected);
    assert_eq!(lead["deliveries"], json!([]));

    // The list's own alias reads the phone; this lead passes and is the only one sent.
    let (_, good) = app
        .post_lead(
            &list.inbound_url,
            &json!({"email": "ana@example.com", "celular_do_pai": "11 98765-4321", "company": "ACME"}),
        )
        .await;
    assert_eq!(good["status"], "qualified", "{good}");
    assert_eq!(good["reasons"], json!([]));
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["lead"]["phone"], "+5511987654321");
    assert_eq!(app.count_rows("deliveries").await, 1);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_rules_are_validated_and_tenant_scoped() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Mine").await;
    let defaults = app.update_list(&owner, &list.id, json!({})).await;
    let shown = &defaults["data"]["updateList"];
    assert_eq!(
        (
            &shown["minScore"],
            &shown["requiredChecks"],
            &shown["dedupeWindowDays"],
            &shown["dedupeFields"]
        ),
        (
            &json!(0),
            &json!([]),
            &json!(30),
            &json!(["email", "phone"])
        ),
        "neutral defaults: {defaults}"
    );
    let cases = [
        (json!({"minScore": 101}), "minScore"),
        (
            json!({"requiredChecks": ["email_valid", "vibes"]}),
            "requiredChecks",
        ),
        (json!({"dedupeWindowDays": 4000}), "dedupeWindowDays"),
        (json!({"dedupeFields": ["cpf"]}), "dedupeFields"),
        (
            json!({"aliases": [{"from": "x", "to": "shoe_size"}]}),
            "aliases",
        ),
        (
            json!({"thankYouUrl": "http://example.com/thanks"}),
            "thankYouUrl",
        ),
    ];
    for (input, field) in cases {
        let response = app.update_list(&owner, &list.id, input.clone()).await;
        assert_eq!(
            error_code(&response),
            "BAD_USER_INPUT",
            "{input}: {response}"
        );
        let message = response["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(field), "{input}: {message}");
    }

    let intruder = app.signup().await;
    let response = app
        .update_list(&intruder, &list.id, json!({"minScore": 100}))
        .await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
    for mutation in ["rotateInboundToken", "rotateInboundApiKey"] {
        let response = app
            .gql(
                Some(&intruder.token),
                &format!("mutation($id: ID!) {{ {mutation}(listId: $id) {{ id }} }}"),
                json!({ "id": list.id }),
            )
            .await;
        assert_eq!(error_code(&response), "NOT_FOUND", "{mutation}: {response}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_is_linked_to_its_original_and_not_delivered() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Dedupe").await;
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;

    let (_, first) = app
        .post_lead(
            &list.inbound_url,
            &json!({"email": "ana@example.com", "phone": "11987654321"}),
        )
        .await;
    assert_eq!(first["status"], "qualified", "{first}");
    // The same phone written another way, with another email: still the same person.
    let (status, again) = app
        .post_lead(
            &list.inbound_url,
            &json!({"email": "ana2@example.com", "phone": "+55 (11) 98765-4321"}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(again["duplicate_of"], first["lead_id"]);
    let lead = app.lead(&owner, again["lead_id"].as_str().unwrap()).await;
    assert_eq!(lead["status"], "DUPLICATE");
    assert_eq!(lead["duplicateOf"], first["lead_id"]);
    assert_eq!(lead["deliveries"], json!([]));

    // Matched on email only, the phone no longer makes a duplicate.
    app.update_list(&owner, &list.id, json!({"dedupeFields": ["email"]}))
        .await;
    let (_, other) = app
        .post_lead(
            &list.inbound_url,
            &json!({"email": "bia@example.com", "phone": "11987654321"}),
        )
        .await;
    assert_eq!(other["status"], "qualified", "{other}");
    // A window of 0 days turns duplicate detection off.
    app.update_list(&owner, &list.id, json!({"dedupeWindowDays": 0}))
        .await;
    let (_, repeat) = app
        .post_lead(&list.inbound_url, &json!({"email": "ana@example.com"}))
        .await;
    assert_eq!(repeat["status"], "qualified", "{repeat}");

    receiver.wait_for(3, WAIT).await;
    assert_eq!(app.count_rows("deliveries").await, 3);
}

/// Twenty identical leads posted at once: exactly one is QUALIFIED and delivered, the
/// others are DUPLICATEs of it.
async fn identical_leads_at_once_give_one_qualified(app: TestApp) {
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Race").await;
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;
    let lead = json!({"email": "race@example.com", "phone": "11987654321"});
    let answers: Vec<(u16, Value)> =
        join_all((0..20).map(|_| app.post_lead(&list.inbound_url, &lead))).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 202),
        "{answers:?}"
    );
    let qualified: Vec<&Value> = answers
        .iter()
        .map(|(_, a)| a)
        .filter(|a| a["status"] == "qualified")
        .collect();
    assert_eq!(qualified.len(), 1, "{answers:?}");
    let original = &qualified[0]["lead_id"];
    for (_, answer) in answers.iter().filter(|(_, a)| a["status"] != "qualified") {
        assert_eq!(answer["status"], "duplicate", "{answer}");
        assert_eq!(&answer["duplicate_of"], original, "{answer}");
    }
    receiver.wait_for(1, WAIT).await;
    assert_eq!(app.count_rows("deliveries").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_leads_on_postgres() {
    identical_leads_at_once_give_one_qualified(TestApp::production().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_leads_on_sqlite() {
    identical_leads_at_once_give_one_qualified(TestApp::embedded().await).await;
}

/// `updateList` asking for the score weights back.
const UPDATE_WEIGHTS: &str = "mutation($id: ID!, $input: UpdateListInput!) {
    updateList(id: $id, input: $input) { id scoreWeights { check points defaultPoints description } } }";

/// The list's weights as `{check: [points, defaultPoints]}`.
fn weights_of(list: &Value) -> serde_json::Map<String, Value> {
    list["scoreWeights"]
        .as_array()
        .expect("scoreWeights")
        .iter()
        .map(|w| {
            let check = w["check"].as_str().expect("check").to_owned();
            (check, json!([w["points"], w["defaultPoints"]]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_weights_per_list_drive_the_score_and_the_rules_on_postgres() {
    score_weights_drive_the_score_and_the_rules(TestApp::production().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn score_weights_per_list_drive_the_score_and_the_rules_on_sqlite() {
    score_weights_drive_the_score_and_the_rules(TestApp::embedded().await).await;
}

/// A list's own score weights: shown with the defaults, used for the score, its reasons
/// and `minScore`, validated, private to the tenant, and reset by an empty list.
async fn score_weights_drive_the_score_and_the_rules(app: TestApp) {
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Weighted").await;
    app.create_integration(&owner, &list.id, &receiver.url("/crm"), &[])
        .await;
    app.update_list(&owner, &list.id, json!({"minScore": 50}))
        .await;

    // Defaults: an email alone from loopback is 30 + 10 (ip not assessed) + 5 = 45.
    let (_, before) = app
        .post_lead(&list.inbound_url, &json!({"email": "ana@example.com"}))
        .await;
    assert_eq!(before["status"], "disqualified", "{before}");
    assert_eq!(
        before["reasons"],
        json!(["score 45 is below the minimum 50"])
    );

    let set = app
        .gql(
            Some(&owner.token),
            UPDATE_WEIGHTS,
            json!({"id": list.id, "input": {"scoreWeights": [
                {"check": "email_valid", "points": 40},
                {"check": "completeness", "points": 10},
                {"check": "phone_valid", "points": 0}]}}),
        )
        .await;
    let shown = weights_of(&set["data"]["updateList"]);
    assert_eq!(shown["email_valid"], json!([40, 30]), "{set}");
    assert_eq!(shown["completeness"], json!([10, 5]), "{set}");
    assert_eq!(shown["phone_valid"], json!([0, 30]), "{set}");
    assert_eq!(
        shown["cnpj_valid"],
        json!([10, 10]),
        "defaults shown: {set}"
    );
    assert_eq!(
        shown["email_role"],
        json!([10, 10]),
        "defaults shown: {set}"
    );
    assert!(
        set["data"]["updateList"]["scoreWeights"][0]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{set}"
    );

    // The same lead now scores 40 + 10 + 10 = 60 and passes minScore 50.
    let (status, after) = app
        .post_lead(&list.inbound_url, &json!({"email": "bia@example.com"}))
        .await;
    assert_eq!(
        (status, &after["status"]),
        (202, &json!("qualified")),
        "{after}"
    );
    let lead_id = after["lead_id"].as_str().expect("lead id");
    let shown = app
        .gql_ok(
            &owner.token,
            "query($id: ID!) { lead(id: $id) { score scoreReasons } }",
            json!({ "id": lead_id }),
        )
        .await;
    assert_eq!(
        shown["lead"],
        json!({"score": 60, "scoreReasons": [
            "email valid: +40", "no phone: +0", "no cnpj: +0",
            "ip not assessed: +10", "1/4 standard fields: +10"]})
    );
    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(delivered[0].json()["lead"]["score"], 60);

    // A valid phone alone is now worth nothing: 0 + 10 + 10 = 20, below the minimum.
    let (_, phone_only) = app
        .post_lead(&list.inbound_url, &json!({"phone": "11987654321"}))
        .await;
    assert_eq!(phone_only["status"], "disqualified", "{phone_only}");
    assert_eq!(
        phone_only["reasons"],
        json!(["score 20 is below the minimum 50"])
    );

    // Refused weights change nothing and name the field.
    for weights in [
        json!([{"check": "vibes", "points": 10}]),
        json!([{"check": "email_valid", "points": 101}]),
        json!([{"check": "email_role", "points": -5}]),
        json!([{"check": "email_valid", "points": 5}, {"check": "email_valid", "points": 6}]),
    ] {
        let response = app
            .gql(
                Some(&owner.token),
                UPDATE_WEIGHTS,
                json!({"id": list.id, "input": {"scoreWeights": weights}}),
            )
            .await;
        assert_eq!(
            error_code(&response),
            "BAD_USER_INPUT",
            "{weights}: {response}"
        );
        let message = response["errors"][0]["message"].as_str().unwrap_or("");
        assert!(message.starts_with("scoreWeights:"), "{weights}: {message}");
    }
    let kept = app
        .gql_ok(
            &owner.token,
            "query($id: ID!) { list(id: $id) { scoreWeights { check points defaultPoints } } }",
            json!({ "id": list.id }),
        )
        .await;
    assert_eq!(weights_of(&kept["list"])["email_valid"], json!([40, 30]));

    // Another tenant cannot see or set them.
    let intruder = app.signup().await;
    let response = app
        .gql(
            Some(&intruder.token),
            UPDATE_WEIGHTS,
            json!({"id": list.id, "input": {"scoreWeights": [{"check": "email_valid", "points": 0}]}}),
        )
        .await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
    let hidden = app
        .gql_ok(
            &intruder.token,
            "query($id: ID!) { list(id: $id) { scoreWeights { points } } }",
            json!({ "id": list.id }),
        )
        .await;
    assert_eq!(hidden["list"], Value::Null);

    // An empty list restores every default: the email-only lead is 45 again.
    let reset = app
        .gql(
            Some(&owner.token),
            UPDATE_WEIGHTS,
            json!({"id": list.id, "input": {"scoreWeights": []}}),
        )
        .await;
    let shown = weights_of(&reset["data"]["updateList"]);
    assert!(
        shown.values().all(|pd| pd[0] == pd[1]),
        "all defaults: {reset}"
    );
    let (_, again) = app
        .post_lead(&list.inbound_url, &json!({"email": "cia@example.com"}))
        .await;
    assert_eq!(
        again["reasons"],
        json!(["score 45 is below the minimum 50"])
    );
}
