//! The PatchOp request body (RFC 7644 §3.5.2) read into [`Operation`]s: the `schemas` check,
//! the operation limit, op names in any case (S1) and blank paths taken as absent.

use serde_json::{Map, Value};

use super::{Op, Operation};
use crate::domain::scim::error::ScimError;
use crate::domain::scim::{MAX_PATCH_OPERATIONS, PATCH_OP};

/// Read a PatchOp message (RFC 7644 §3.5.2). Op names are matched in any case (S1).
pub fn parse_request(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let syntax = |m: &str| ScimError::InvalidSyntax(m.to_owned());
    let obj = body
        .as_object()
        .ok_or_else(|| syntax("the body must be a PatchOp JSON object"))?;
    let schemas = get_ci(obj, "schemas").and_then(Value::as_array);
    let is_patch = schemas.is_some_and(|s| {
        s.iter()
            .any(|v| v.as_str().is_some_and(|v| v.eq_ignore_ascii_case(PATCH_OP)))
    });
    if !is_patch {
        return Err(syntax(&format!("\"schemas\" must contain \"{PATCH_OP}\"")));
    }
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("\"Operations\" must be an array of operations"))?;
    if ops.is_empty() {
        return Err(syntax("\"Operations\" is empty"));
    }
    if ops.len() > MAX_PATCH_OPERATIONS {
        return Err(ScimError::TooMany(format!(
            "a PATCH may carry at most {MAX_PATCH_OPERATIONS} operations"
        )));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let op_obj = op
                .as_object()
                .ok_or_else(|| syntax(&format!("operation {i} is not an object")))?;
            let name = get_ci(op_obj, "op")
                .and_then(Value::as_str)
                .ok_or_else(|| syntax(&format!("operation {i} has no \"op\"")))?;
            let op = match name.to_ascii_lowercase().as_str() {
                "add" => Op::Add,
                "remove" => Op::Remove,
                "replace" => Op::Replace,
                _ => {
                    return Err(syntax(&format!(
                        "operation {i}: \"{}\" is not an op; use add, remove or replace",
                        name.chars().take(40).collect::<String>()
                    )));
                }
            };
            let path = match get_ci(op_obj, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(p.clone()),
                Some(_) => {
                    return Err(syntax(&format!("operation {i}: \"path\" must be a string")));
                }
            };
            Ok(Operation {
                op,
                path,
                value: get_ci(op_obj, "value").cloned(),
            })
        })
        .collect()
}

/// `obj[key]`, the key matched in any case when there is no exact match.
pub(super) fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::scim::patch::fixtures::ops;

    #[test]
    fn op_names_are_matched_in_any_case() {
        for name in ["Add", "REMOVE", "replace", "Replace"] {
            let parsed = ops(json!([{"op": name, "path": "title", "value": "x"}]));
            assert_eq!(parsed.len(), 1);
        }
    }

    /// RFC 7644 §3.5.2 sets no limit; teamgate refuses more than [`MAX_PATCH_OPERATIONS`]
    /// (`scimType: tooMany`) before reading any of them, and accepts exactly the limit.
    #[test]
    fn more_than_max_patch_operations_are_too_many_and_exactly_the_limit_is_accepted() {
        let body = |n: usize| {
            let op = json!({"op": "add", "path": "title", "value": "x"});
            json!({"schemas": [PATCH_OP], "Operations": vec![op; n]})
        };
        assert_eq!(
            parse_request(&body(MAX_PATCH_OPERATIONS)).unwrap().len(),
            MAX_PATCH_OPERATIONS
        );
        match parse_request(&body(MAX_PATCH_OPERATIONS + 1)) {
            Err(ScimError::TooMany(detail)) => {
                assert!(
                    detail.contains(&MAX_PATCH_OPERATIONS.to_string()),
                    "{detail}"
                );
            }
            other => panic!("{other:?}"),
        }
        // The limit is checked before the operations are read: a bad one past it is not
        // what is reported.
        let mut over = body(MAX_PATCH_OPERATIONS + 1);
        over["Operations"][MAX_PATCH_OPERATIONS] = json!({"op": "merge"});
        assert!(matches!(parse_request(&over), Err(ScimError::TooMany(_))));
    }

    #[test]
    fn case_67_an_unknown_op_is_invalid_syntax() {
        let err = parse_request(
            &json!({"schemas": [PATCH_OP], "Operations": [{"op": "merge", "path": "x"}]}),
        );
        assert!(matches!(err, Err(ScimError::InvalidSyntax(_))));
    }

    #[test]
    fn case_67_a_missing_patch_op_schema_is_invalid_syntax() {
        for body in [
            json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            json!([1, 2]),
            json!({"schemas": [PATCH_OP], "Operations": []}),
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": 5}]}),
        ] {
            assert!(
                matches!(parse_request(&body), Err(ScimError::InvalidSyntax(_))),
                "{body}"
            );
        }
    }
}
