//! SCIM resources in and out. In: a POST or PUT body becomes a stored document (canonical
//! attribute names, values exactly as sent (S9), read-only and unknown core attributes dropped,
//! the password discarded (K3), extensions teamgate does not declare kept as sent). Out: a stored
//! row becomes a resource with `id`, `schemas` and `meta` (RFC 7643 §3.1), cut down by
//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::ResourceType;
use super::error::ScimError;
use super::patch::member_ids;
use super::schema::{self, Mutability, is_urn};

/// A request body made ready for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub doc: Map<String, Value>,
    /// Group members named in the body; `None` when the body has no `members` key (a PUT
    /// without it leaves the members alone, RFC 7644 §3.5.1 "not asserted").
    pub members: Option<Vec<String>>,
}

/// Turn a POST or PUT body for `rt` into a document to store.
pub fn normalize(rt: ResourceType, body: &Value) -> Result<Normalized, ScimError> {
    let obj = body.as_object().ok_or_else(|| {
        ScimError::InvalidSyntax(format!("the body must be a {} object", rt.name()))
    })?;
    let schemas_ok = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(rt.core_schema()))
            })
        });
    if !schemas_ok {
        return Err(ScimError::InvalidValue(format!(
            "\"schemas\" must be an array containing \"{}\" (RFC 7643 §3)",
            rt.core_schema()
        )));
    }
    let mut out = Normalized {
        doc: Map::new(),
        members: None,
    };
    for (key, value) in obj {
        if ["schemas", "id", "meta"]
            .iter()
            .any(|k| key.eq_ignore_ascii_case(k))
        {
            // RFC 7643 §3.1: client-supplied id and meta are ignored (security case 64).
            continue;
        }
        if let Some(s) = schema::schema_for(rt, key) {
            let inner = value
                .as_object()
                .ok_or_else(|| ScimError::InvalidValue(format!("{} must be an object", s.id)))?;
            let urn = (s.id != rt.core_schema()).then_some(s.id);
            for (k, v) in inner {
                put(rt, &mut out, urn, k, v)?;
            }
            continue;
        }
        if is_urn(key) {
            match key
                .rsplit_once(':')
                .and_then(|(urn, name)| schema::schema_for(rt, urn).map(|s| (s, name)))
            {
                Some((s, name)) => {
                    let urn = (s.id != rt.core_schema()).then_some(s.id);
                    put(rt, &mut out, urn, name, value)?;
                }
                None => {
                    // An extension teamgate does not declare: stored and returned as sent.
                    out.doc.insert(key.clone(), value.clone());
                }
            }
            continue;
        }
        put(rt, &mut out, None, key, value)?;
    }
    schema::check_required(rt, &out.doc)?;
    Ok(out)
}

/// Store one attribute of schema `urn` (`None`: core) into `out`.
fn put(
    rt: ResourceType,
    out: &mut Normalized,
    urn: Option<&'static str>,
    key: &str,
    value: &Value,
) -> Result<(), ScimError> {
    let Ok(Some(located)) = schema::locate(rt, urn, key) else {
        // Unknown attributes of a known schema are ignored (RFC 7644 §3.3 lets the server
        // choose; the Schemas document lists what is kept).
        return Ok(());
    };
    let attr = located.attr;
    if attr.mutability == Mutability::ReadOnly || (urn.is_none() && attr.name == "password") {
        // Read-only values are ignored (RFC 7644 §3.5.1), so Okta's `groups: []` is harmless;
        // the password is discarded (IdP quirk K3).
        return Ok(());
    }
    if rt == ResourceType::Group && urn.is_none() && attr.name == "members" {
        out.members = Some(member_ids(value)?);
        return Ok(());
    }
    let container = match located.schema {
        None => &mut out.doc,
        Some(s) => {
            let entry = out
                .doc
                .entry(s.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(m) => m,
                None => return Err(ScimError::InvalidValue(format!("{s} must be an object"))),
            }
        }
    };
    if container.contains_key(attr.name) {
        return Err(ScimError::InvalidSyntax(format!(
            "{} is given twice",
            attr.name
        )));
    }
    if let Some(v) = schema::coerce(attr, value, attr.name)? {
        container.insert(attr.name.to_owned(), v);
    }
    if let Some(s) = located.schema
        && out
            .doc
            .get(s)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        out.doc.remove(s);
    }
    Ok(())
}

