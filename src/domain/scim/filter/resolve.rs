//! Resolution: a parsed [`Filter`] checked against [`schema`] (attributes, sub-attributes, what
//! may be filtered on, the operators and literals each attribute type allows) into a typed
//! [`Cond`] for the store's SQL translator or for in-memory matching of PATCH value filters.

use serde_json::Value;

use super::{AttrPath, CompValue, CompareOp, Filter, parse};
use crate::domain::clock::parse_timestamp;
use crate::domain::scim::ResourceType;
use crate::domain::scim::error::ScimError;
use crate::domain::scim::schema::{self, Attr, AttrType, META, Returned};

/// A resolved attribute: where it lives and what it is.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The extension schema URN holding the attribute; `None` for core and common attributes.
    pub schema: Option<&'static str>,
    pub attr: &'static Attr,
    pub sub: Option<&'static Attr>,
}

impl Field {
    /// The attribute compared: the sub-attribute when there is one.
    pub fn leaf(&self) -> &'static Attr {
        self.sub.unwrap_or(self.attr)
    }

    pub fn is(&self, name: &str, sub: Option<&str>) -> bool {
        self.schema.is_none() && self.attr.name == name && self.sub.map(|s| s.name) == sub
    }

    pub fn is_meta(&self) -> bool {
        std::ptr::eq(self.attr, &META)
    }
}

/// A checked literal, converted to the attribute's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    /// Strings; for dateTime attributes, normalised to teamgate's stored form.
    Str(String),
}

/// A filter checked against the schema, ready to be translated to SQL or evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Present(FieldRef),
    Compare(FieldRef, CompareOp, Literal),
    /// Some value of the multi-valued attribute satisfies the inner condition, whose fields
    /// are sub-attributes of that value.
    Any(FieldRef, Box<Cond>),
}

/// [`Field`] compared by identity, so [`Cond`] can derive `PartialEq` for tests.
#[derive(Debug, Clone, Copy)]
pub struct FieldRef(pub Field);

impl PartialEq for FieldRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.schema == other.0.schema
            && std::ptr::eq(self.0.attr, other.0.attr)
            && match (self.0.sub, other.0.sub) {
                (None, None) => true,
                (Some(a), Some(b)) => std::ptr::eq(a, b),
                _ => false,
            }
    }
}

/// Parse and resolve a filter for resources of type `rt`.
pub fn compile(rt: ResourceType, input: &str) -> Result<Cond, ScimError> {
    let filter = parse(input)?;
    resolve(rt, &filter, None)
        .map_err(|e| ScimError::InvalidFilter(format!("the filter is not supported: {e}")))
}

