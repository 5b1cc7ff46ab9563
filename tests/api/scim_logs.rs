//! security case 44 for SCIM: trace-level logs of SCIM traffic (accepted and refused requests)
//! never hold a bearer token.

use crate::oidc_common::AllThreads;
use crate::scim_support::{PATCH_OP, ScimRig, USER};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn case_44_trace_logs_of_scim_requests_hold_no_bearer_token() {
    // Every thread: the test's own, and the store's writer, checkpointer and blocking pool.
    let logs = AllThreads::start();
    let rig = ScimRig::start().await;
    let created = rig
        .send(
            rig.req(Method::POST, "entra", "/Users")
                .header("content-type", "application/scim+json")
                .body(json!({"schemas": [USER], "userName": "logs@example.com", "externalId": "e-logs"}).to_string()),
        )
        .await;
    created.assert_status(201);
    let id = created.id();
    rig.send(
        rig.req(Method::PATCH, "entra", &format!("/Users/{id}"))
            .header("content-type", "application/scim+json")
            .body(json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}).to_string()),
    )
    .await
    .assert_status(200);
    let wrong = "not-a-real-token-but-secret-looking-0123456789";
    let refused = rig
        .client
        .get(rig.app.url("/scim/v2/entra/Users"))
        .bearer_auth(wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let okta_for_entra = rig
        .client
        .get(rig.app.url("/scim/v2/entra/Users"))
        .bearer_auth(&rig.okta_token)
        .send()
        .await
        .unwrap();
    assert_eq!(okta_for_entra.status(), 401);

    let text = logs.text();
    assert!(
        text.contains("/scim/v2/entra/Users"),
        "the capture works: {text}"
    );
    for (what, secret) in [
        ("entra token", rig.entra_token.as_str()),
        ("okta token", rig.okta_token.as_str()),
        ("refused token", wrong),
    ] {
        assert!(!text.contains(secret), "the {what} is in the logs");
    }
}
