//! The grammar: tokens to a [`Filter`] tree by recursive descent (`or` over `and` over `not`,
//! parentheses and value paths), enforcing the length, depth and term limits as it goes; and
//! PATCH paths, `attrPath` or `valuePath ["." subAttr]`, to a [`PatchPath`].

use super::lex::{Tok, describe, tokenize};
use super::{AttrPath, CompValue, CompareOp, Filter, MAX_DEPTH, MAX_FILTER_LEN, MAX_TERMS};
use crate::domain::scim::error::ScimError;
use crate::domain::scim::schema;

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::scim::ResourceType;
    use crate::domain::scim::filter::compile;

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
