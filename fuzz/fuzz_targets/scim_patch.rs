//! Any JSON body as a SCIM PATCH request (RFC 7644 §3.5.2), applied to a stored User and
//! Group: the result is a patched copy or a `ScimError`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use teamgate::scim::ResourceType;
use teamgate::scim::patch;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(ops) = patch::parse_request(&body) else {
        return;
    };
    let user = json!({
        "userName": "alice@example.com",
        "active": true,
        "name": { "givenName": "Alice" },
        "emails": [{ "value": "alice@example.com", "type": "work", "primary": true }],
    });
    let group = json!({ "displayName": "Staff" });
    for (rt, doc) in [(ResourceType::User, user), (ResourceType::Group, group)] {
        let doc: Map<String, Value> = doc.as_object().cloned().unwrap_or_default();
        let _ = patch::apply(rt, &doc, &ops);
    }
});
