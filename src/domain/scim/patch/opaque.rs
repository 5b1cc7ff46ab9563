//! Attributes of extension schemas teamgate does not declare: stored as sent under their URN,
//! names matched in any case, with no value filters since nothing is known of their shape.

use serde_json::{Map, Value};

use super::apply::Engine;
use super::{Op, op_name};
use crate::domain::scim::error::ScimError;
use crate::domain::scim::filter::{self, PatchPath};

impl Engine {
    /// An attribute of an extension schema teamgate does not declare: stored as sent.
    pub(super) fn opaque_path(
        &mut self,
        op: Op,
        pp: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let Some(urn) = pp.attr.urn.as_deref() else {
            return Err(ScimError::InvalidPath(
                "an attribute of an unknown schema needs its URN".into(),
            ));
        };
        if pp.filter.is_some() {
            return Err(ScimError::InvalidPath(format!(
                "value filters on attributes of {urn}, which teamgate does not declare, are not supported"
            )));
        }
        let key = self
            .doc
            .keys()
            .find(|k| k.eq_ignore_ascii_case(urn))
            .cloned()
            .unwrap_or_else(|| urn.to_owned());
        let new = match (op, value) {
            (Op::Remove, _) | (_, Some(Value::Null)) => None,
            (_, None) => {
                return Err(ScimError::InvalidValue(format!(
                    "{} needs a value",
                    op_name(op)
                )));
            }
            (_, Some(v)) => Some(v.clone()),
        };
        let ext = self
            .doc
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(ext) = ext.as_object_mut() else {
            return Err(ScimError::InvalidValue(format!("{urn} must be an object")));
        };
        let name = ext
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&pp.attr.name))
            .cloned()
            .unwrap_or_else(|| pp.attr.name.clone());
        match (&pp.attr.sub, new) {
            (None, None) => {
                ext.remove(&name);
            }
            (None, Some(v)) => {
                ext.insert(name, v);
            }
            (Some(sub), new) => {
                let obj = ext
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(obj) = obj.as_object_mut() {
                    match new {
                        None => {
                            obj.remove(sub);
                        }
                        Some(v) => {
                            obj.insert(sub.clone(), v);
                        }
                    }
                }
                if ext
                    .get(&name)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    ext.remove(&name);
                }
            }
        }
        if self
            .doc
            .get(&key)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            self.doc.remove(&key);
        }
        Ok(())
    }

    pub(super) fn opaque_object(
        &mut self,
        op: Op,
        urn: &str,
        value: &Value,
    ) -> Result<(), ScimError> {
        let Some(obj) = value.as_object() else {
            return Ok(());
        };
        for (k, v) in obj {
            let pp = PatchPath {
                attr: filter::AttrPath {
                    urn: Some(urn.to_owned()),
                    name: k.clone(),
                    sub: None,
                },
                filter: None,
                sub: None,
            };
            self.opaque_path(op, &pp, Some(v))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::scim::patch::fixtures::{bjensen, patch_user};

    #[test]
    fn unknown_extension_attributes_are_kept_as_sent() {
        let doc = patch_user(
            bjensen(),
            json!([
                {"op": "add", "path": "urn:example:ext:1.0:User:Badge", "value": {"No": 7}},
                {"op": "add", "value": {"urn:example:other:1.0:User": {"k": "v"}}}
            ]),
        )
        .unwrap();
        assert_eq!(doc["urn:example:ext:1.0:User"], json!({"Badge": {"No": 7}}));
        assert_eq!(doc["urn:example:other:1.0:User"], json!({"k": "v"}));
        let doc = patch_user(
            Value::Object(doc),
            json!([{"op": "remove", "path": "urn:example:ext:1.0:User:badge"}]),
        )
        .unwrap();
        assert!(doc.get("urn:example:ext:1.0:User").is_none());
    }
}