/// What the store indexes or copies out of a user document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFields {
    pub user_name: String,
    pub external_id: Option<String>,
    /// `None` when the document does not say (a POST defaults to active, a PUT keeps the
    /// stored state: RFC 7644 §3.5.1 "not asserted").
    pub active: Option<bool>,
    pub display_name: Option<String>,
    /// The primary (else work, else first) email, for the `users` row's label.
    pub email: Option<String>,
    /// A display name for the `users` row.
    pub name: Option<String>,
}

pub fn user_fields(doc: &Map<String, Value>) -> UserFields {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    let emails: Vec<&Value> = doc
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let pick = |pred: &dyn Fn(&Value) -> bool| {
        emails
            .iter()
            .find(|e| pred(e))
            .and_then(|e| e.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let email = pick(&|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            pick(&|e| {
                e.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("work"))
            })
        })
        .or_else(|| pick(&|_| true));
    let name_obj = doc.get("name");
    let formatted = name_obj
        .and_then(|n| n.get("formatted"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let joined = {
        let parts: Vec<&str> = ["givenName", "familyName"]
            .iter()
            .filter_map(|k| name_obj.and_then(|n| n.get(*k)).and_then(Value::as_str))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    };
    let display_name = s("displayName");
    UserFields {
        user_name: s("userName").unwrap_or_default(),
        external_id: s("externalId").filter(|e| !e.is_empty()),
        active: doc.get("active").and_then(schema::parse_bool),
        name: display_name.clone().or(formatted).or(joined),
        display_name,
        email,
    }
}

/// What the store indexes out of a group document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFields {
    pub display_name: String,
    pub external_id: Option<String>,
}

pub fn group_fields(doc: &Map<String, Value>) -> GroupFields {
    GroupFields {
        display_name: doc
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        external_id: doc
            .get("externalId")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_owned),
    }
}

/// The weak ETag of a version (RFC 7644 §3.14).
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// `meta` of a rendered resource.
#[derive(Debug, Clone)]
pub struct Meta {
    pub created: String,
    pub last_modified: String,
    pub version: i64,
    pub location: String,
}

/// Render a stored document as a resource. `extra` holds the computed attributes (a user's
/// `active` and `groups`, a group's `members`).
pub fn render(
    rt: ResourceType,
    id: &str,
    doc: &Map<String, Value>,
    meta: &Meta,
    extra: Vec<(&'static str, Value)>,
) -> Value {
    let mut schemas = vec![Value::String(rt.core_schema().to_owned())];
    for key in doc.keys().filter(|k| is_urn(k)) {
        schemas.push(Value::String(key.clone()));
    }
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_owned()));
    for (k, v) in doc {
        out.insert(k.clone(), v.clone());
    }
    for (k, v) in extra {
        out.insert(k.to_owned(), v);
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rt.name(),
            "created": meta.created,
            "lastModified": meta.last_modified,
            "location": meta.location,
            "version": etag(meta.version),
        }),
    );
    Value::Object(out)
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), applied to rendered resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// container (`""` for core, else the extension URN, lowercased) → attribute (lowercased)
    /// → sub-attributes asked for (`None`: the whole attribute).
    include: Option<Tree>,
    exclude: Tree,
}

type Tree = BTreeMap<String, BTreeMap<String, Option<BTreeSet<String>>>>;

impl Selection {
    /// Parse the two comma-separated lists. Names may carry a schema URN prefix or be a whole
    /// extension URN; unknown names simply select nothing.
    pub fn parse(rt: ResourceType, attributes: Option<&str>, excluded: Option<&str>) -> Self {
        let include = attributes
            .filter(|a| !a.trim().is_empty())
            .map(|a| tree(rt, a));
        Self {
            include,
            exclude: excluded.map(|e| tree(rt, e)).unwrap_or_default(),
        }
    }

    /// Whether core attribute `name` (e.g. `members`) will be in the output, so the caller
    /// can skip loading it (`excludedAttributes=members` never reads members).
    pub fn wants(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        let excluded = self
            .exclude
            .get("")
            .and_then(|attrs| attrs.get(&name))
            .is_some_and(Option::is_none);
        let included = match &self.include {
            None => true,
            Some(t) => t
                .get("")
                .is_some_and(|attrs| attrs.contains_key("*") || attrs.contains_key(&name)),
        };
        included && !excluded
    }

