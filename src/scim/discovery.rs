//! Discovery (RFC 7644 §4, RFC 7643 §5-7): `/ServiceProviderConfig`, `/ResourceTypes` and
//! `/Schemas`, describing exactly what this server does: PATCH and ETags yes; Bulk, sorting
//! and password changes no; filters up to [`MAX_RESULTS`] results per page.

use serde_json::{Value, json};

use crate::domain::scim::schema::{self, Schema};
use crate::domain::scim::{LIST_RESPONSE, MAX_PAYLOAD, MAX_RESULTS, ResourceType};

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/teamgate/teamgate#entra-provisioning",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": MAX_PAYLOAD },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token from `teamgate scim-token create PROVIDER`, sent as Authorization: Bearer. Tokens in the URL are refused.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

fn resource_type_json(base: &str, rt: ResourceType) -> Value {
    let extensions: Vec<Value> = schema::extensions(rt)
        .iter()
        .map(|s| json!({ "schema": s.id, "required": false }))
        .collect();
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": rt.name(),
        "name": rt.name(),
        "endpoint": format!("/{}", rt.endpoint()),
        "description": match rt {
            ResourceType::User => "User Account",
            ResourceType::Group => "Group",
        },
        "schema": rt.core_schema(),
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{}", rt.name()),
        },
    });
    if let (false, Some(obj)) = (extensions.is_empty(), v.as_object_mut()) {
        obj.insert("schemaExtensions".into(), Value::Array(extensions));
    }
    v
}

/// The resource type named `id` (`User` or `Group`, any case).
pub fn resource_type(base: &str, id: &str) -> Option<Value> {
    [ResourceType::User, ResourceType::Group]
        .into_iter()
        .find(|rt| rt.name().eq_ignore_ascii_case(id))
        .map(|rt| resource_type_json(base, rt))
}

pub fn resource_types(base: &str) -> Value {
    list(vec![
        resource_type_json(base, ResourceType::User),
        resource_type_json(base, ResourceType::Group),
    ])
}

fn schema_json(base: &str, s: &Schema) -> Value {
    s.to_json(&format!("{base}/Schemas/{}", s.id))
}

/// The schema whose URN is `id` (case-insensitive).
pub fn schema(base: &str, id: &str) -> Option<Value> {
    schema::ALL
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(|s| schema_json(base, s))
}

pub fn schemas(base: &str) -> Value {
    list(schema::ALL.iter().map(|s| schema_json(base, s)).collect())
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_provider_config_says_bulk_and_sort_are_not_supported() {
        let c = service_provider_config("https://x/scim/v2/entra");
        assert_eq!(c["bulk"]["supported"], false);
        assert_eq!(c["sort"]["supported"], false);
        assert_eq!(c["patch"]["supported"], true);
        assert_eq!(c["etag"]["supported"], true);
        assert_eq!(c["filter"]["maxResults"], MAX_RESULTS);
        assert_eq!(
            c["meta"]["location"],
            "https://x/scim/v2/entra/ServiceProviderConfig"
        );
    }

    #[test]
    fn resource_types_declare_the_enterprise_extension_for_users_only() {
        let u = resource_type("b", "user").unwrap_or_default();
        assert_eq!(
            u["schemaExtensions"][0]["schema"],
            crate::domain::scim::ENTERPRISE_USER_SCHEMA
        );
        let g = resource_type("b", "Group").unwrap_or_default();
        assert!(g.get("schemaExtensions").is_none());
        assert!(resource_type("b", "Device").is_none());
        assert_eq!(resource_types("b")["totalResults"], 2);
    }

    #[test]
    fn schemas_are_served_by_urn() {
        assert_eq!(schemas("b")["totalResults"], 3);
        let s = schema("b", "urn:ietf:params:scim:schemas:core:2.0:Group").unwrap_or_default();
        assert_eq!(s["name"], "Group");
        assert!(schema("b", "x").is_none());
    }
}
