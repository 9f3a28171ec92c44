//! Dispatch filters, field mappings and `renderPreview` (issue 7), end to end against
//! local receivers: filters route leads, a mapped body arrives exactly as previewed, bad
//! configuration is refused naming the field, and previews are tenant-scoped.

use leadrelay_tests::{Receiver, Session, TestApp, error_code};
use leadrelay_worker::signing;
use serde_json::{Value, json};
use std::time::Duration;

const RENDER_PREVIEW: &str = "query($id: ID!, $sample: JSON!) {
    renderPreview(integrationId: $id, sample: $sample) {
        method url body filterPassed warnings leadStatus
        headers { name valuePreview }
        conditions { index field op value passed actual reason } } }";

async fn preview(app: &TestApp, session: &Session, integration: &str, sample: &Value) -> Value {
    app.gql(
        Some(&session.token),
        RENDER_PREVIEW,
        json!({ "id": integration, "sample": sample }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_route_leads_to_different_integrations() {
    let app = TestApp::production().await;
    let (sp, rj) = (Receiver::start().await, Receiver::start().await);
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    let to_sp = app
        .create_integration_with(
            &owner,
            json!({ "listId": list.id, "name": "São Paulo CRM", "url": sp.url("/sp"),
                "filter": { "match": "ALL", "conditions": [
                    { "field": "lead.custom_fields.state", "op": "EQ", "value": "SP" },
                    { "field": "lead.email", "op": "EXISTS" } ] } }),
        )
        .await;
    app.create_integration_with(
        &owner,
        json!({ "listId": list.id, "name": "Rio buyer", "url": rj.url("/rj"),
            "filter": { "match": "ANY", "conditions": [
                { "field": "lead.custom_fields.state", "op": "IN", "value": ["RJ", "MG"] },
                { "field": "lead.email", "op": "MATCHES", "value": "(?i)@rio\\." } ] } }),
    )
    .await;

    let shown = app
        .gql_ok(
            &owner.token,
            "query($id: ID!) { integration(id: $id) { filter { match conditions { field op value } } mapping { format } } }",
            json!({ "id": to_sp }),
        )
        .await;
    assert_eq!(
        shown["integration"],
        json!({ "filter": { "match": "ALL", "conditions": [
            { "field": "lead.custom_fields.state", "op": "EQ", "value": "SP" },
            { "field": "lead.email", "op": "EXISTS", "value": null } ] }, "mapping": null })
    );

    let mut leads = Vec::new();
    for lead in [
        json!({ "email": "sp@example.com", "state": "SP" }),
        // The seller's alias `estado` is read as the state before filters run.
        json!({ "email": "rj@example.com", "estado": "RJ" }),
        json!({ "email": "ba@example.com", "state": "BA" }),
    ] {
        let (status, answer) = app.post_lead(&list.inbound_url, &lead).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (202, Some("qualified"))
        );
        leads.push(answer["lead_id"].as_str().unwrap().to_owned());
    }

    let got_sp = sp.wait_for(1, Duration::from_secs(15)).await;
    let got_rj = rj.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got_sp[0].json()["lead"]["email"], "sp@example.com");
    assert_eq!(got_rj[0].json()["lead"]["email"], "rj@example.com");
    // The ledger says the same: one delivery each, none for the lead no filter takes,
    // which is stored and visible all the same.
    let counts: Vec<usize> =
        futures::future::join_all(leads.iter().map(|id| app.lead_deliveries(&owner, id)))
            .await
            .iter()
            .map(Vec::len)
            .collect();
    assert_eq!(counts, [1, 1, 0]);
    let unrouted = app.lead(&owner, &leads[2]).await;
    assert_eq!(unrouted["status"], "QUALIFIED");
    assert_eq!(sp.requests().len(), 1);
    assert_eq!(rj.requests().len(), 1);

    // The preview explains the verdict condition by condition.
    let verdict = preview(
        &app,
        &owner,
        &to_sp,
        &json!({ "email": "x@example.com", "uf": "RJ" }),
    )
    .await;
    let verdict = &verdict["data"]["renderPreview"];
    assert_eq!(verdict["filterPassed"], false);
    assert_eq!(
        verdict["conditions"],
        json!([
            { "index": 0, "field": "lead.custom_fields.state", "op": "EQ", "value": "SP",
              "passed": false, "actual": "RJ", "reason": null },
            { "index": 1, "field": "lead.email", "op": "EXISTS", "value": null,
              "passed": true, "actual": "x@example.com", "reason": null } ])
    );

    // Removing the filter takes every lead again.
    let cleared = app
        .gql_ok(
            &owner.token,
            "mutation($id: ID!) { updateIntegration(id: $id, input: { filter: null }) { filter { match } } }",
            json!({ "id": to_sp }),
        )
        .await;
    assert_eq!(cleared["updateIntegration"]["filter"], Value::Null);
    let (_, answer) = app
        .post_lead(
            &list.inbound_url,
            &json!({ "email": "any@example.com", "state": "BA" }),
        )
        .await;
    assert_eq!(
        app.lead_deliveries(&owner, answer["lead_id"].as_str().unwrap())
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_form_body_arrives_exactly_as_previewed() {
    let app = TestApp::production().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    let created = app
        .gql_ok(
            &owner.token,
            "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id signingSecret } }",
            json!({ "input": {
                "listId": list.id, "name": "Legacy CRM", "url": receiver.url("/form"),
                "headers": [{ "name": "Authorization", "value": "Bearer super-secret-token" }],
                "mapping": { "format": "FORM", "fields": [
                    { "target": "first_name", "source": "lead.name",
                      "transforms": [{ "name": "split_name", "arg": "first" }] },
                    { "target": "last_name", "source": "lead.name",
                      "transforms": [{ "name": "split_name", "arg": "last" }, { "name": "uppercase" }] },
                    { "target": "mobile", "source": "lead.custom_fields.celular_2",
                      "transforms": [{ "name": "e164" }] },
                    { "target": "uf", "source": "lead.custom_fields.state",
                      "transforms": [{ "name": "state_abbreviation" }] },
                    { "target": "birth", "source": "lead.custom_fields.birth_date",
                      "transforms": [{ "name": "date_format", "arg": "MM/DD/YYYY" }] },
                    { "target": "company", "source": "lead.company",
                      "transforms": [{ "name": "default", "arg": "n/a" }] },
                    { "target": "vendor", "value": "leadrelay" },
                    { "target": "campaign", "source": "meta.integration_name" },
                    { "target": "email", "source": "lead.email" } ] } } }),
        )
        .await;
    let integration = created["createIntegration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = created["createIntegration"]["signingSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    let sample = json!({
        "nome": "Ana Maria Silva", "email": "Ana@Example.com", "estado": "São Paulo",
        "celular_2": "(11) 98765-4321", "birth_date": "1990-07-14T10:00:00-03:00",
    });

    let previewed = preview(&app, &owner, &integration, &sample).await;
    let previewed = &previewed["data"]["renderPreview"];
    let expected = "first_name=Ana&last_name=MARIA+SILVA&mobile=%2B5511987654321&uf=SP\
        &birth=07%2F14%2F1990&company=n%2Fa&vendor=leadrelay&campaign=Legacy+CRM\
        &email=ana%40example.com";
    assert_eq!(previewed["body"], expected);
    assert_eq!(previewed["method"], "POST");
    assert_eq!(previewed["url"], receiver.url("/form"));
    assert_eq!(previewed["filterPassed"], true);
    assert_eq!(previewed["leadStatus"], "QUALIFIED");
    assert_eq!(previewed["warnings"], json!([]));
    let headers: Vec<(String, String)> = previewed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["valuePreview"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "authorization"
        ]
    );
    assert_eq!(headers[0].1, "application/x-www-form-urlencoded");
    assert_eq!(headers[4].1, "Bear••••", "the secret header is redacted");

    let (status, _) = app.post_lead(&list.inbound_url, &sample).await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(
        std::str::from_utf8(&got[0].body).unwrap(),
        expected,
        "the delivered body is byte for byte the previewed one"
    );
    assert_eq!(
        got[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer super-secret-token")
    );
    let timestamp: i64 = got[0].header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(
        signing::verify(
            &secret,
            got[0].header("webhook-id").unwrap(),
            timestamp,
            &got[0].body,
            got[0].header("webhook-signature").unwrap(),
        ),
        "the signature covers the exact bytes sent"
    );

    // A field the transform cannot handle is left out, and the preview says why.
    let odd = preview(
        &app,
        &owner,
        &integration,
        &json!({ "nome": "Bo", "email": "bo@example.com", "birth_date": "14/07/1990", "estado": "Narnia" }),
    )
    .await;
    let odd = &odd["data"]["renderPreview"];
    assert_eq!(
        odd["body"],
        "first_name=Bo&company=n%2Fa&vendor=leadrelay&campaign=Legacy+CRM&email=bo%40example.com"
    );
    let warnings = odd["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("mapping.fields[3] (uf)")
    );
    assert!(
        warnings[1]
            .as_str()
            .unwrap()
            .contains("mapping.fields[4] (birth)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_and_mappings_are_refused_naming_the_field() {
    let app = TestApp::production().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    let url = "http://127.0.0.1:9/hook";
    let field = |path: &str| json!({ "field": path, "op": "EXISTS" });
    let cases = [
        (
            "unknown filter path",
            json!({ "filter": { "match": "ALL", "conditions": [field("lead.email"), field("lead.emial")] } }),
            "filter.conditions[1].field",
        ),
        (
            "2 KiB regex",
            json!({ "filter": { "match": "ANY", "conditions": [
                { "field": "lead.email", "op": "MATCHES", "value": "a".repeat(2048) } ] } }),
            "filter.conditions[0].value",
        ),
        (
            "unknown mapping source",
            json!({ "mapping": { "format": "JSON", "fields": [
                { "target": "email", "source": "lead.mail" } ] } }),
            "mapping.fields[0].source",
        ),
        (
            "unknown transform",
            json!({ "mapping": { "format": "JSON", "fields": [
                { "target": "email", "source": "lead.email" },
                { "target": "name", "source": "lead.name", "transforms": [{ "name": "titlecase" }] } ] } }),
            "mapping.fields[1].transforms[0].name",
        ),
        (
            "bad date pattern",
            json!({ "mapping": { "format": "FORM", "fields": [
                { "target": "dob", "source": "lead.custom_fields.dob",
                  "transforms": [{ "name": "date_format", "arg": "DD/MM/AAAA" }] } ] } }),
            "mapping.fields[0].transforms[0].arg",
        ),
    ];
    let integration = app
        .create_integration_with(&owner, json!({ "listId": list.id, "url": url }))
        .await;
    for (case, extra, named) in cases {
        let mut input = json!({ "listId": list.id, "name": "CRM", "url": url });
        input
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let created = app
            .gql(
                Some(&owner.token),
                "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(error_code(&created), "BAD_USER_INPUT", "{case}: {created}");
        let message = created["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{named}:")),
            "{case}: {message}"
        );
        let updated = app
            .gql(
                Some(&owner.token),
                "mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { id } }",
                json!({ "id": integration, "input": extra }),
            )
            .await;
        assert_eq!(error_code(&updated), "BAD_USER_INPUT", "{case}: {updated}");
        assert!(
            updated["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{named}:")),
            "{case}: {updated}"
        );
    }
    assert_eq!(
        app.count_rows("integrations").await,
        1,
        "nothing bad was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_and_filters_are_tenant_scoped() {
    let app = TestApp::production().await;
    let (a, b) = (app.signup().await, app.signup().await);
    let list = app.create_list(&a, "A's list").await;
    let integration = app
        .create_integration_with(
            &a,
            json!({ "listId": list.id, "url": "http://127.0.0.1:9/hook" }),
        )
        .await;
    let sample = json!({ "email": "a@example.com" });

    let own = preview(&app, &a, &integration, &sample).await;
    assert!(own.get("errors").is_none(), "{own}");
    let body: Value =
        serde_json::from_str(own["data"]["renderPreview"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["event"], "lead.qualified",
        "no mapping: the default body"
    );
    assert_eq!(body["lead"]["email"], "a@example.com");

    for id in [integration.as_str(), "int_0000000000000000000000000000dead"] {
        let theirs = preview(&app, &b, id, &sample).await;
        assert_eq!(error_code(&theirs), "NOT_FOUND", "{id}: {theirs}");
    }
    let update = app
        .gql(
            Some(&b.token),
            "mutation($id: ID!) { updateIntegration(id: $id, input: { filter: { match: ALL,
                conditions: [{ field: \"lead.email\", op: EXISTS }] } }) { id } }",
            json!({ "id": integration }),
        )
        .await;
    assert_eq!(error_code(&update), "NOT_FOUND");
    let not_an_object = app
        .gql(
            Some(&a.token),
            RENDER_PREVIEW,
            json!({ "id": integration, "sample": ["a"] }),
        )
        .await;
    assert_eq!(error_code(&not_an_object), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_a_json_mapping_work_on_embedded_sqlite() {
    let app = TestApp::embedded().await;
    let receiver = Receiver::start().await;
    let owner = app.signup().await;
    let list = app.create_list(&owner, "Solar").await;
    app.create_integration_with(
        &owner,
        json!({ "listId": list.id, "url": receiver.url("/json"),
            "filter": { "match": "ALL", "conditions": [
                { "field": "lead.score", "op": "GTE", "value": 0 },
                { "field": "lead.custom_fields.state", "op": "NOT_IN", "value": ["RJ"] } ] },
            "mapping": { "format": "JSON", "fields": [
                { "target": "contact.email", "source": "lead.email" },
                { "target": "contact.phone", "source": "lead.phone",
                  "transforms": [{ "name": "digits_only" }] },
                { "target": "meta.list", "source": "list.name" },
                { "target": "meta.tags", "value": ["solar", 1] } ] } }),
    )
    .await;
    for lead in [
        json!({ "email": "rj@example.com", "state": "RJ" }),
        json!({ "email": "sp@example.com", "phone": "11 98765-4321", "state": "SP" }),
    ] {
        assert_eq!(app.post_lead(&list.inbound_url, &lead).await.0, 202);
    }
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(
        std::str::from_utf8(&got[0].body).unwrap(),
        r#"{"contact":{"email":"sp@example.com","phone":"5511987654321"},"meta":{"list":"Solar","tags":["solar",1]}}"#
    );
    assert_eq!(
        app.count_rows("deliveries").await,
        1,
        "the RJ lead went nowhere"
    );
}
