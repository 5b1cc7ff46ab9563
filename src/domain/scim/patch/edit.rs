//! `add`, `remove` and `replace` on an attribute teamgate declares: the whole attribute, a
//! sub-attribute of it or of every value, or the values a path filter matches; `immutable`
//! attributes are guarded (RFC 7643 §2.3.8) and one value at most stays primary (§2.4).

use serde_json::{Map, Value};

use super::apply::{Engine, Target};
use super::{Op, op_name};
use crate::domain::scim::error::ScimError;
use crate::domain::scim::filter::Cond;
use crate::domain::scim::schema::{self, Attr, AttrType, Mutability};

impl Engine {
    /// The object holding `target`'s attribute: the document or an extension object.
    fn container(
        &mut self,
        schema: Option<&'static str>,
        create: bool,
    ) -> Result<Option<&mut Map<String, Value>>, ScimError> {
        let Some(urn) = schema else {
            return Ok(Some(&mut self.doc));
        };
        if create && !self.doc.contains_key(urn) {
            self.doc.insert(urn.to_owned(), Value::Object(Map::new()));
        }
        match self.doc.get_mut(urn) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ScimError::InvalidValue(format!("{urn} must be an object"))),
        }
    }

    /// Drop an extension object left empty, so it is not rendered as `{}`.
    fn tidy(&mut self, schema: Option<&'static str>) {
        if let Some(urn) = schema
            && self
                .doc
                .get(urn)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
        {
            self.doc.remove(urn);
        }
    }

    pub(super) fn whole(
        &mut self,
        op: Op,
        t: Target,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr = t.attr;
        let new = match (op, value) {
            (Op::Remove, _) => None,
            (_, None) => {
                return Err(ScimError::InvalidValue(format!(
                    "{} needs a value",
                    op_name(op)
                )));
            }
            (_, Some(v)) => schema::coerce(attr, v, attr.name)?,
        };
        let container = self.container(t.schema, op != Op::Remove)?;
        let Some(container) = container else {
            return Ok(());
        };
        let existing = container.get(attr.name).cloned();
        match op {
            Op::Remove => {
                if attr.multi
                    && let Some(items) = value
                {
                    // Remove the listed values only (Entra's default member removal form, S3).
                    remove_values(container, attr, items);
                    self.tidy(t.schema);
                    return Ok(());
                }
                guard_immutable(attr, existing.as_ref(), None)?;
                container.remove(attr.name);
            }
            Op::Add => {
                let Some(new) = new else { return Ok(()) };
                if attr.multi {
                    let mut items = match existing {
                        Some(Value::Array(items)) => items,
                        _ => Vec::new(),
                    };
                    for item in new.as_array().into_iter().flatten() {
                        if !items.contains(item) {
                            if is_primary(item) {
                                clear_primary(&mut items);
                            }
                            items.push(item.clone());
                        }
                    }
                    container.insert(attr.name.to_owned(), Value::Array(items));
                } else if attr.ty == AttrType::Complex {
                    merge_into(container, attr.name, new);
                } else {
                    guard_immutable(attr, existing.as_ref(), Some(&new))?;
                    container.insert(attr.name.to_owned(), new);
                }
            }
            Op::Replace => match new {
                None => {
                    guard_immutable(attr, existing.as_ref(), None)?;
                    container.remove(attr.name);
                }
                // RFC 7644 §3.5.2.3: replacing a complex attribute replaces the sub-attributes given
                // and leaves the others.
                Some(new) if attr.ty == AttrType::Complex && !attr.multi => {
                    merge_into(container, attr.name, new)
                }
                Some(new) => {
                    guard_immutable(attr, existing.as_ref(), Some(&new))?;
                    container.insert(attr.name.to_owned(), new);
                }
            },
        }
        self.tidy(t.schema);
        Ok(())
    }

    /// `attr.sub` without a filter: the sub-attribute of a single complex attribute, or of
    /// every value of a multi-valued one.
    pub(super) fn sub_of_all(
        &mut self,
        op: Op,
        t: Target,
        sub: &'static Attr,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr = t.attr;
        let new = match (op, value) {
            (Op::Remove, _) => None,
            (_, None) => {
                return Err(ScimError::InvalidValue(format!(
                    "{} needs a value",
                    op_name(op)
                )));
            }
            (_, Some(v)) => schema::coerce(sub, v, &format!("{}.{}", attr.name, sub.name))?,
        };
        let Some(container) = self.container(t.schema, op != Op::Remove)? else {
            return Ok(());
        };
        if attr.multi {
            let Some(Value::Array(items)) = container.get_mut(attr.name) else {
                return Err(ScimError::NoTarget(format!("{} has no values", attr.name)));
            };
            for item in items.iter_mut() {
                set_sub(item, sub, new.clone());
            }
        } else {
            let obj = container
                .entry(attr.name.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            set_sub(obj, sub, new);
            if obj.as_object().is_some_and(Map::is_empty) {
                container.remove(attr.name);
            }
        }
        self.tidy(t.schema);
        Ok(())
    }

    pub(super) fn filtered(
        &mut self,
        op: Op,
        t: Target,
        cond: &Cond,
        sub: Option<&'static Attr>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let attr = t.attr;
        let new = match (op, value, sub) {
            (Op::Remove, _, _) => None,
            (_, None, _) => {
                return Err(ScimError::InvalidValue(format!(
                    "{} needs a value",
                    op_name(op)
                )));
            }
            (_, Some(v), Some(sub)) => {
                schema::coerce(sub, v, &format!("{}.{}", attr.name, sub.name))?
            }
            (_, Some(v), None) => schema::coerce_single(attr, v, attr.name)?,
        };
        let Some(container) = self.container(t.schema, op != Op::Remove)? else {
            return Err(ScimError::NoTarget(format!(
                "no value of {} matches the filter",
                attr.name
            )));
        };
        let mut items = match container.remove(attr.name) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let matched: Vec<usize> = (0..items.len())
            .filter(|i| cond.matches_element(&items[*i]))
            .collect();
        let no_target =
            || ScimError::NoTarget(format!("no value of {} matches the filter", attr.name));
        match (op, sub) {
            (Op::Remove, None) => {
                if matched.is_empty() {
                    return Err(no_target());
                }
                let mut i = 0;
                items.retain(|_| {
                    let keep = !matched.contains(&i);
                    i += 1;
                    keep
                });
            }
            (Op::Remove, Some(sub)) => {
                if matched.is_empty() {
                    return Err(no_target());
                }
                for i in &matched {
                    set_sub(&mut items[*i], sub, None);
                }
            }
            (Op::Add | Op::Replace, Some(sub)) => {
                if matched.is_empty() {
                    // Entra sends `emails[type eq "work"].value` to a user who has no work email
                    // yet: create the value the filter describes rather than fail (S5).
                    let eqs = cond.equalities().ok_or_else(no_target)?;
                    let mut element = Map::new();
                    for (k, v) in eqs {
                        element.insert(k.to_owned(), v);
                    }
                    let mut element = Value::Object(element);
                    set_sub(&mut element, sub, new);
                    items.push(element);
                } else {
                    for i in &matched {
                        set_sub(&mut items[*i], sub, new.clone());
                    }
                }
            }
            (Op::Replace, None) => {
                if matched.is_empty() {
                    return Err(no_target());
                }
                let new = new.ok_or_else(|| {
                    ScimError::InvalidValue(format!("replace needs a {} value", attr.name))
                })?;
                if is_primary(&new) {
                    clear_primary(&mut items);
                }
                for i in &matched {
                    items[*i] = new.clone();
                }
            }
            (Op::Add, None) => {
                let new = new.ok_or_else(|| {
                    ScimError::InvalidValue(format!("add needs a {} value", attr.name))
                })?;
                if matched.is_empty() {
                    let eqs = cond.equalities().ok_or_else(no_target)?;
                    let mut element = new.as_object().cloned().unwrap_or_default();
                    for (k, v) in eqs {
                        element.entry(k.to_owned()).or_insert(v);
                    }
                    items.push(Value::Object(element));
                } else {
                    for i in &matched {
                        if let (Some(target), Some(src)) =
                            (items[*i].as_object_mut(), new.as_object())
                        {
                            for (k, v) in src {
                                target.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
        }
        items.retain(|v| v.as_object().is_none_or(|o| !o.is_empty()));
        if !items.is_empty() {
            container.insert(attr.name.to_owned(), Value::Array(items));
        }
        self.tidy(t.schema);
        Ok(())
    }
}

/// RFC 7643 §2.3.8: an `immutable` attribute may be set when it has no value, never changed.
fn guard_immutable(
    attr: &Attr,
    existing: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), ScimError> {
    let has_value = existing.is_some_and(|v| !v.is_null());
    if attr.mutability == Mutability::Immutable && has_value && existing != new {
        return Err(ScimError::Mutability(format!(
            "{} is immutable: it is already set and cannot change",
            attr.name
        )));
    }
    Ok(())
}

fn merge_into(container: &mut Map<String, Value>, name: &str, new: Value) {
    let Value::Object(new) = new else { return };
    let entry = container
        .entry(name.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    match entry.as_object_mut() {
        Some(obj) => {
            for (k, v) in new {
                obj.insert(k, v);
            }
        }
        None => *entry = Value::Object(new),
    }
}

fn set_sub(element: &mut Value, sub: &Attr, new: Option<Value>) {
    let Some(obj) = element.as_object_mut() else {
        return;
    };
    match new {
        None => {
            obj.remove(sub.name);
        }
        Some(v) => {
            obj.insert(sub.name.to_owned(), v);
        }
    }
}

fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// RFC 7643 §2.4: at most one value is primary; a new primary value demotes the others.
fn clear_primary(items: &mut [Value]) {
    for item in items {
        if let Some(obj) = item.as_object_mut()
            && obj.get("primary").and_then(Value::as_bool) == Some(true)
        {
            obj.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// `remove` with a value on a multi-valued attribute: drop the values that equal one given,
/// compared on `value` when the attribute has one.
fn remove_values(container: &mut Map<String, Value>, attr: &Attr, given: &Value) {
    let given: Vec<&Value> = match given {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let case_exact = attr.sub_attr("value").is_none_or(|v| v.case_exact);
    let key = |v: &Value| -> Option<String> {
        let s = v.get("value").and_then(Value::as_str)?;
        Some(if case_exact {
            s.to_owned()
        } else {
            s.to_lowercase()
        })
    };
    let dropped: Vec<Option<String>> = given.iter().map(|v| key(v)).collect();
    if let Some(Value::Array(items)) = container.get_mut(attr.name) {
        items.retain(|item| {
            let k = key(item);
            let listed = k.is_some() && dropped.contains(&k);
            !(listed || given.contains(&item))
        });
        if items.is_empty() {
            container.remove(attr.name);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::scim::ENTERPRISE_USER_SCHEMA;
    use crate::domain::scim::patch::fixtures::{bjensen, patch_user};

    #[test]
    fn entra_disables_a_user_with_a_string_false() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(doc["active"], json!(false));
    }

    #[test]
    fn a_work_email_set_through_a_filter_path_is_created_when_missing() {
        let doc = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "a@x.com"}]),
        )
        .unwrap();
        assert_eq!(doc["emails"], json!([{"type": "work", "value": "a@x.com"}]));
    }

    #[test]
    fn add_appends_to_multi_valued_attributes_and_a_new_primary_demotes_the_old() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "add", "path": "emails", "value": [{"value": "new@x", "type": "other", "primary": true}]}]),
        )
        .unwrap();
        let emails = doc["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[0]["primary"], false);
        assert_eq!(emails[2]["primary"], true);
    }

    #[test]
    fn replace_of_a_complex_attribute_keeps_unnamed_sub_attributes() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "replace", "path": "name", "value": {"givenName": "B"}}]),
        )
        .unwrap();
        assert_eq!(
            doc["name"],
            json!({"givenName": "B", "familyName": "Jensen"})
        );
    }

    #[test]
    fn remove_with_a_filter_drops_only_matching_values() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
        )
        .unwrap();
        assert_eq!(doc["emails"].as_array().unwrap().len(), 1);
        assert_eq!(doc["emails"][0]["type"], "work");
    }

    #[test]
    fn remove_of_a_sub_attribute_through_a_filter() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
        )
        .unwrap();
        assert!(doc["emails"][0].get("primary").is_none());
    }

    #[test]
    fn remove_of_a_single_valued_attribute_unassigns_it() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "remove", "path": "name.givenName"}]),
        )
        .unwrap();
        assert_eq!(doc["name"], json!({"familyName": "Jensen"}));
        let doc = patch_user(bjensen(), json!([{"op": "remove", "path": "name"}])).unwrap();
        assert!(doc.get("name").is_none());
    }

    #[test]
    fn case_65_a_path_filter_matching_nothing_is_no_target() {
        for op in [
            json!({"op": "remove", "path": "emails[type eq \"other\"]"}),
            json!({"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "x"}}),
            json!({"op": "replace", "path": "emails[type eq \"a\" or type eq \"b\"].value", "value": "x"}),
        ] {
            let got = patch_user(bjensen(), json!([op]));
            assert!(matches!(got, Err(ScimError::NoTarget(_))), "{got:?}");
        }
    }

    #[test]
    fn a_users_external_id_is_replaced_and_removed_as_entra_sends_it() {
        // Entra's default mapping replaces externalId (IdP quirk S12); the link follows it.
        let doc = patch_user(
            bjensen(),
            json!([{"op": "Replace", "path": "externalId", "value": "other"}]),
        )
        .unwrap();
        assert_eq!(doc["externalId"], "other");
        let doc = patch_user(bjensen(), json!([{"op": "remove", "path": "externalId"}])).unwrap();
        assert!(doc.get("externalId").is_none(), "{doc:?}");
        let doc = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "add", "path": "externalId", "value": "e"}]),
        )
        .unwrap();
        assert_eq!(doc["externalId"], "e");
    }

    #[test]
    fn case_64_an_immutable_attribute_that_has_a_value_cannot_change() {
        let attr = Attr {
            mutability: Mutability::Immutable,
            ..*schema::USER.attr("title").unwrap()
        };
        let set = json!("a");
        assert!(
            guard_immutable(&attr, None, Some(&set)).is_ok(),
            "setting it once"
        );
        assert!(
            guard_immutable(&attr, Some(&set), Some(&set)).is_ok(),
            "the same value"
        );
        assert!(matches!(
            guard_immutable(&attr, Some(&set), Some(&json!("b"))),
            Err(ScimError::Mutability(_))
        ));
        assert!(matches!(
            guard_immutable(&attr, Some(&set), None),
            Err(ScimError::Mutability(_))
        ));
    }

    #[test]
    fn case_67_a_wrong_type_is_invalid_value() {
        for op in [
            json!({"op": "replace", "path": "active", "value": "maybe"}),
            json!({"op": "replace", "path": "userName", "value": 5}),
            json!({"op": "replace", "path": "name", "value": 5}),
            json!({"op": "replace", "value": "not an object"}),
            json!({"op": "add", "path": "title"}),
        ] {
            let got = patch_user(bjensen(), json!([op]));
            assert!(matches!(got, Err(ScimError::InvalidValue(_))), "{got:?}");
        }
    }

    #[test]
    fn entra_sets_the_manager_as_a_plain_id() {
        let doc = patch_user(
            bjensen(),
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-2"}]),
        )
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE_USER_SCHEMA]["manager"],
            json!({"value": "m-2"})
        );
    }
}
