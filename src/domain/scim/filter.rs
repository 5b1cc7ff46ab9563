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

use serde_json::Value;

use super::ResourceType;
use super::error::ScimError;
use super::schema::{self, Attr, AttrType, META, Returned};
use crate::domain::clock::parse_timestamp;

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

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Word(String),
    Str(String),
}

fn tokenize(input: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'[' => {
                toks.push(Tok::LBracket);
                i += 1;
            }
            b']' => {
                toks.push(Tok::RBracket);
                i += 1;
            }
            b'"' => {
                // Find the closing quote, skipping escaped characters; serde_json then decodes
                // the escapes exactly as JSON defines them (RFC 7644 §3.4.2.2 compValue).
                let start = i;
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(format!(
                                "the string starting at character {start} is not closed"
                            ));
                        }
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                let literal = input
                    .get(start..i)
                    .ok_or("a string is cut in the middle of a character")?;
                let s: String = serde_json::from_str(literal).map_err(|_| {
                    format!("the string starting at character {start} is not a valid JSON string")
                })?;
                toks.push(Tok::Str(s));
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'[' | b']' | b'"'
                    )
                {
                    i += 1;
                }
                let word = input
                    .get(start..i)
                    .ok_or("a word is cut in the middle of a character")?;
                toks.push(Tok::Word(word.to_owned()));
            }
        }
    }
    Ok(toks)
}