    /// Cut `resource` down. `id` and `schemas` are returned always (RFC 7643 §7).
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(mut obj) = resource else {
            return resource;
        };
        if let Some(include) = &self.include {
            let mut out = Map::new();
            for (k, v) in &obj {
                let lk = k.to_lowercase();
                if lk == "id" || lk == "schemas" {
                    out.insert(k.clone(), v.clone());
                } else if is_urn(k) {
                    if let Some(kept) = include.get(&lk).and_then(|attrs| keep(v, attrs)) {
                        out.insert(k.clone(), kept);
                    }
                } else if let Some(core) = include.get("") {
                    if core.contains_key("*") {
                        out.insert(k.clone(), v.clone());
                    } else if let Some(sel) = core.get(&lk) {
                        out.insert(k.clone(), keep_subs(v, sel.as_ref()));
                    }
                }
            }
            obj = out;
        }
        for (container, attrs) in &self.exclude {
            if container.is_empty() {
                drop_attrs(&mut obj, attrs);
            } else if let Some((_, Value::Object(ext))) =
                obj.iter_mut().find(|(k, _)| k.to_lowercase() == *container)
            {
                drop_attrs(ext, attrs);
            }
        }
        Value::Object(obj)
    }
}

fn tree(rt: ResourceType, list: &str) -> Tree {
    let mut t = Tree::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some(s) = schema::schema_for(rt, item) {
            let container = if s.id == rt.core_schema() {
                String::new()
            } else {
                s.id.to_lowercase()
            };
            t.entry(container).or_default().insert("*".into(), None);
            continue;
        }
        let (container, path) = match is_urn(item).then(|| item.rsplit_once(':')).flatten() {
            Some((urn, path)) => match schema::schema_for(rt, urn) {
                Some(s) if s.id == rt.core_schema() => (String::new(), path),
                Some(s) => (s.id.to_lowercase(), path),
                None => (urn.to_lowercase(), path),
            },
            None => (String::new(), item),
        };
        let (name, sub) = match path.split_once('.') {
            Some((n, s)) => (n.to_lowercase(), Some(s.to_lowercase())),
            None => (path.to_lowercase(), None),
        };
        let attrs = t.entry(container).or_default();
        match sub {
            None => {
                attrs.insert(name, None);
            }
            Some(sub) => {
                let entry = attrs.entry(name).or_insert_with(|| Some(BTreeSet::new()));
                if let Some(subs) = entry {
                    subs.insert(sub);
                }
            }
        }
    }
    t
}

