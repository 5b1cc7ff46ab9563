//! Group members are never loaded: changes to `members` come out as [`MemberChange`]s for the
//! store to apply one row at a time, so one member costs the same in a group of ten as in a
//! group of 100,000. Entra's and Okta's member forms (S3, S4, K7) are read here.

use serde_json::Value;

use super::apply::Engine;
use super::parse::get_ci;
use super::{MemberChange, Op};
use crate::domain::scim::error::ScimError;
use crate::domain::scim::filter::{self, Filter, PatchPath};

impl Engine {
    pub(super) fn members(
        &mut self,
        op: Op,
        pp: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if pp.attr.sub.is_some() || pp.sub.is_some() {
            return Err(ScimError::InvalidPath(
                "members' sub-attributes cannot be changed; add or remove the member instead"
                    .into(),
            ));
        }
        let change =
            match (op, &pp.filter) {
                (Op::Add, None) => MemberChange::Add(member_ids(value.ok_or_else(|| {
                    ScimError::InvalidValue("add members needs a value".into())
                })?)?),
                (Op::Add, Some(_)) => {
                    return Err(ScimError::InvalidPath(
                        "add takes \"members\" without a filter".into(),
                    ));
                }
                (Op::Replace, None) => match value {
                    None => {
                        return Err(ScimError::InvalidValue(
                            "replace members needs a value".into(),
                        ));
                    }
                    Some(v) => MemberChange::Replace(member_ids(v)?),
                },
                (Op::Replace, Some(f)) => {
                    // Replace the matched member by the given one: a remove then an add.
                    let out = filter_member_ids(f)?;
                    self.members.push(MemberChange::RemoveMatching(out));
                    let v = value.ok_or_else(|| {
                        ScimError::InvalidValue("replace members needs a value".into())
                    })?;
                    MemberChange::Add(member_ids(v)?)
                }
                (Op::Remove, None) => match value {
                    Some(v) if !v.is_null() => MemberChange::Remove(member_ids(v)?),
                    _ => MemberChange::RemoveAll,
                },
                (Op::Remove, Some(f)) => MemberChange::RemoveMatching(filter_member_ids(f)?),
            };
        self.members.push(change);
        Ok(())
    }
}

/// The user ids in a members value: `[{"value":"id"}, ...]` (a single object is accepted).
/// Entra adds `"$ref": null` (S4), which is ignored.
pub fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .as_object()
            .and_then(|o| get_ci(o, "value"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ScimError::InvalidValue(
                    "each member must be an object with a string \"value\" (the user's id)".into(),
                )
            })?;
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

/// The ids named by a `members[value eq "..."]` filter (several joined by `or` are accepted).
fn filter_member_ids(f: &Filter) -> Result<Vec<String>, ScimError> {
    let unsupported = || {
        ScimError::InvalidFilter(
            "a members filter in a path must be value eq \"id\" (or several joined by or)".into(),
        )
    };
    match f {
        Filter::Compare(p, filter::CompareOp::Eq, filter::CompValue::Str(id))
            if p.urn.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            Ok(vec![id.clone()])
        }
        Filter::Or(items) => {
            let mut ids = Vec::new();
            for item in items {
                ids.extend(filter_member_ids(item)?);
            }
            Ok(ids)
        }
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::scim::patch::fixtures::patch_group;

    #[test]
    fn entra_adds_members_with_a_null_ref() {
        let p = patch_group(
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}]}]),
        )
        .unwrap();
        assert_eq!(p.members, vec![MemberChange::Add(vec!["u1".into()])]);
    }

    #[test]
    fn entra_removes_members_by_value_list_and_by_filter() {
        let p = patch_group(json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}])).unwrap();
        assert_eq!(
            p.members,
            vec![MemberChange::Remove(vec!["u1".into(), "u2".into()])]
        );
        let p = patch_group(json!([{"op": "remove", "path": "members[value eq \"u3\"]"}])).unwrap();
        assert_eq!(
            p.members,
            vec![MemberChange::RemoveMatching(vec!["u3".into()])]
        );
    }

    #[test]
    fn okta_renames_with_the_group_id_in_the_value_and_the_id_is_ignored() {
        let p = patch_group(json!([
            {"op": "replace", "value": {"id": "abf4dd94", "displayName": "Admins 2"}},
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u2", "display": "x"}]}
        ]))
        .unwrap();
        assert_eq!(p.doc["displayName"], "Admins 2");
        assert!(p.doc.get("id").is_none());
        assert_eq!(
            p.members,
            vec![
                MemberChange::RemoveMatching(vec!["u1".into()]),
                MemberChange::Add(vec!["u2".into()])
            ]
        );
    }

    #[test]
    fn replacing_members_and_removing_them_all() {
        let p = patch_group(json!([{"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "a"}]}])).unwrap();
        assert_eq!(p.members, vec![MemberChange::Replace(vec!["a".into()])]);
        let p = patch_group(json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(p.members, vec![MemberChange::RemoveAll]);
        let p = patch_group(json!([{"op": "replace", "value": {"members": []}}])).unwrap();
        assert_eq!(p.members, vec![MemberChange::Replace(vec![])]);
    }

    #[test]
    fn malformed_member_values_and_filters_are_refused() {
        let got =
            patch_group(json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}]));
        assert!(matches!(got, Err(ScimError::InvalidValue(_))));
        let got = patch_group(json!([{"op": "remove", "path": "members[display eq \"x\"]"}]));
        assert!(matches!(got, Err(ScimError::InvalidFilter(_))));
        let got = patch_group(json!([{"op": "replace", "path": "members.value", "value": "x"}]));
        assert!(matches!(got, Err(ScimError::InvalidPath(_))));
    }
}