fn is_attr_name(s: &str) -> bool {
    // ATTRNAME = ALPHA *(nameChar); "$ref" is the one reserved name that breaks the rule.
    s == "$ref"
        || (s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

fn parse_attr_path(word: &str) -> Result<AttrPath, String> {
    let (urn, rest) = if schema::is_urn(word) {
        // A schema URN contains colons and dots ("2.0"); the attribute follows the last colon.
        let idx = word.rfind(':').unwrap_or(0);
        (Some(word[..idx].to_owned()), &word[idx + 1..])
    } else {
        (None, word)
    };
    let mut parts = rest.split('.');
    let name = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(format!("\"{word}\" has more than one sub-attribute level"));
    }
    if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
        return Err(format!("\"{word}\" is not an attribute path"));
    }
    Ok(AttrPath {
        urn,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    terms: usize,
}

impl Parser {
    fn new(input: &str) -> Result<Self, String> {
        if input.len() > MAX_FILTER_LEN {
            return Err(format!("longer than {MAX_FILTER_LEN} bytes"));
        }
        Ok(Self {
            toks: tokenize(input)?,
            pos: 0,
            terms: 0,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), String> {
        if self.peek() == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {what}"))
        }
    }

    fn or(&mut self, depth: usize, in_value_path: bool) -> Result<Filter, String> {
        let mut items = vec![self.and(depth, in_value_path)?];
        while self.peek_keyword("or") {
            self.pos += 1;
            items.push(self.and(depth, in_value_path)?);
        }
        Ok(flatten(items, Filter::Or))
    }

    fn and(&mut self, depth: usize, in_value_path: bool) -> Result<Filter, String> {
        let mut items = vec![self.unary(depth, in_value_path)?];
        while self.peek_keyword("and") {
            self.pos += 1;
            items.push(self.unary(depth, in_value_path)?);
        }
        Ok(flatten(items, Filter::And))
    }

    fn unary(&mut self, depth: usize, in_value_path: bool) -> Result<Filter, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        if self.peek_keyword("not") && self.toks.get(self.pos + 1) == Some(&Tok::LParen) {
            self.pos += 2;
            let inner = self.or(depth + 1, in_value_path)?;
            self.expect(Tok::RParen, "\")\" closing not(...)")?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        match self.peek().cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.or(depth + 1, in_value_path)?;
                self.expect(Tok::RParen, "\")\"")?;
                Ok(inner)
            }
            Some(Tok::Word(word)) => {
                self.pos += 1;
                self.attr_expr(&word, depth, in_value_path)
            }
            Some(Tok::Str(_)) => Err("expected an attribute path, found a string".into()),
            Some(Tok::RParen | Tok::RBracket | Tok::LBracket) | None => {
                Err("expected an attribute path".into())
            }
        }
    }

    fn attr_expr(
        &mut self,
        word: &str,
        depth: usize,
        in_value_path: bool,
    ) -> Result<Filter, String> {
        let path = parse_attr_path(word)?;
        if self.peek() == Some(&Tok::LBracket) {
            if in_value_path {
                return Err("a value filter cannot contain another value filter".into());
            }
            if path.sub.is_some() {
                return Err(format!("\"{word}\" has a sub-attribute before \"[\""));
            }
            self.pos += 1;
            let mut inner = self.or(depth + 1, true)?;
            self.expect(Tok::RBracket, "\"]\" closing the value filter")?;
            if let Some(Tok::Word(w)) = self.peek().cloned()
                && let Some(sub) = w.strip_prefix('.')
            {
                // Entra: emails[type eq "work"].value eq "..." (IdP quirk S6).
                self.pos += 1;
                if !is_attr_name(sub) {
                    return Err(format!("\"{sub}\" is not a sub-attribute name"));
                }
                let sub_path = AttrPath {
                    urn: None,
                    name: sub.to_owned(),
                    sub: None,
                };
                let tail = self.operation(sub_path, sub)?;
                inner = flatten(vec![inner, tail], Filter::And);
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.operation(path, word)
    }

    fn operation(&mut self, path: AttrPath, word: &str) -> Result<Filter, String> {
        let Some(Tok::Word(op)) = self.peek().cloned() else {
            return Err(format!("expected an operator after \"{word}\""));
        };
        self.pos += 1;
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("more than {MAX_TERMS} comparisons"));
        }
        if op.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op).ok_or_else(|| {
            format!("\"{op}\" is not an operator; use eq ne co sw ew gt ge lt le pr")
        })?;
        let value = match self.peek().cloned() {
            Some(Tok::Str(s)) => CompValue::Str(s),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => CompValue::Null,
            Some(Tok::Word(w)) => CompValue::Number(
                serde_json::from_str::<serde_json::Number>(&w)
                    .map_err(|_| format!("\"{w}\" is not a value; quote strings with \"\""))?,
            ),
            _ => return Err(format!("expected a value after \"{word}\"")),
        };
        self.pos += 1;
        Ok(Filter::Compare(path, op, value))
    }
}

fn flatten(items: Vec<Filter>, make: fn(Vec<Filter>) -> Filter) -> Filter {
    if items.len() == 1 {
        return items.into_iter().next().unwrap_or(Filter::And(Vec::new()));
    }
    let is_and = matches!(make(Vec::new()), Filter::And(_));
    let mut flat = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Filter::And(inner) if is_and => flat.extend(inner),
            Filter::Or(inner) if !is_and => flat.extend(inner),
            other => flat.push(other),
        }
    }
    make(flat)
}

/// Parse a filter expression (RFC 7644 §3.4.2.2). Errors are `invalidFilter`.
pub fn parse(input: &str) -> Result<Filter, ScimError> {
    let invalid = |e: String| ScimError::InvalidFilter(format!("the filter is not valid: {e}"));
    let mut p = Parser::new(input).map_err(invalid)?;
    if p.toks.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let filter = p.or(0, false).map_err(invalid)?;
    if p.pos != p.toks.len() {
        return Err(invalid(format!(
            "unexpected {} after a complete expression",
            describe(p.peek())
        )));
    }
    Ok(filter)
}

fn describe(tok: Option<&Tok>) -> String {
    match tok {
        None => "end".into(),
        Some(Tok::LParen) => "\"(\"".into(),
        Some(Tok::RParen) => "\")\"".into(),
        Some(Tok::LBracket) => "\"[\"".into(),
        Some(Tok::RBracket) => "\"]\"".into(),
        Some(Tok::Word(w)) => format!("\"{}\"", w.chars().take(40).collect::<String>()),
        Some(Tok::Str(_)) => "a string".into(),
    }
}

