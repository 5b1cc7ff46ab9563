//! A checked SCIM filter ([`Cond`], RFC 7644 §3.4.2.2) translated into a PostgreSQL condition
//! on `scim_users r` or `scim_groups r`: the twin of `store/sqlite/scim/filter_sql.rs`, with
//! jsonb operators where SQLite has `json_extract` / `json_each`. Every value and every JSON
//! path is a bound parameter; `co`/`sw`/`ew` use `LIKE ... ESCAPE '\'` with `%` and `_` escaped
//! (security case 69), or `strpos`/`starts_with`/`right` for case-exact attributes.
//!
//! Case rules follow RFC 7643 like the SQLite twin: the folded key columns (userName,
//! displayName) compare full Unicode case-insensitively against a folded literal; other
//! `caseExact: false` attributes compare `lower()` of both sides (the database's locale,
//! where SQLite's NOCASE folds ASCII only). Comparisons on document values are typed: a string
//! literal matches only a JSON string, a number only a JSON number, a boolean only a boolean.

use serde_json::Value;
use tokio_postgres::types::ToSql;

use crate::domain::scim::ResourceType;
use crate::domain::scim::filter::{CompareOp, Cond, Field, Literal};
use crate::domain::scim::schema::AttrType;
use crate::store::scim::{Realm, fold};

/// One bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Bool(bool),
    /// A JSON path, as `text[]` for `#>`.
    Path(Vec<String>),
    /// A JSON value, as `jsonb`.
    Json(Value),
}

impl Param {
    pub fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(s) => s,
            Param::Int(i) => i,
            Param::Bool(b) => b,
            Param::Path(p) => p,
            Param::Json(v) => v,
        }
    }
}

/// A SQL condition with `?` placeholders and its parameters, in order of appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub params: Vec<Param>,
}

impl SqlFilter {
    /// `r.provider = $1 AND r.tenant = $2 [AND (filter)]` and its parameters, placeholders
    /// numbered.
    pub fn clause(filter: Option<&SqlFilter>, realm: &Realm) -> (String, Vec<Param>) {
        let mut args = vec![
            Param::Text(realm.provider.clone()),
            Param::Text(realm.tenant.clone().unwrap_or_default()),
        ];
        match filter {
            None => ("r.provider = $1 AND r.tenant = $2".into(), args),
            Some(f) => {
                args.extend(f.params.iter().cloned());
                let mut sql = String::with_capacity(f.sql.len() + 16);
                let mut n = 2;
                for c in f.sql.chars() {
                    if c == '?' {
                        n += 1;
                        sql.push('$');
                        sql.push_str(&n.to_string());
                    } else {
                        sql.push(c);
                    }
                }
                (
                    format!("r.provider = $1 AND r.tenant = $2 AND ({sql})"),
                    args,
                )
            }
        }
    }
}

/// A filter the backend cannot express (reported as `invalidFilter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Translate `cond` for resources of type `rt` of `realm`.
pub fn translate(rt: ResourceType, cond: &Cond, realm: &Realm) -> Result<SqlFilter, Unsupported> {
    let mut t = Translator {
        rt,
        realm: realm.clone(),
        params: Vec::new(),
        aliases: 0,
    };
    let sql = t.cond(cond, None)?;
    Ok(SqlFilter {
        sql,
        params: t.params,
    })
}

