//! Every operation applies to an in-memory copy; the first failure returns its error and the
//! stored resource is untouched (§3.5.2: "SHALL be treated as atomic"). Here each operation's
//! path, or each key of a no-path value, is resolved and routed to the code that changes it.

use serde_json::{Map, Value};

use super::{MemberChange, Op, Operation, Patched};
use crate::domain::scim::ResourceType;
use crate::domain::scim::error::ScimError;
use crate::domain::scim::filter;
use crate::domain::scim::schema::{self, Attr, AttrType, Mutability, is_urn};

/// Apply `ops` to a copy of `doc` (a stored resource document: canonical attribute names,
/// no `id`, `meta` or `members`). Nothing is applied unless every operation succeeds.
pub fn apply(
    rt: ResourceType,
    doc: &Map<String, Value>,
    ops: &[Operation],
) -> Result<Patched, ScimError> {
    let mut engine = Engine {
        rt,
        doc: doc.clone(),
        members: Vec::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        engine
            .operation(op)
            .map_err(|e| prefix(e, &format!("operation {i}: ")))?;
    }
    // Operations may leave an extension object empty; `{}` is not a value (RFC 7643 §2.5).
    engine
        .doc
        .retain(|k, v| !(is_urn(k) && v.as_object().is_some_and(Map::is_empty)));
    schema::check_required(rt, &engine.doc)?;
    Ok(Patched {
        doc: engine.doc,
        members: engine.members,
    })
}

fn prefix(e: ScimError, p: &str) -> ScimError {
    match e {
        ScimError::InvalidFilter(d) => ScimError::InvalidFilter(format!("{p}{d}")),
        ScimError::Mutability(d) => ScimError::Mutability(format!("{p}{d}")),
        ScimError::InvalidSyntax(d) => ScimError::InvalidSyntax(format!("{p}{d}")),
        ScimError::InvalidPath(d) => ScimError::InvalidPath(format!("{p}{d}")),
        ScimError::NoTarget(d) => ScimError::NoTarget(format!("{p}{d}")),
        ScimError::InvalidValue(d) => ScimError::InvalidValue(format!("{p}{d}")),
        other => other,
    }
}

/// The document being patched and the member changes gathered so far.
pub(super) struct Engine {
    pub(super) rt: ResourceType,
    pub(super) doc: Map<String, Value>,
    pub(super) members: Vec<MemberChange>,
}

/// How a path was given: explicitly, or as a key of a no-path value object. Keys of a value
/// object that name read-only or unknown attributes are ignored, as in a POST body (K7 sends
/// the group's `id` with every rename); an explicit path to them is an error.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Path,
    ValueKey,
}

impl Engine {
    fn operation(&mut self, op: &Operation) -> Result<(), ScimError> {
        match &op.path {
            None => {
                if op.op == Op::Remove {
                    return Err(ScimError::NoTarget(
                        "remove needs a path (RFC 7644 §3.5.2.2)".into(),
                    ));
                }
                let value = op.value.as_ref().ok_or_else(|| {
                    ScimError::InvalidValue("an operation without path needs a value".into())
                })?;
                let obj = value.as_object().ok_or_else(|| {
                    ScimError::InvalidValue(
                        "without a path, the value must be an object of attributes".into(),
                    )
                })?;
                self.object(op.op, None, obj)
            }
            Some(path) => {
                if let Some(s) = schema::schema_for(self.rt, path) {
                    if op.op == Op::Remove && op.value.is_none() {
                        // RFC 7644 §3.5.2.2: removing a whole extension removes every attribute
                        // of it (and its URN from `schemas`, which is rendered from the keys).
                        if s.id == self.rt.core_schema() {
                            return Err(ScimError::InvalidPath(format!(
                                "{} is the core schema; name the attribute to remove",
                                s.id
                            )));
                        }
                        // Removing an extension the user does not have changes nothing, like
                        // removing any other unassigned attribute.
                        self.doc.remove(s.id);
                        return Ok(());
                    }
                    // The path is a whole schema: its value is an object of that schema's attributes.
                    let obj = op
                        .value
                        .as_ref()
                        .and_then(Value::as_object)
                        .ok_or_else(|| {
                            ScimError::InvalidValue(format!(
                                "the value for {} must be an object",
                                s.id
                            ))
                        })?;
                    return self.object(op.op, Some(s.id), obj);
                }
                self.path(op.op, path, op.value.as_ref(), Origin::Path)
            }
        }
    }

