//! In-memory evaluation of PATCH value filters: whether one value of a multi-valued attribute
//! satisfies a resolved [`Cond`], with RFC 7643 §2.2 case rules per sub-attribute, and the
//! equalities a new value must hold to match one.

use serde_json::Value;

use super::{CompareOp, Cond, FieldRef, Literal};
use crate::domain::clock::parse_timestamp;
use crate::domain::scim::schema::{self, Attr, AttrType};

impl Cond {
    /// Whether one value of a multi-valued attribute satisfies this element-level condition
    /// (the inside of `attr[...]`), with RFC 7643 §2.2 case rules per sub-attribute.
    pub fn matches_element(&self, element: &Value) -> bool {
        match self {
            Cond::And(items) => items.iter().all(|c| c.matches_element(element)),
            Cond::Or(items) => items.iter().any(|c| c.matches_element(element)),
            Cond::Not(inner) => !inner.matches_element(element),
            Cond::Present(f) => present(sub_value(f, element)),
            Cond::Compare(f, op, lit) => compare(f.0.leaf(), sub_value(f, element), *op, lit),
            Cond::Any(..) => false,
        }
    }

    /// The (sub-attribute, string value) pairs of a condition made only of `eq` comparisons
    /// joined by `and` (`type eq "work"`): what a new value must hold to match it. `None` for
    /// any other shape.
    pub fn equalities(&self) -> Option<Vec<(&'static str, Value)>> {
        match self {
            Cond::Compare(f, CompareOp::Eq, lit) => {
                let sub = f.0.sub?;
                let v = match lit {
                    Literal::Str(s) => Value::String(s.clone()),
                    Literal::Bool(b) => Value::Bool(*b),
                    Literal::Int(i) => Value::from(*i),
                    Literal::Num(_) | Literal::Null => return None,
                };
                Some(vec![(sub.name, v)])
            }
            Cond::And(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(item.equalities()?);
                }
                Some(out)
            }
            _ => None,
        }
    }
}

fn sub_value<'a>(f: &FieldRef, element: &'a Value) -> Option<&'a Value> {
    match f.0.sub {
        Some(sub) => element.get(sub.name),
        None => Some(element),
    }
}

fn present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

fn compare(attr: &Attr, actual: Option<&Value>, op: CompareOp, lit: &Literal) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    match lit {
        Literal::Null => match op {
            CompareOp::Eq => actual.is_none(),
            _ => actual.is_some(),
        },
        Literal::Bool(want) => {
            let got = actual.and_then(schema::parse_bool);
            match op {
                CompareOp::Eq => got == Some(*want),
                _ => got != Some(*want),
            }
        }
        Literal::Int(_) | Literal::Num(_) => {
            let want = match lit {
                Literal::Int(i) => *i as f64,
                Literal::Num(n) => *n,
                _ => return false,
            };
            let Some(got) = actual.and_then(Value::as_f64) else {
                return op == CompareOp::Ne;
            };
            ordering_matches(op, got.partial_cmp(&want))
        }
        Literal::Str(want) => {
            let Some(got) = actual.and_then(Value::as_str) else {
                return op == CompareOp::Ne;
            };
            let got = if attr.ty == AttrType::DateTime {
                match parse_timestamp(got) {
                    Some(t) => t,
                    None => return op == CompareOp::Ne,
                }
            } else {
                got.to_owned()
            };
            let (got, want) = if attr.case_exact || attr.ty == AttrType::DateTime {
                (got, want.clone())
            } else {
                (got.to_lowercase(), want.to_lowercase())
            };
            match op {
                CompareOp::Co => got.contains(&want),
                CompareOp::Sw => got.starts_with(&want),
                CompareOp::Ew => got.ends_with(&want),
                _ => ordering_matches(op, Some(got.cmp(&want))),
            }
        }
    }
}

fn ordering_matches(op: CompareOp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (op, ord) {
        (CompareOp::Ne, Some(o)) => o != Equal,
        (CompareOp::Ne, None) => true,
        (_, None) => false,
        (CompareOp::Eq, Some(o)) => o == Equal,
        (CompareOp::Gt, Some(o)) => o == Greater,
        (CompareOp::Ge, Some(o)) => o != Less,
        (CompareOp::Lt, Some(o)) => o == Less,
        (CompareOp::Le, Some(o)) => o != Greater,
        (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::domain::scim::ResourceType;
    use crate::domain::scim::filter::parse_path;
    use crate::domain::scim::filter::resolve::{field_of, resolve};

    fn element_filter(path: &str) -> Cond {
        let pp = parse_path(path).unwrap();
        let field = field_of(ResourceType::User, &pp.attr, None).unwrap();
        resolve(ResourceType::User, pp.filter.as_ref().unwrap(), Some(field)).unwrap()
    }

    #[test]
    fn element_filters_match_in_memory_with_case_rules() {
        let work = json!({"type": "Work", "value": "A@X.com", "primary": true});
        let home = json!({"type": "home", "value": "b@y.com"});
        let c = element_filter("emails[type eq \"work\"]");
        assert!(c.matches_element(&work), "type is caseExact=false");
        assert!(!c.matches_element(&home));
        let c = element_filter("emails[value ew \"@x.COM\" and primary eq true]");
        assert!(c.matches_element(&work));
        let c = element_filter("emails[not (type eq \"work\")]");
        assert!(!c.matches_element(&work));
        assert!(c.matches_element(&home));
        let c = element_filter("emails[display pr]");
        assert!(!c.matches_element(&work));
        let c = element_filter("emails[type eq \"work\" or type eq \"home\"]");
        assert!(c.matches_element(&home));
    }

    #[test]
    fn equalities_are_what_a_new_value_needs_to_match() {
        let c = element_filter("emails[type eq \"work\"]");
        assert_eq!(c.equalities(), Some(vec![("type", json!("work"))]));
        let c = element_filter("emails[type eq \"work\" or type eq \"home\"]");
        assert_eq!(c.equalities(), None);
    }
}