/// A PATCH path: `attrPath` or `valuePath ["." subAttr]` (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after `]`, as in `emails[type eq "work"].value`.
    pub sub: Option<String>,
}

/// Parse a PATCH path. Errors are `invalidPath` (security case 65).
pub fn parse_path(input: &str) -> Result<PatchPath, ScimError> {
    let invalid = |e: String| {
        ScimError::InvalidPath(format!("the path \"{}\" is not valid: {e}", clip(input)))
    };
    let mut p = Parser::new(input).map_err(invalid)?;
    let Some(Tok::Word(word)) = p.peek().cloned() else {
        return Err(invalid("it does not start with an attribute name".into()));
    };
    p.pos += 1;
    let attr = parse_attr_path(&word).map_err(invalid)?;
    let mut filter = None;
    let mut sub = None;
    if p.peek() == Some(&Tok::LBracket) {
        if attr.sub.is_some() {
            return Err(invalid("a sub-attribute comes before \"[\"".into()));
        }
        p.pos += 1;
        filter = Some(p.or(1, true).map_err(invalid)?);
        p.expect(Tok::RBracket, "\"]\"").map_err(invalid)?;
        if let Some(Tok::Word(w)) = p.peek().cloned() {
            let s = w
                .strip_prefix('.')
                .filter(|s| is_attr_name(s))
                .ok_or_else(|| invalid(format!("\"{w}\" after \"]\" is not a sub-attribute")))?;
            sub = Some(s.to_owned());
            p.pos += 1;
        }
    }
    if p.pos != p.toks.len() {
        return Err(invalid(format!("unexpected {}", describe(p.peek()))));
    }
    Ok(PatchPath { attr, filter, sub })
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

// ---------------------------------------------------------------------------------------
// Resolution against the schema

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
            let field = field_of(rt, path, parent)?;
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

fn field_of(rt: ResourceType, path: &AttrPath, parent: Option<Field>) -> Result<Field, String> {
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

// ---------------------------------------------------------------------------------------
// In-memory evaluation (PATCH value filters)

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

impl CompareOp {
    /// For the SQL translator: operators that order values.
    pub fn orders(self) -> bool {
        self.is_ordering()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;

    /// Found by the `scim_filter` fuzz target: a multi-byte character across the fourth byte
    /// made the `urn:` check slice inside it and panic.
    #[test]
    fn a_multi_byte_character_where_urn_would_end_is_an_error_not_a_panic() {
        for text in [
            "urn\u{195}etf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr",
            "ur\u{195}:x eq 1",
            "\u{195}\u{195} pr",
        ] {
            assert!(compile(ResourceType::User, text).is_err(), "{text}");
            assert!(parse_path(text).is_err(), "{text}");
        }
    }

    fn p(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.into())
    }

    fn invalid(input: &str) -> String {
        match parse(input) {
            Err(ScimError::InvalidFilter(d)) => d,
            other => panic!("{input:?} should be an invalid filter, got {other:?}"),
        }
    }

    #[test]
    fn a_simple_equality_parses() {
        assert_eq!(
            parse("userName eq \"bjensen\"").unwrap(),
            Filter::Compare(p("userName"), CompareOp::Eq, s("bjensen"))
        );
    }

    #[test]
    fn operators_and_keywords_are_case_insensitive() {
        assert_eq!(
            parse("userName EQ \"a\" AND active Eq TRUE").unwrap(),
            Filter::And(vec![
                Filter::Compare(p("userName"), CompareOp::Eq, s("a")),
                Filter::Compare(p("active"), CompareOp::Eq, CompValue::Bool(true)),
            ])
        );
    }

    #[test]
    fn every_comparison_operator_parses() {
        for (word, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            assert_eq!(
                parse(&format!("title {word} \"x\"")).unwrap(),
                Filter::Compare(p("title"), op, s("x"))
            );
        }
        assert_eq!(parse("title pr").unwrap(), Filter::Present(p("title")));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let f = parse("a eq 1 or b eq 2 and c eq 3").unwrap();
        let n = |v: i64| CompValue::Number(v.into());
        assert_eq!(
            f,
            Filter::Or(vec![
                Filter::Compare(p("a"), CompareOp::Eq, n(1)),
                Filter::And(vec![
                    Filter::Compare(p("b"), CompareOp::Eq, n(2)),
                    Filter::Compare(p("c"), CompareOp::Eq, n(3)),
                ]),
            ])
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        let f = parse("(a pr or b pr) and c pr").unwrap();
        assert_eq!(
            f,
            Filter::And(vec![
                Filter::Or(vec![Filter::Present(p("a")), Filter::Present(p("b"))]),
                Filter::Present(p("c")),
            ])
        );
    }

    #[test]
    fn not_wraps_a_parenthesised_filter() {
        assert_eq!(
            parse("not (title pr)").unwrap(),
            Filter::Not(Box::new(Filter::Present(p("title"))))
        );
        assert_eq!(
            parse("not(title pr)").unwrap(),
            Filter::Not(Box::new(Filter::Present(p("title"))))
        );
    }

    #[test]
    fn sub_attributes_and_urn_prefixes_are_split_correctly() {
        let f = parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
        )
        .unwrap();
        assert_eq!(
            f,
            Filter::Compare(
                AttrPath {
                    urn: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into()),
                    name: "manager".into(),
                    sub: Some("value".into()),
                },
                CompareOp::Eq,
                s("m")
            )
        );
        let f = parse("name.familyName co \"O'Malley\"").unwrap();
        assert_eq!(
            f,
            Filter::Compare(
                AttrPath {
                    urn: None,
                    name: "name".into(),
                    sub: Some("familyName".into()),
                },
                CompareOp::Co,
                s("O'Malley")
            )
        );
    }

    #[test]
    fn entra_value_path_with_a_trailing_sub_attribute_folds_into_one_value_filter() {
        let f = parse("emails[type eq \"work\"].value eq \"a@x.com\"").unwrap();
        assert_eq!(
            f,
            Filter::ValuePath(
                p("emails"),
                Box::new(Filter::And(vec![
                    Filter::Compare(p("type"), CompareOp::Eq, s("work")),
                    Filter::Compare(p("value"), CompareOp::Eq, s("a@x.com")),
                ]))
            )
        );
    }

    #[test]
    fn literals_follow_json() {
        assert_eq!(
            parse(r#"title eq "a\"b\\c\u00e9\n""#).unwrap(),
            Filter::Compare(p("title"), CompareOp::Eq, s("a\"b\\cé\n"))
        );
        assert_eq!(
            parse("x eq -1.5e3").unwrap(),
            Filter::Compare(
                p("x"),
                CompareOp::Eq,
                CompValue::Number(serde_json::Number::from_f64(-1500.0).unwrap())
            )
        );
        assert_eq!(
            parse("x eq null").unwrap(),
            Filter::Compare(p("x"), CompareOp::Eq, CompValue::Null)
        );
        assert_eq!(
            parse("x eq false").unwrap(),
            Filter::Compare(p("x"), CompareOp::Eq, CompValue::Bool(false))
        );
        assert_eq!(
            parse(r#"x eq "\ud83d\ude00""#).unwrap(),
            Filter::Compare(p("x"), CompareOp::Eq, s("😀"))
        );
    }

    #[test]
    fn malformed_filters_are_invalid_filter_errors() {
        for bad in [
            "",
            "   ",
            "userName",
            "userName eq",
            "userName eq bjensen",
            "userName zz \"a\"",
            "userName eq \"a",
            "userName eq \"a\" and",
            "(userName eq \"a\"",
            "userName eq \"a\")",
            "emails[type eq \"work\"",
            "emails[type[x eq 1] eq 2]",
            "not userName eq \"a\"",
            "1abc eq \"a\"",
            "a.b.c eq \"a\"",
            "userName eq \"a\" userName eq \"b\"",
            r#"x eq "\q""#,
            "x eq \"\u{0001}\"",
            "emails[type eq \"w\"].  eq \"x\"",
        ] {
            invalid(bad);
        }
    }

    #[test]
    fn case_70_a_thousand_nested_parentheses_is_refused_without_overflowing_the_stack() {
        let deep = format!("{}userName pr{}", "(".repeat(1000), ")".repeat(1000));
        assert!(invalid(&deep).contains("longer than") || invalid(&deep).contains("deeper"));
        let deep_short = format!(
            "{}a pr{}",
            "(".repeat(MAX_DEPTH + 5),
            ")".repeat(MAX_DEPTH + 5)
        );
        assert!(invalid(&deep_short).contains("deeper"));
        let nots = format!("{}a pr{}", "not (".repeat(500), ")".repeat(500));
        invalid(&nots);
        // Within the limit nesting is fine.
        let ok = format!("{}a pr{}", "(".repeat(10), ")".repeat(10));
        assert_eq!(parse(&ok).unwrap(), Filter::Present(p("a")));
    }

    #[test]
    fn case_70_a_ten_kilobyte_filter_is_refused() {
        let long = format!("userName eq \"{}\"", "a".repeat(10 * 1024));
        assert!(invalid(&long).contains("longer than"));
    }

    #[test]
    fn too_many_comparisons_are_refused() {
        let many = vec!["a pr"; MAX_TERMS + 1].join(" or ");
        assert!(invalid(&many).contains("comparisons"));
        let fine = vec!["a pr"; MAX_TERMS].join(" or ");
        assert!(matches!(parse(&fine).unwrap(), Filter::Or(v) if v.len() == MAX_TERMS));
    }

    #[test]
    fn patch_paths_parse_in_all_their_forms() {
        assert_eq!(parse_path("active").unwrap().attr, p("active"));
        let pp = parse_path("name.givenName").unwrap();
        assert_eq!(pp.attr.sub.as_deref(), Some("givenName"));
        let pp = parse_path("members[value eq \"2819c223\"]").unwrap();
        assert_eq!(pp.attr, p("members"));
        assert_eq!(
            pp.filter,
            Some(Filter::Compare(p("value"), CompareOp::Eq, s("2819c223")))
        );
        let pp = parse_path("emails[type eq \"work\"].value").unwrap();
        assert_eq!(pp.sub.as_deref(), Some("value"));
        let pp =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber")
                .unwrap();
        assert_eq!(pp.attr.name, "employeeNumber");
    }

    #[test]
    fn bad_patch_paths_are_invalid_path_errors() {
        for bad in [
            "",
            "a b",
            "emails[",
            "emails[type eq \"w\"]x",
            "name.givenName[x pr]",
            "$$",
            "a..b",
        ] {
            assert!(
                matches!(parse_path(bad), Err(ScimError::InvalidPath(_))),
                "{bad:?} should be an invalid path"
            );
        }
    }

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

    #[test]
    fn case_69_hostile_values_stay_values() {
        for v in [
            "\\\"",
            "'",
            "%",
            "_",
            "' OR 1=1 --",
            "\\u0000",
            "é".repeat(500).as_str(),
        ] {
            let input = format!("userName eq \"{}\"", v);
            let parsed = parse(&input);
            assert!(
                matches!(
                    parsed,
                    Ok(Filter::Compare(_, CompareOp::Eq, CompValue::Str(_)))
                ),
                "{input}"
            );
        }
    }
}