fn keep(ext: &Value, attrs: &BTreeMap<String, Option<BTreeSet<String>>>) -> Option<Value> {
    let obj = ext.as_object()?;
    if attrs.contains_key("*") {
        return Some(ext.clone());
    }
    let mut out = Map::new();
    for (k, v) in obj {
        if let Some(sel) = attrs.get(&k.to_lowercase()) {
            out.insert(k.clone(), keep_subs(v, sel.as_ref()));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn keep_subs(v: &Value, subs: Option<&BTreeSet<String>>) -> Value {
    let Some(subs) = subs else { return v.clone() };
    let cut = |o: &Map<String, Value>| {
        Value::Object(
            o.iter()
                .filter(|(k, _)| subs.contains(&k.to_lowercase()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    match v {
        Value::Object(o) => cut(o),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| i.as_object().map(cut).unwrap_or_else(|| i.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn drop_attrs(obj: &mut Map<String, Value>, attrs: &BTreeMap<String, Option<BTreeSet<String>>>) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        let lk = k.to_lowercase();
        if lk == "id" || lk == "schemas" {
            continue;
        }
        match attrs.get(&lk) {
            None => {}
            Some(None) => {
                obj.remove(&k);
            }
            Some(Some(subs)) => {
                if let Some(v) = obj.get_mut(&k) {
                    let strip = |o: &mut Map<String, Value>| {
                        o.retain(|sk, _| !subs.contains(&sk.to_lowercase()))
                    };
                    match v {
                        Value::Object(o) => strip(o),
                        Value::Array(items) => items
                            .iter_mut()
                            .filter_map(Value::as_object_mut)
                            .for_each(strip),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::scim::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

    fn okta_post() -> Value {
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "isabella@okta.local",
            "name": {"givenName": "Isabella", "familyName": "Silva"},
            "emails": [{"primary": true, "value": "isabella@okta.local", "type": "work"}],
            "displayName": "Isabella Silva",
            "locale": "en-US",
            "externalId": "00u1dhhb1fkIGP7RL1d8",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        })
    }

    #[test]
    fn okta_create_body_keeps_values_drops_password_and_groups() {
        let n = normalize(ResourceType::User, &okta_post()).unwrap();
        assert!(n.doc.get("password").is_none());
        assert!(n.doc.get("groups").is_none());
        assert!(n.doc.get("schemas").is_none());
        assert_eq!(n.doc["userName"], "isabella@okta.local");
        assert_eq!(n.doc["emails"][0]["value"], "isabella@okta.local");
        assert_eq!(n.doc["locale"], "en-US");
    }

    #[test]
    fn case_64_client_supplied_id_and_meta_are_ignored() {
        let mut body = okta_post();
        body["id"] = json!("chosen-by-client");
        body["meta"] = json!({"created": "1999-01-01T00:00:00Z"});
        let n = normalize(ResourceType::User, &body).unwrap();
        assert!(n.doc.get("id").is_none());
        assert!(n.doc.get("meta").is_none());
    }

    #[test]
    fn attribute_names_are_canonicalised_and_values_kept_as_sent() {
        let body = json!({"schemas": [USER_SCHEMA], "USERNAME": "MiXeD@Case", "Active": "False", "shoeSize": 44});
        let n = normalize(ResourceType::User, &body).unwrap();
        assert_eq!(n.doc["userName"], "MiXeD@Case");
        assert_eq!(n.doc["active"], false);
        assert!(n.doc.get("shoeSize").is_none());
    }

    #[test]
    fn the_same_attribute_twice_in_different_case_is_refused() {
        let body = json!({"schemas": [USER_SCHEMA], "userName": "a", "username": "b"});
        assert!(matches!(
            normalize(ResourceType::User, &body),
            Err(ScimError::InvalidSyntax(_))
        ));
    }

    #[test]
    fn a_body_without_the_core_schema_or_required_attribute_is_refused() {
        let no_schema = json!({"userName": "a"});
        assert!(matches!(
            normalize(ResourceType::User, &no_schema),
            Err(ScimError::InvalidValue(_))
        ));
        let no_name = json!({"schemas": [USER_SCHEMA], "displayName": "x"});
        assert!(matches!(
            normalize(ResourceType::User, &no_name),
            Err(ScimError::InvalidValue(_))
        ));
        let wrong_type = json!({"schemas": [USER_SCHEMA], "userName": "a", "active": "sometimes"});
        assert!(matches!(
            normalize(ResourceType::User, &wrong_type),
            Err(ScimError::InvalidValue(_))
        ));
        assert!(matches!(
            normalize(ResourceType::User, &json!("x")),
            Err(ScimError::InvalidSyntax(_))
        ));
    }

    #[test]
    fn extensions_are_kept_known_ones_checked_unknown_ones_as_sent() {
        let body = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, "urn:example:x:1.0:User"],
            "userName": "a",
            ENTERPRISE_USER_SCHEMA: {"EmployeeNumber": "42", "manager": {"value": "m"}, "unknown": 1},
            "urn:example:x:1.0:User": {"Anything": [1, {"goes": true}]}
        });
        let n = normalize(ResourceType::User, &body).unwrap();
        assert_eq!(
            n.doc[ENTERPRISE_USER_SCHEMA],
            json!({"employeeNumber": "42", "manager": {"value": "m"}})
        );
        assert_eq!(
            n.doc["urn:example:x:1.0:User"],
            json!({"Anything": [1, {"goes": true}]})
        );
    }

    #[test]
    fn entra_group_creation_with_its_extra_schema_and_empty_members() {
        let body = json!({
            "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1",
            "members": []
        });
        let n = normalize(ResourceType::Group, &body).unwrap();
        assert_eq!(n.members, Some(vec![]));
        assert!(n.doc.get("members").is_none());
        assert_eq!(
            group_fields(&n.doc).external_id.as_deref(),
            Some("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159")
        );
    }

    #[test]
    fn a_group_body_without_members_leaves_them_unasserted() {
        let n = normalize(
            ResourceType::Group,
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "G"}),
        )
        .unwrap();
        assert_eq!(n.members, None);
    }

    #[test]
    fn user_fields_pick_the_primary_email_and_a_display_name() {
        let n = normalize(ResourceType::User, &okta_post()).unwrap();
        let f = user_fields(&n.doc);
        assert_eq!(f.user_name, "isabella@okta.local");
        assert_eq!(f.external_id.as_deref(), Some("00u1dhhb1fkIGP7RL1d8"));
        assert_eq!(f.active, Some(true));
        assert_eq!(f.email.as_deref(), Some("isabella@okta.local"));
        assert_eq!(f.name.as_deref(), Some("Isabella Silva"));
        let bare = normalize(
            ResourceType::User,
            &json!({"schemas": [USER_SCHEMA], "userName": "b"}),
        )
        .unwrap();
        assert_eq!(
            user_fields(&bare.doc).active,
            None,
            "active is not asserted"
        );
    }

    fn rendered() -> Value {
        let n = normalize(ResourceType::User, &okta_post()).unwrap();
        render(
            ResourceType::User,
            "u-1",
            &n.doc,
            &Meta {
                created: "2024-01-01T00:00:00.000Z".into(),
                last_modified: "2024-01-02T00:00:00.000Z".into(),
                version: 3,
                location: "https://x/scim/v2/okta/Users/u-1".into(),
            },
            vec![("groups", json!([{"value": "g-1", "display": "G"}]))],
        )
    }

    #[test]
    fn a_rendered_resource_has_id_schemas_and_meta() {
        let r = rendered();
        assert_eq!(r["id"], "u-1");
        assert_eq!(r["schemas"], json!([USER_SCHEMA]));
        assert_eq!(r["meta"]["resourceType"], "User");
        assert_eq!(r["meta"]["version"], "W/\"3\"");
        assert_eq!(r["meta"]["location"], "https://x/scim/v2/okta/Users/u-1");
    }

    #[test]
    fn attributes_returns_only_what_is_asked_plus_id_and_schemas() {
        let sel = Selection::parse(
            ResourceType::User,
            Some("userName,name.givenName,emails.value"),
            None,
        );
        let r = sel.apply(rendered());
        let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["id", "schemas", "userName", "name", "emails"])
        );
        assert_eq!(r["name"], json!({"givenName": "Isabella"}));
        assert_eq!(r["emails"], json!([{"value": "isabella@okta.local"}]));
    }

    #[test]
    fn excluded_attributes_removes_but_never_id() {
        let sel = Selection::parse(ResourceType::User, None, Some("groups,emails.type,id,meta"));
        let r = sel.apply(rendered());
        assert!(r.get("groups").is_none());
        assert!(r.get("meta").is_none());
        assert_eq!(r["id"], "u-1");
        assert!(r["emails"][0].get("type").is_none());
        assert!(r["emails"][0].get("value").is_some());
        assert!(!sel.wants("groups"));
        assert!(sel.wants("members"));
    }

    #[test]
    fn urn_qualified_names_select_core_and_extension_attributes() {
        let sel = Selection::parse(
            ResourceType::User,
            Some("urn:ietf:params:scim:schemas:core:2.0:User:userName"),
            None,
        );
        let r = sel.apply(rendered());
        assert_eq!(r["userName"], "isabella@okta.local");
        assert!(r.get("displayName").is_none());
        assert!(!sel.wants("groups"));
    }

    #[test]
    fn members_are_wanted_unless_excluded_or_left_out_of_attributes() {
        assert!(Selection::parse(ResourceType::Group, None, None).wants("members"));
        assert!(!Selection::parse(ResourceType::Group, None, Some("members")).wants("members"));
        assert!(!Selection::parse(ResourceType::Group, None, Some("MEMBERS")).wants("members"));
        assert!(!Selection::parse(ResourceType::Group, Some("displayName"), None).wants("members"));
        assert!(
            Selection::parse(ResourceType::Group, Some("members.value"), None).wants("members")
        );
        assert!(
            Selection::parse(ResourceType::Group, None, Some("members.display")).wants("members")
        );
    }
}