/// What a field reads.
enum Expr {
    /// A text column holding a value folded to lower case; literals are folded the same way.
    Folded(&'static str),
    /// A text column compared as stored.
    Column(&'static str),
    /// The boolean `active` column.
    Bool(&'static str),
    /// A constant (meta.resourceType).
    Const(&'static str),
    /// `src #> path` (jsonb).
    Json { src: String, path: Vec<String> },
}

/// Inside `attr[...]`: how the current value is addressed.
#[derive(Clone, Copy)]
enum Element<'a> {
    /// An element of a JSON array, bound to this alias.
    Json(&'a str),
    /// A group member, joined as `mu` (a `scim_users` row).
    Member,
}

struct Translator {
    rt: ResourceType,
    realm: Realm,
    params: Vec<Param>,
    aliases: usize,
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Translator {
    fn cond(&mut self, c: &Cond, elem: Option<Element<'_>>) -> Result<String, Unsupported> {
        match c {
            Cond::And(items) | Cond::Or(items) => {
                let joiner = if matches!(c, Cond::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = items
                    .iter()
                    .map(|i| self.cond(i, elem).map(|s| format!("({s})")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(parts.join(joiner))
            }
            // An absent attribute (NULL) inside NOT counts as false before negation.
            Cond::Not(inner) => Ok(format!(
                "NOT coalesce(({}), false)",
                self.cond(inner, elem)?
            )),
            Cond::Present(f) => self.present(&f.0, elem),
            Cond::Compare(f, CompareOp::Eq, Literal::Str(v))
                if elem.is_none()
                    && self.rt == ResourceType::User
                    && f.0.is("externalId", None) =>
            {
                // The login identity's (provider, subject) index is the externalId index: a
                // user's externalId is its subject, qualified by the tenant of a tenant-bound
                // token.
                self.params.push(Param::Text(v.clone()));
                self.params.push(Param::Text(self.realm.provider.clone()));
                self.params.push(Param::Text(self.realm.subject(v)));
                Ok("r.external_id = ?::text AND r.user_id = \
                    (SELECT u.id FROM users u WHERE u.provider = ?::text AND u.subject = ?::text)"
                    .into())
            }
            Cond::Compare(f, op, lit) => {
                let expr = self.expr(&f.0, elem)?;
                let ci = !f.0.leaf().case_exact;
                self.compare(&expr, *op, lit, ci)
            }
            Cond::Any(f, inner) => self.any(&f.0, inner),
        }
    }

    fn is_members(&self, f: &Field) -> bool {
        self.rt == ResourceType::Group && f.schema.is_none() && f.attr.name == "members"
    }

    fn expr(&mut self, f: &Field, elem: Option<Element<'_>>) -> Result<Expr, Unsupported> {
        if let Some(elem) = elem {
            let sub = f
                .sub
                .ok_or_else(|| Unsupported("inside [...] name a sub-attribute".into()))?;
            return Ok(match elem {
                Element::Member if sub.name == "value" => Expr::Column("mu.scim_id"),
                Element::Member => {
                    return Err(Unsupported(format!(
                        "members.{} cannot be filtered on",
                        sub.name
                    )));
                }
                Element::Json(alias) => Expr::Json {
                    src: format!("{alias}.value"),
                    path: vec![sub.name.to_owned()],
                },
            });
        }
        if f.is_meta() {
            return match (f.sub.map(|s| s.name), self.rt) {
                (Some("created"), _) => Ok(Expr::Column("r.created_at")),
                (Some("lastModified"), _) => Ok(Expr::Column("r.updated_at")),
                (Some("resourceType"), ResourceType::User) => Ok(Expr::Const("'User'::text")),
                (Some("resourceType"), ResourceType::Group) => Ok(Expr::Const("'Group'::text")),
                _ => Err(Unsupported(
                    "this meta attribute cannot be filtered on".into(),
                )),
            };
        }
        if f.schema.is_none() && f.sub.is_none() {
            match (self.rt, f.attr.name) {
                (_, "id") => return Ok(Expr::Column("r.scim_id")),
                (_, "externalId") => return Ok(Expr::Column("r.external_id")),
                (ResourceType::User, "userName") => return Ok(Expr::Folded("r.user_name_key")),
                (ResourceType::User, "active") => return Ok(Expr::Bool("r.active")),
                (ResourceType::Group, "displayName") => {
                    return Ok(Expr::Folded("r.display_name_key"));
                }
                _ => {}
            }
        }
        if self.is_members(f) {
            return Err(Unsupported(
                "filter members with members[value eq \"...\"]".into(),
            ));
        }
        let mut path = Vec::with_capacity(3);
        if let Some(s) = f.schema {
            path.push(s.to_owned());
        }
        path.push(f.attr.name.to_owned());
        if let Some(sub) = f.sub {
            path.push(sub.name.to_owned());
        }
        Ok(Expr::Json {
            src: "r.doc".into(),
            path,
        })
    }

    /// `src #> path` as jsonb, pushing the path.
    fn json(&mut self, src: &str, path: &[String]) -> String {
        self.params.push(Param::Path(path.to_vec()));
        format!("({src} #> ?::text[])")
    }

    fn compare(
        &mut self,
        e: &Expr,
        op: CompareOp,
        lit: &Literal,
        ci: bool,
    ) -> Result<String, Unsupported> {
        let sym = match op {
            CompareOp::Eq | CompareOp::Ne => "=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            _ => "",
        };
        let negate = |s: String| {
            if op == CompareOp::Ne {
                format!("NOT coalesce({s}, false)")
            } else {
                s
            }
        };
        match e {
            Expr::Json { src, path } => match lit {
                Literal::Null => {
                    let x = self.json(src, path);
                    let null = format!("coalesce({x}, 'null'::jsonb) = 'null'::jsonb");
                    Ok(if op == CompareOp::Eq {
                        null
                    } else {
                        format!("NOT ({null})")
                    })
                }
                Literal::Str(v) => {
                    // Placeholders in the order they appear: the type test, then the text.
                    let typed = format!("jsonb_typeof({}) = 'string'", self.json(src, path));
                    let text = format!("({} #>> '{{}}')", self.json(src, path));
                    self.like_or_cmp(op, sym, v, ci, &text, &typed, negate)
                }
                Literal::Bool(b) => {
                    if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                        return Err(Unsupported("booleans compare with eq and ne only".into()));
                    }
                    let x = self.json(src, path);
                    self.params.push(Param::Json(Value::Bool(*b)));
                    Ok(negate(format!("{x} = ?::jsonb")))
                }
                Literal::Int(i) => self.number(op, sym, src, path, Value::from(*i), negate),
                Literal::Num(n) => {
                    let v = serde_json::Number::from_f64(*n)
                        .map(Value::Number)
                        .ok_or_else(|| Unsupported("the number is not finite".into()))?;
                    self.number(op, sym, src, path, v, negate)
                }
            },
            Expr::Bool(c) => match lit {
                Literal::Null => Ok(if op == CompareOp::Eq {
                    format!("{c} IS NULL")
                } else {
                    format!("{c} IS NOT NULL")
                }),
                Literal::Bool(b) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
                    self.params.push(Param::Bool(*b));
                    Ok(negate(format!("{c} = ?::boolean")))
                }
                // SQLite compares the stored 0/1 with the literal; a bool column has no
                // order or substring worth filtering on.
                _ => Ok(if op == CompareOp::Ne {
                    "true".into()
                } else {
                    "false".into()
                }),
            },
            Expr::Folded(c) | Expr::Column(c) | Expr::Const(c) => {
                let c = (*c).to_owned();
                match lit {
                    Literal::Null => Ok(if op == CompareOp::Eq {
                        format!("{c} IS NULL")
                    } else {
                        format!("{c} IS NOT NULL")
                    }),
                    Literal::Str(v) => {
                        let v = if matches!(e, Expr::Folded(_)) {
                            fold(v)
                        } else {
                            v.clone()
                        };
                        // Folded columns compare exactly against the folded literal (and keep
                        // their index); other columns are case-exact (id, externalId, meta).
                        let folded = matches!(e, Expr::Folded(_));
                        self.text_cmp(op, sym, &v, folded, &c, negate)
                    }
                    // A number or boolean never equals a text column.
                    _ => Ok(if op == CompareOp::Ne {
                        "true".into()
                    } else {
                        "false".into()
                    }),
                }
            }
        }
    }

    /// A string comparison on a jsonb value: `text` is its text, `typed` tests it is a string.
    #[allow(clippy::too_many_arguments)]
    fn like_or_cmp(
        &mut self,
        op: CompareOp,
        sym: &str,
        v: &str,
        ci: bool,
        text: &str,
        typed: &str,
        negate: impl Fn(String) -> String,
    ) -> Result<String, Unsupported> {
        // Placeholders so far: the path for `text`, then the path for `typed`.
        let guard = |s: String| format!("({typed} AND {s})");
        match op {
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                if ci {
                    let pattern = match op {
                        CompareOp::Co => format!("%{}%", escape_like(v)),
                        CompareOp::Sw => format!("{}%", escape_like(v)),
                        _ => format!("%{}", escape_like(v)),
                    };
                    self.params.push(Param::Text(pattern));
                    Ok(guard(format!(
                        "lower({text}) LIKE lower(?::text) ESCAPE '\\'"
                    )))
                } else {
                    Ok(guard(self.exact_substring(op, v, text)))
                }
            }
            _ => {
                self.params.push(Param::Text(v.to_owned()));
                let cmp = if ci {
                    format!("lower({text}) {sym} lower(?::text)")
                } else {
                    format!("{text} {sym} ?::text")
                };
                Ok(negate(guard(cmp)))
            }
        }
    }

    fn text_cmp(
        &mut self,
        op: CompareOp,
        sym: &str,
        v: &str,
        folded: bool,
        c: &str,
        negate: impl Fn(String) -> String,
    ) -> Result<String, Unsupported> {
        match op {
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                if folded {
                    let pattern = match op {
                        CompareOp::Co => format!("%{}%", escape_like(v)),
                        CompareOp::Sw => format!("{}%", escape_like(v)),
                        _ => format!("%{}", escape_like(v)),
                    };
                    self.params.push(Param::Text(pattern));
                    Ok(format!("{c} LIKE ?::text ESCAPE '\\'"))
                } else {
                    Ok(self.exact_substring(op, v, c))
                }
            }
            _ => {
                self.params.push(Param::Text(v.to_owned()));
                Ok(negate(format!("{c} {sym} ?::text")))
            }
        }
    }

    /// Case-exact `co`, `sw`, `ew`.
    fn exact_substring(&mut self, op: CompareOp, v: &str, x: &str) -> String {
        if v.is_empty() {
            return format!("{x} IS NOT NULL");
        }
        self.params.push(Param::Text(v.to_owned()));
        match op {
            CompareOp::Co => format!("strpos({x}, ?::text) > 0"),
            CompareOp::Sw => format!("starts_with({x}, ?::text)"),
            _ => {
                self.params.push(Param::Text(v.to_owned()));
                format!("right({x}, length(?::text)) = ?::text")
            }
        }
    }

    fn number(
        &mut self,
        op: CompareOp,
        sym: &str,
        src: &str,
        path: &[String],
        v: Value,
        negate: impl Fn(String) -> String,
    ) -> Result<String, Unsupported> {
        if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
            return Err(Unsupported("co, sw and ew compare strings".into()));
        }
        let typed = format!("jsonb_typeof({}) = 'number'", self.json(src, path));
        let x = self.json(src, path);
        self.params.push(Param::Json(v));
        Ok(negate(format!("({typed} AND {x} {sym} ?::jsonb)")))
    }

    fn present(&mut self, f: &Field, elem: Option<Element<'_>>) -> Result<String, Unsupported> {
        if elem.is_none() && self.is_members(f) {
            return Ok("EXISTS (SELECT 1 FROM scim_members pm WHERE pm.group_id = r.id)".into());
        }
        let e = self.expr(f, elem)?;
        Ok(match e {
            Expr::Const(_) => "true".into(),
            Expr::Bool(c) => format!("{c} IS NOT NULL"),
            Expr::Json { src, path } => {
                let x = self.json(&src, &path);
                format!(
                    "coalesce({x} NOT IN ('\"\"'::jsonb, '{{}}'::jsonb, '[]'::jsonb, 'null'::jsonb), false)"
                )
            }
            Expr::Folded(c) | Expr::Column(c) => format!("coalesce({c} <> '', false)"),
        })
    }

    fn any(&mut self, f: &Field, inner: &Cond) -> Result<String, Unsupported> {
        if self.is_members(f) {
            if let Cond::Compare(sub, CompareOp::Eq, Literal::Str(id)) = inner
                && sub.0.sub.is_some_and(|s| s.name == "value")
            {
                // The indexed path: user id -> its memberships -> groups.
                self.params.push(Param::Text(id.clone()));
                return Ok("r.id IN (SELECT pm.group_id FROM scim_members pm
                     WHERE pm.member_id = (SELECT su.id FROM scim_users su WHERE su.scim_id = ?::text))"
                    .into());
            }
            let inner = self.cond(inner, Some(Element::Member))?;
            return Ok(format!(
                "EXISTS (SELECT 1 FROM scim_members pm JOIN scim_users mu ON mu.id = pm.member_id
                 WHERE pm.group_id = r.id AND ({inner}))"
            ));
        }
        if f.attr.ty != AttrType::Complex || !f.attr.multi {
            return Err(Unsupported(format!("{} is not multi-valued", f.attr.name)));
        }
        self.aliases += 1;
        let alias = format!("e{}", self.aliases);
        let mut path = Vec::with_capacity(2);
        if let Some(s) = f.schema {
            path.push(s.to_owned());
        }
        path.push(f.attr.name.to_owned());
        // Both placeholders of the CASE take the same path.
        self.params.push(Param::Path(path.clone()));
        self.params.push(Param::Path(path));
        let inner = self.cond(inner, Some(Element::Json(&alias)))?;
        Ok(format!(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> ?::text[]) = 'array'
                     THEN r.doc #> ?::text[] ELSE '[]'::jsonb END) AS {alias}(value) WHERE {inner})"
        ))
    }
}