/// Resolve a filter; inside a value path, `parent` is the multi-valued attribute whose
/// sub-attributes the paths name.
pub fn resolve(rt: ResourceType, f: &Filter, parent: Option<Field>) -> Result<Cond, String> {
    Ok(match f {
        Filter::And(items) => Cond::And(
            items
                .iter()
                .map(|i| resolve(rt, i, parent))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Or(items) => Cond::Or(
            items
                .iter()
                .map(|i| resolve(rt, i, parent))
                .collect::<Result<_, _>>()?,
        ),
        Filter::Not(inner) => Cond::Not(Box::new(resolve(rt, inner, parent)?)),
        Filter::Present(path) => {
            let field = field_of(rt, path, parent)?;
            match (parent, field.attr.multi, field.sub) {
                (None, true, Some(_)) => {
                    Cond::Any(top(field), Box::new(Cond::Present(FieldRef(field))))
                }
                _ => Cond::Present(FieldRef(field)),
            }
        }
        Filter::Compare(path, op, value) => {
            let mut field = field_of(rt, path, parent)?;
            if parent.is_none()
                && field.sub.is_none()
                && field.attr.multi
                && field.attr.ty == AttrType::Complex
                && let Some(value) = field.attr.sub_attr("value")
            {
                // RFC 7644 §3.4.2.2 lets a server compare a multi-valued complex attribute
                // through its `value`: Entra probes membership with `members eq "<user>"`
                // (IdP quirk S6), which means `members.value eq "<user>"`.
                field.sub = Some(value);
                filterable(rt, &field)?;
            }
            if field.leaf().ty == AttrType::Complex {
                return Err(format!(
                    "\"{}\" is complex; compare one of its sub-attributes, e.g. {}.value",
                    field.attr.name, field.attr.name
                ));
            }
            let literal = check_literal(field.leaf(), *op, value)?;
            let cmp = Cond::Compare(FieldRef(field), *op, literal);
            if parent.is_none() && field.attr.multi {
                Cond::Any(top(field), Box::new(cmp))
            } else {
                cmp
            }
        }
        Filter::ValuePath(path, inner) => {
            if parent.is_some() {
                return Err("value filters cannot nest".into());
            }
            let field = field_of(rt, path, None)?;
            if !field.attr.multi || field.attr.ty != AttrType::Complex {
                return Err(format!(
                    "\"{}\" is not a multi-valued complex attribute",
                    field.attr.name
                ));
            }
            Cond::Any(FieldRef(field), Box::new(resolve(rt, inner, Some(field))?))
        }
    })
}

fn top(field: Field) -> FieldRef {
    FieldRef(Field { sub: None, ..field })
}

pub(super) fn field_of(
    rt: ResourceType,
    path: &AttrPath,
    parent: Option<Field>,
) -> Result<Field, String> {
    let field = match parent {
        Some(parent) => {
            if path.urn.is_some() || path.sub.is_some() {
                return Err(format!(
                    "inside {}[...] name its sub-attributes only",
                    parent.attr.name
                ));
            }
            let sub = parent.attr.sub_attr(&path.name).ok_or_else(|| {
                format!(
                    "\"{}\" has no sub-attribute \"{}\"",
                    parent.attr.name, path.name
                )
            })?;
            Field {
                sub: Some(sub),
                ..parent
            }
        }
        None => {
            let located =
                schema::locate(rt, path.urn.as_deref(), &path.name)?.ok_or_else(|| {
                    format!(
                        "the schema \"{}\" is not supported",
                        path.urn.as_deref().unwrap_or("")
                    )
                })?;
            let sub = match &path.sub {
                None => None,
                Some(s) => Some(located.attr.sub_attr(s).ok_or_else(|| {
                    format!("\"{}\" has no sub-attribute \"{s}\"", located.attr.name)
                })?),
            };
            Field {
                schema: located.schema,
                attr: located.attr,
                sub,
            }
        }
    };
    filterable(rt, &field)?;
    Ok(field)
}

/// The attributes that cannot be filtered on, and why.
fn filterable(rt: ResourceType, field: &Field) -> Result<(), String> {
    if field.leaf().returned == Returned::Never || field.attr.returned == Returned::Never {
        return Err(format!(
            "\"{}\" is never returned, so it cannot be filtered on",
            field.attr.name
        ));
    }
    if field.is_meta() {
        return match field.sub.map(|s| s.name) {
            Some("created" | "lastModified" | "resourceType") => Ok(()),
            _ => Err(
                "only meta.created, meta.lastModified and meta.resourceType can be filtered on"
                    .into(),
            ),
        };
    }
    match (rt, field.schema, field.attr.name) {
        (ResourceType::User, None, "groups") => {
            Err("filter Groups on members.value instead of Users on groups".into())
        }
        (ResourceType::Group, None, "members") => match field.sub.map(|s| s.name) {
            None | Some("value") => Ok(()),
            Some(other) => Err(format!(
                "members can be filtered on value only, not {other}"
            )),
        },
        _ => Ok(()),
    }
}

fn check_literal(attr: &Attr, op: CompareOp, value: &CompValue) -> Result<Literal, String> {
    let name = attr.name;
    if let CompValue::Null = value {
        // RFC 7644 §3.4.2.2 leaves null comparisons to the server: eq null is "absent".
        return match op {
            CompareOp::Eq | CompareOp::Ne => Ok(Literal::Null),
            _ => Err(format!("only eq and ne compare \"{name}\" with null")),
        };
    }
    match attr.ty {
        AttrType::Boolean => {
            if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return Err(format!("\"{name}\" is a boolean; use eq or ne"));
            }
            let b = match value {
                CompValue::Bool(b) => *b,
                CompValue::Str(s) => {
                    schema::parse_bool(&Value::String(s.clone())).ok_or_else(|| {
                        format!("\"{name}\" is a boolean; compare with true or false")
                    })?
                }
                _ => {
                    return Err(format!(
                        "\"{name}\" is a boolean; compare with true or false"
                    ));
                }
            };
            Ok(Literal::Bool(b))
        }
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            CompValue::Str(s) => Ok(Literal::Str(s.clone())),
            _ => Err(format!("\"{name}\" is a string; quote the value")),
        },
        AttrType::DateTime => {
            if op.is_substring() {
                return Err(format!("\"{name}\" is a date-time; use eq ne gt ge lt le"));
            }
            match value {
                CompValue::Str(s) => parse_timestamp(s)
                    .map(Literal::Str)
                    .ok_or_else(|| format!("\"{s}\" is not an RFC 3339 date-time")),
                _ => Err(format!(
                    "\"{name}\" is a date-time; give a quoted RFC 3339 value"
                )),
            }
        }
        AttrType::Integer | AttrType::Decimal => {
            if op.is_substring() {
                return Err(format!("\"{name}\" is a number; use eq ne gt ge lt le"));
            }
            match value {
                CompValue::Number(n) => match n.as_i64() {
                    Some(i) if attr.ty == AttrType::Integer => Ok(Literal::Int(i)),
                    _ if attr.ty == AttrType::Integer => Err(format!("\"{name}\" is an integer")),
                    _ => n
                        .as_f64()
                        .map(Literal::Num)
                        .ok_or_else(|| format!("\"{n}\" is out of range")),
                },
                _ => Err(format!("\"{name}\" is a number")),
            }
        }
        AttrType::Complex => Err(format!("\"{name}\" is complex; compare a sub-attribute")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn compile_err(rt: ResourceType, f: &str) -> String {
        match compile(rt, f) {
            Err(ScimError::InvalidFilter(d)) => d,
            other => panic!("{f:?} should not compile, got {other:?}"),
        }
    }

    #[test]
    fn unknown_attributes_and_unsupported_operators_do_not_compile() {
        compile_err(ResourceType::User, "shoeSize eq \"44\"");
        compile_err(ResourceType::User, "active gt true");
        compile_err(ResourceType::User, "active co \"t\"");
        compile_err(ResourceType::User, "userName eq 5");
        compile_err(ResourceType::User, "name eq \"x\"");
        compile_err(ResourceType::User, "password eq \"x\"");
        compile_err(ResourceType::User, "groups.value eq \"x\"");
        compile_err(ResourceType::User, "meta.location eq \"x\"");
        compile_err(ResourceType::User, "meta.created co \"2020\"");
        compile_err(ResourceType::User, "meta.created gt \"yesterday\"");
        compile_err(ResourceType::User, "userName gt null");
        compile_err(ResourceType::User, "urn:example:custom:1.0:User:x eq \"y\"");
        compile_err(ResourceType::Group, "members.display eq \"x\"");
        compile_err(ResourceType::Group, "userName eq \"x\"");
        compile_err(ResourceType::User, "userName[value eq \"x\"]");
        compile_err(ResourceType::User, "emails[shoe eq \"x\"]");
    }

    #[test]
    fn supported_filters_compile_to_typed_conditions() {
        for (rt, f) in [
            (ResourceType::User, "userName eq \"a\""),
            (ResourceType::User, "USERNAME Eq \"a\""),
            (
                ResourceType::User,
                "externalId eq \"a\" and active eq \"False\"",
            ),
            (
                ResourceType::User,
                "emails[type eq \"work\"].value eq \"a@x\"",
            ),
            (ResourceType::User, "emails.value co \"@x\""),
            (
                ResourceType::User,
                "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
            ),
            (
                ResourceType::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"7\"",
            ),
            (
                ResourceType::User,
                "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
            ),
            (ResourceType::User, "not (title pr) or id eq \"x\""),
            (ResourceType::Group, "displayName eq \"Admins\""),
            (ResourceType::Group, "members[value eq \"u1\"]"),
            (ResourceType::Group, "members.value eq \"u1\""),
            (ResourceType::Group, "members pr"),
        ] {
            compile(rt, f).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        }
    }

    #[test]
    fn a_multi_valued_complex_attribute_compared_whole_is_compared_through_its_value() {
        // Entra's membership probe (IdP quirk S6): `members eq "u1"` is `members.value eq "u1"`.
        assert_eq!(
            compile(ResourceType::Group, "members eq \"u1\"").unwrap(),
            compile(ResourceType::Group, "members.value eq \"u1\"").unwrap()
        );
        assert_eq!(
            compile(ResourceType::Group, "id eq \"g\" and members eq \"u1\"").unwrap(),
            compile(
                ResourceType::Group,
                "id eq \"g\" and members.value eq \"u1\""
            )
            .unwrap()
        );
        assert_eq!(
            compile(ResourceType::User, "emails eq \"a@x\"").unwrap(),
            compile(ResourceType::User, "emails.value eq \"a@x\"").unwrap()
        );
        // A single-valued complex attribute has no value to compare.
        compile_err(ResourceType::User, "name eq \"x\"");
        compile_err(ResourceType::User, "groups eq \"x\"");
    }

    #[test]
    fn a_sub_attribute_of_a_multi_valued_attribute_becomes_an_any() {
        let c = compile(ResourceType::User, "emails.value eq \"a@x\"").unwrap();
        assert!(
            matches!(c, Cond::Any(f, inner) if f.0.attr.name == "emails" && matches!(*inner, Cond::Compare(..)))
        );
    }

    #[test]
    fn dates_in_filters_are_normalised() {
        let c = compile(
            ResourceType::User,
            "meta.created ge \"2011-05-13T06:42:34+02:00\"",
        )
        .unwrap();
        assert_eq!(
            c,
            Cond::Compare(
                FieldRef(Field {
                    schema: None,
                    attr: &META,
                    sub: META.sub_attr("created"),
                }),
                CompareOp::Ge,
                Literal::Str("2011-05-13T04:42:34.000Z".into())
            )
        );
    }
}