    /// The keys of a value object, each applied as a path (Entra S5 puts `name.givenName` and
    /// URN-qualified names there).
    fn object(
        &mut self,
        op: Op,
        urn: Option<&str>,
        obj: &Map<String, Value>,
    ) -> Result<(), ScimError> {
        for (key, value) in obj {
            if urn.is_none() {
                if ["schemas", "id", "meta"]
                    .iter()
                    .any(|k| key.eq_ignore_ascii_case(k))
                {
                    continue;
                }
                if let Some(s) = schema::schema_for(self.rt, key) {
                    let inner = value.as_object().ok_or_else(|| {
                        ScimError::InvalidValue(format!("the value of {} must be an object", s.id))
                    })?;
                    if s.id == self.rt.core_schema() {
                        self.object(op, None, inner)?;
                    } else {
                        self.object(op, Some(s.id), inner)?;
                    }
                    continue;
                }
                if is_urn(key) && value.is_object() && is_schema_like(key) {
                    // An extension teamgate does not know, sent as one object: kept as sent.
                    self.opaque_object(op, key, value)?;
                    continue;
                }
            }
            let path = match urn {
                Some(u) => format!("{u}:{key}"),
                None => key.clone(),
            };
            self.path(op, &path, Some(value), Origin::ValueKey)?;
        }
        Ok(())
    }

    fn path(
        &mut self,
        op: Op,
        path: &str,
        value: Option<&Value>,
        origin: Origin,
    ) -> Result<(), ScimError> {
        let pp = filter::parse_path(path)?;
        let located = match schema::locate(self.rt, pp.attr.urn.as_deref(), &pp.attr.name) {
            Ok(Some(l)) => l,
            Ok(None) => return self.opaque_path(op, &pp, value),
            Err(_) if origin == Origin::ValueKey => return Ok(()),
            Err(e) => return Err(ScimError::InvalidPath(e)),
        };
        let attr = located.attr;
        if attr.mutability == Mutability::ReadOnly {
            return match origin {
                Origin::ValueKey => Ok(()),
                Origin::Path => Err(ScimError::Mutability(format!("{} is read-only", attr.name))),
            };
        }
        if located.schema.is_none() && attr.name == "password" {
            // Okta changes passwords with PATCH (K4); teamgate never stores them (K3).
            return Ok(());
        }
        if self.rt == ResourceType::Group && located.schema.is_none() && attr.name == "members" {
            return self.members(op, &pp, value);
        }
        let sub_name = pp.attr.sub.as_deref().or(pp.sub.as_deref());
        let sub = match sub_name {
            None => None,
            Some(s) => {
                let sub = attr.sub_attr(s).ok_or_else(|| {
                    ScimError::InvalidPath(format!("{} has no sub-attribute \"{s}\"", attr.name))
                })?;
                if sub.mutability == Mutability::ReadOnly {
                    return match origin {
                        Origin::ValueKey => Ok(()),
                        Origin::Path => Err(ScimError::Mutability(format!(
                            "{}.{} is read-only",
                            attr.name, sub.name
                        ))),
                    };
                }
                Some(sub)
            }
        };
        let field = filter::Field {
            schema: located.schema,
            attr,
            sub: None,
        };
        let target = Target {
            schema: located.schema,
            attr,
        };
        match (&pp.filter, sub) {
            (None, None) => self.whole(op, target, value),
            (None, Some(sub)) => self.sub_of_all(op, target, sub, value),
            (Some(f), sub) => {
                if !attr.multi || attr.ty != AttrType::Complex {
                    return Err(ScimError::InvalidPath(format!(
                        "{} is not a multi-valued complex attribute",
                        attr.name
                    )));
                }
                let cond = filter::resolve(self.rt, f, Some(field)).map_err(|e| {
                    ScimError::InvalidPath(format!("the filter in the path is not supported: {e}"))
                })?;
                self.filtered(op, target, &cond, sub, value)
            }
        }
    }
}

/// A declared attribute a path resolved to, and the extension schema holding it, if any.
#[derive(Clone, Copy)]
pub(super) struct Target {
    pub(super) schema: Option<&'static str>,
    pub(super) attr: &'static Attr,
}

