//! RFC 7644 §3.5.2 PATCH: `add`, `remove` and `replace`, with and without `path`, value
//! filters in paths, and the dialects IdPs really send (IdP quirk S1-S5, K5, K7): op names in
//! any case, string booleans, Entra's no-path multi-attribute replace whose keys are paths,
//! Okta's no-path `{"active":false}` and its group rename carrying the group's `id`.
//!
//! Every operation applies to an in-memory copy; the first failure returns its error and the
//! stored resource is untouched (§3.5.2: "SHALL be treated as atomic"). Group members are never
//! loaded: changes to `members` come out as [`MemberChange`]s for the store to apply one row at a
//! time, so one member costs the same in a group of ten as in a group of 100,000.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{self, Cond, Filter, PatchPath};
use super::schema::{self, Attr, AttrType, Mutability, is_urn};
use super::{MAX_PATCH_OPERATIONS, PATCH_OP, ResourceType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub op: Op,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// A change to a group's member list, in request order. Ids are SCIM user ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add these users; already-members are left as they are.
    Add(Vec<String>),
    /// Remove these users if they are members (Entra's `"path":"members","value":[...]`).
    Remove(Vec<String>),
    /// `members[value eq "..."]`: remove; fails with `noTarget` when none of them is a member.
    RemoveMatching(Vec<String>),
    /// Remove every member.
    RemoveAll,
    /// The member list becomes exactly these users.
    Replace(Vec<String>),
}

/// The outcome of a PATCH: the new document and the member changes to apply with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Patched {
    pub doc: Map<String, Value>,
    pub members: Vec<MemberChange>,
}

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

fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

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

struct Engine {
    rt: ResourceType,
    doc: Map<String, Value>,
    members: Vec<MemberChange>,
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

    fn whole(&mut self, op: Op, t: Target, value: Option<&Value>) -> Result<(), ScimError> {
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
    fn sub_of_all(
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

    fn filtered(
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

    /// An attribute of an extension schema teamgate does not declare: stored as sent.
    fn opaque_path(
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

    fn opaque_object(&mut self, op: Op, urn: &str, value: &Value) -> Result<(), ScimError> {
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

    fn members(&mut self, op: Op, pp: &PatchPath, value: Option<&Value>) -> Result<(), ScimError> {
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

#[derive(Clone, Copy)]
struct Target {
    schema: Option<&'static str>,
    attr: &'static Attr,
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Remove => "remove",
        Op::Replace => "replace",
    }
}

/// A key that names a schema rather than `schema:attribute`: its last segment starts with an
/// upper-case letter by convention (`...:2.0:User`).
fn is_schema_like(s: &str) -> bool {
    s.rsplit(':').next().is_some_and(|last| {
        last.starts_with(|c: char| c.is_ascii_uppercase()) && !last.contains(['.', '['])
    })
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
    use crate::domain::scim::ENTERPRISE_USER_SCHEMA;

    fn ops(v: Value) -> Vec<Operation> {
        parse_request(&json!({"schemas": [PATCH_OP], "Operations": v})).unwrap()
    }

    fn user(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn patch_user(doc: Value, operations: Value) -> Result<Map<String, Value>, ScimError> {
        apply(ResourceType::User, &user(doc), &ops(operations)).map(|p| p.doc)
    }

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

    fn bjensen() -> Value {
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

    #[test]
    fn op_names_are_matched_in_any_case() {
        for name in ["Add", "REMOVE", "replace", "Replace"] {
            let parsed = ops(json!([{"op": name, "path": "title", "value": "x"}]));
            assert_eq!(parsed.len(), 1);
        }
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
    fn case_66_a_failing_second_operation_leaves_the_document_untouched() {
        let original = user(bjensen());
        let result = apply(
            ResourceType::User,
            &original,
            &ops(json!([
                {"op": "replace", "path": "displayName", "value": "changed"},
                {"op": "replace", "path": "shoeSize", "value": 44}
            ])),
        );
        assert!(matches!(result, Err(ScimError::InvalidPath(_))));
        assert_eq!(original, user(bjensen()));
    }

    #[test]
    fn case_64_changing_an_immutable_external_id_is_a_mutability_error() {
        let got = patch_user(
            bjensen(),
            json!([{"op": "replace", "path": "externalId", "value": "other"}]),
        );
        assert!(matches!(got, Err(ScimError::Mutability(_))));
        let got = patch_user(bjensen(), json!([{"op": "remove", "path": "externalId"}]));
        assert!(matches!(got, Err(ScimError::Mutability(_))));
        // Setting it when it has no value is allowed; repeating the same value is a no-op.
        let doc = patch_user(
            json!({"userName": "a"}),
            json!([{"op": "add", "path": "externalId", "value": "e"}]),
        )
        .unwrap();
        assert_eq!(doc["externalId"], "e");
        patch_user(
            bjensen(),
            json!([{"op": "replace", "path": "externalId", "value": "ext-1"}]),
        )
        .unwrap();
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

    fn patch_group(operations: Value) -> Result<Patched, ScimError> {
        apply(
            ResourceType::Group,
            &user(json!({"displayName": "Admins", "externalId": "g-1"})),
            &ops(operations),
        )
    }

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

    #[test]
    fn a_group_without_display_name_is_refused() {
        let got = patch_group(json!([{"op": "remove", "path": "displayName"}]));
        assert!(matches!(got, Err(ScimError::InvalidValue(_))));
    }
}
