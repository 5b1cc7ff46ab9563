//! Fixtures shared by the PATCH tests: a PatchOp body around some operations, Barbara Jensen's
//! user document, and PATCH applied to a user or to the group "Admins".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Value, json};

use super::{Operation, Patched, apply, parse_request};
use crate::domain::scim::error::ScimError;
use crate::domain::scim::{PATCH_OP, ResourceType};

pub(super) fn ops(v: Value) -> Vec<Operation> {
    parse_request(&json!({"schemas": [PATCH_OP], "Operations": v})).unwrap()
}

pub(super) fn user(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

pub(super) fn patch_user(doc: Value, operations: Value) -> Result<Map<String, Value>, ScimError> {
    apply(ResourceType::User, &user(doc), &ops(operations)).map(|p| p.doc)
}

pub(super) fn bjensen() -> Value {
    json!({
        "userName": "bjensen",
        "externalId": "ext-1",
        "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@home.example", "type": "home"}
        ]
    })
}

pub(super) fn patch_group(operations: Value) -> Result<Patched, ScimError> {
    apply(
        ResourceType::Group,
        &user(json!({"displayName": "Admins", "externalId": "g-1"})),
        &ops(operations),
    )
}
