//! RFC 7644 §3.5.2 PATCH: `add`, `remove` and `replace`, with and without `path`, value
//! filters in paths, and the dialects IdPs really send (IdP quirk S1-S5, K5, K7): op names in
//! any case, string booleans, Entra's no-path multi-attribute replace whose keys are paths,
//! Okta's no-path `{"active":false}` and its group rename carrying the group's `id`.
//!
//! The request types live here; the work is split by concern:
//! - `parse`: the PatchOp request body read into [`Operation`]s.
//! - `apply`: the operations applied atomically to a copy of the document, each path routed to
//!   the code for its kind of attribute.
//! - `edit`: `add`, `remove` and `replace` on an attribute of a schema teamgate declares.
//! - `opaque`: attributes of extension schemas teamgate does not declare, kept as sent.
//! - `members`: group member changes, returned as [`MemberChange`]s rather than applied.

mod apply;
mod edit;
#[cfg(test)]
mod fixtures;
mod members;
mod opaque;
mod parse;

pub use apply::apply;
pub use members::member_ids;
pub use parse::parse_request;

use serde_json::{Map, Value};

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

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Add => "add",
        Op::Remove => "remove",
        Op::Replace => "replace",
    }
}