/// A key that names a schema rather than `schema:attribute`: its last segment starts with an
/// upper-case letter by convention (`...:2.0:User`).
fn is_schema_like(s: &str) -> bool {
    s.rsplit(':').next().is_some_and(|last| {
        last.starts_with(|c: char| c.is_ascii_uppercase()) && !last.contains(['.', '['])
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::scim::ENTERPRISE_USER_SCHEMA;
    use crate::domain::scim::patch::fixtures::{bjensen, ops, patch_group, patch_user, user};

    /// Found by the `scim_patch` fuzz target: a value key with a multi-byte character across
    /// its fourth byte made the `urn:` check panic.
    #[test]
    fn a_multi_byte_character_in_a_value_key_is_an_error_not_a_panic() {
        let got = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {"dis\u{481}alamu:": "a@b.c"}}]),
        );
        assert!(matches!(got, Err(ScimError::InvalidPath(_))), "{got:?}");
    }

    #[test]
    fn okta_deactivates_with_a_no_path_replace() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .unwrap();
        assert_eq!(doc["active"], json!(false));
    }

    #[test]
    fn entra_no_path_replace_with_path_keys_changes_each_attribute() {
        let doc = patch_user(
            bjensen(),
            json!([
                {"op": "replace", "value": {
                    "displayName": "Babs J",
                    "name.givenName": "Babs",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984"
                }},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"}
            ]),
        )
        .unwrap();
        assert_eq!(doc["displayName"], "Babs J");
        assert_eq!(
            doc["name"],
            json!({"givenName": "Babs", "familyName": "Jensen"})
        );
        assert_eq!(doc[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "701984");
        assert_eq!(doc["emails"][0]["value"], "babs@example.com");
        assert_eq!(doc["emails"][0]["type"], "work");
        assert_eq!(doc["emails"][1]["value"], "babs@home.example");
    }

    #[test]
    fn removing_the_whole_enterprise_extension_removes_every_attribute_of_it() {
        let mut doc = bjensen();
        doc[ENTERPRISE_USER_SCHEMA] = json!({"employeeNumber": "701984", "department": "Tour"});
        for op in ["remove", "Remove"] {
            let got = patch_user(
                doc.clone(),
                json!([{"op": op, "path": ENTERPRISE_USER_SCHEMA}]),
            )
            .unwrap();
            assert!(got.get(ENTERPRISE_USER_SCHEMA).is_none(), "{got:?}");
            assert_eq!(got["userName"], "bjensen", "the core attributes stay");
        }
        // Removing it again changes nothing, like any unassigned attribute.
        let got = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": ENTERPRISE_USER_SCHEMA}]),
        )
        .unwrap();
        assert_eq!(got, user(bjensen()));
        // The core schema is not an attribute to remove.
        let got = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User"}]),
        );
        assert!(matches!(got, Err(ScimError::InvalidPath(_))), "{got:?}");
    }

    #[test]
    fn removing_active_and_external_id_leaves_them_unassigned() {
        let got = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "active"}, {"op": "Remove", "path": "externalId"}]),
        )
        .unwrap();
        assert!(
            got.get("active").is_none() && got.get("externalId").is_none(),
            "{got:?}"
        );
    }

    #[test]
    fn case_65_a_malformed_path_is_invalid_path() {
        for path in [
            "emails[type eq",
            "shoeSize",
            "name.shoe",
            "emails[shoe eq \"x\"]",
            "name[givenName pr]",
        ] {
            let got = patch_user(
                bjensen(),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert!(
                matches!(got, Err(ScimError::InvalidPath(_))),
                "{path}: {got:?}"
            );
        }
    }

    #[test]
    fn case_65_remove_without_path_is_no_target() {
        let got = patch_user(bjensen(), json!([{"op": "remove"}]));
        assert!(matches!(got, Err(ScimError::NoTarget(_))));
    }

    /// All or nothing: the first operation alone changes the document, yet followed by a
    /// failing one the whole PATCH is an error naming that second operation, and no document
    /// (half-patched or not) comes out for the store to write.
    #[test]
    fn case_66_a_failing_second_operation_fails_the_whole_patch() {
        let original = user(bjensen());
        let first = json!({"op": "replace", "path": "displayName", "value": "changed"});
        let alone = apply(ResourceType::User, &original, &ops(json!([first]))).unwrap();
        assert_eq!(alone.doc["displayName"], "changed");
        let result = apply(
            ResourceType::User,
            &original,
            &ops(json!([first, {"op": "replace", "path": "shoeSize", "value": 44}])),
        );
        match result {
            Err(ScimError::InvalidPath(detail)) => {
                assert!(detail.starts_with("operation 1: "), "{detail}");
            }
            Err(other) => panic!("{other:?}"),
            Ok(patched) => panic!("a half-applied PATCH came out: {:?}", patched.doc),
        }
    }

    #[test]
    fn case_64_an_explicit_path_to_a_read_only_attribute_is_a_mutability_error() {
        for path in ["id", "meta.created", "groups"] {
            let got = patch_user(
                bjensen(),
                json!([{"op": "replace", "path": path, "value": "x"}]),
            );
            assert!(
                matches!(got, Err(ScimError::Mutability(_))),
                "{path}: {got:?}"
            );
        }
    }

    #[test]
    fn removing_the_required_user_name_is_refused() {
        let got = patch_user(bjensen(), json!([{"op": "remove", "path": "userName"}]));
        assert!(matches!(got, Err(ScimError::InvalidValue(_))));
    }

    #[test]
    fn read_only_and_unknown_keys_of_a_no_path_value_are_ignored() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "replace", "value": {"id": "zzz", "meta": {}, "groups": [], "shoeSize": 44, "title": "Boss"}}]),
        )
        .unwrap();
        assert_eq!(doc["title"], "Boss");
        assert!(
            doc.get("id").is_none() && doc.get("shoeSize").is_none() && doc.get("groups").is_none()
        );
    }

    #[test]
    fn a_password_change_is_accepted_and_discarded() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "replace", "path": "password", "value": "hunter2"}]),
        )
        .unwrap();
        assert!(doc.get("password").is_none());
    }

    #[test]
    fn a_whole_extension_path_takes_an_object() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "add", "path": ENTERPRISE_USER_SCHEMA, "value": {"department": "R&D", "manager": "m1"}}]),
        )
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA],
            json!({"department": "R&D", "manager": {"value": "m1"}})
        );
    }

    #[test]
    fn a_group_without_display_name_is_refused() {
        let got = patch_group(json!([{"op": "remove", "path": "displayName"}]));
        assert!(matches!(got, Err(ScimError::InvalidValue(_))));
    }
}
