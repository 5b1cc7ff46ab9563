//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): a tokenizer and a recursive
//! descent parser for the whole grammar (attribute paths with sub-attributes and schema URNs,
//! the nine comparison operators, `pr`, `and`/`or`/`not` with precedence, parentheses, value
//! paths such as `emails[type eq "work"].value`, JSON literals), then a resolver that checks
//! every path and operator against [`super::schema`] and yields a typed [`Cond`] for the
//! store's SQL translator or for in-memory matching of PATCH value filters.
//!
//! Limits keep hostile input cheap (security case 70): a filter longer than [`MAX_FILTER_LEN`],
//! nested deeper than [`MAX_DEPTH`] or with more than [`MAX_TERMS`] comparisons is refused
//! with `invalidFilter` before any recursion could grow the stack.
//!
//! The limits and the parsed forms shared by every stage live here; the stages are:
//! - `lex`: the tokens of a filter or a PATCH path.
//! - `parse`: tokens to a [`Filter`] tree, and PATCH paths to a [`PatchPath`].
//! - `resolve`: a [`Filter`] checked against the schema into a [`Cond`].
//! - `eval`: a [`Cond`] evaluated in memory against one value of a multi-valued attribute.

mod eval;
mod lex;
mod parse;
mod resolve;

pub use parse::{PatchPath, parse, parse_path};
pub use resolve::{Cond, Field, FieldRef, Literal, compile, resolve};

/// Longest filter accepted, in bytes. Entra and Okta send filters of a few dozen bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 32;
/// Most comparisons in one filter; bounds the SQL built from it.
pub const MAX_TERMS: usize = 100;

/// `[urn ":"] name ["." sub]` (RFC 7644 §3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }

    /// For the SQL translator: operators that order values.
    pub fn orders(self) -> bool {
        self.is_ordering()
    }
}

/// A comparison value as written: JSON `false`, `null`, `true`, number or string.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
}

/// A parsed, not yet checked filter. `and` and `or` chains are flattened, so a long chain is
/// one node with many children instead of a deep tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr[filter]`; a trailing `.sub op value` is folded into the inner filter with `and`,
    /// which means the same thing: one value of `attr` satisfies both.
    ValuePath(AttrPath, Box<Filter>),
}
