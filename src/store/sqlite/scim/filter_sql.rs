//! A checked SCIM filter ([`Cond`], RFC 7644 §3.4.2.2) translated into a SQL condition on
//! `scim_users r` or `scim_groups r`. Every value, and every JSON path, is a bound parameter;
//! `co`/`sw`/`ew` use `LIKE ... ESCAPE '\'` with `%` and `_` escaped (security case 69), or
//! `instr`/`substr` for case-exact attributes, for which LIKE would fold case.
//!
//! userName, externalId, displayName, id and `members.value` map to indexed columns; other
//! attributes are read from the stored document with `json_extract` / `json_each`. Case rules
//! follow RFC 7643: the folded key columns compare full Unicode case-insensitively; other
//! `caseExact: false` attributes use SQLite's NOCASE, which folds ASCII only (documented).

use rusqlite::types::Value as SqlValue;

use crate::domain::scim::ResourceType;
use crate::domain::scim::filter::{CompareOp, Cond, Field, Literal};
use crate::domain::scim::schema::AttrType;
use crate::store::scim::{Realm, fold};

/// A SQL condition and its parameters, in order of appearance.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlFilter {
    /// `r.provider = ? AND r.tenant = ? [AND (filter)]` and its parameters.
    pub fn clause(filter: Option<&SqlFilter>, realm: &Realm) -> (String, Vec<SqlValue>) {
        let mut args = vec![
            SqlValue::Text(realm.provider.clone()),
            SqlValue::Text(realm.tenant.clone().unwrap_or_default()),
        ];
        match filter {
            None => ("r.provider = ? AND r.tenant = ?".into(), args),
            Some(f) => {
                args.extend(f.params.iter().cloned());
                (
                    format!("r.provider = ? AND r.tenant = ? AND ({})", f.sql),
                    args,
                )
            }
        }
    }
}

/// A filter the SQL backend cannot express (reported as `invalidFilter`).
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
    /// A column holding a value folded to lower case; literals are folded the same way.
    Folded(&'static str),
    /// A column compared as stored.
    Column(&'static str),
    /// A constant (meta.resourceType).
    Const(&'static str),
    /// `json_extract(src, path)`.
    Json { src: String, path: String },
}

/// Inside `attr[...]`: how the current value is addressed.
#[derive(Clone, Copy)]
enum Element<'a> {
    /// A value of a JSON array, bound to this `json_each` alias.
    Json(&'a str),
    /// A group member, joined as `mu` (a `scim_users` row).
    Member,
}

struct Translator {
    rt: ResourceType,
    realm: Realm,
    params: Vec<SqlValue>,
    aliases: usize,
}

fn json_path(parts: &[&str]) -> String {
    // Quoted labels: extension URNs contain dots and colons.
    let mut path = String::from("$");
    for p in parts {
        path.push_str(".\"");
        path.push_str(p);
        path.push('"');
    }
    path
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
            // A NULL (absent attribute) inside NOT must count as false before negation, so
            // `not (title eq "x")` matches users without a title.
            Cond::Not(inner) => Ok(format!("NOT coalesce(({}), 0)", self.cond(inner, elem)?)),
            Cond::Present(f) => self.present(&f.0, elem),
            Cond::Compare(f, CompareOp::Eq, Literal::Str(v))
                if elem.is_none()
                    && self.rt == ResourceType::User
                    && f.0.is("externalId", None) =>
            {
                // The login identity's (provider, subject) index is the externalId index: a
                // user's externalId is its subject (qualified by the tenant of a tenant-bound
                // token), so scim_users needs no index of its own (one random-key index fewer
                // to update per created user, measured).
                self.params.push(SqlValue::Text(v.clone()));
                self.params
                    .push(SqlValue::Text(self.realm.provider.clone()));
                self.params.push(SqlValue::Text(self.realm.subject(v)));
                Ok("r.external_id = ? AND r.user_id = \
                    (SELECT u.id FROM users u WHERE u.provider = ? AND u.subject = ?)"
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
                    path: json_path(&[sub.name]),
                },
            });
        }
        if f.is_meta() {
            return match (f.sub.map(|s| s.name), self.rt) {
                (Some("created"), _) => Ok(Expr::Column("r.created_at")),
                (Some("lastModified"), _) => Ok(Expr::Column("r.updated_at")),
                (Some("resourceType"), ResourceType::User) => Ok(Expr::Const("'User'")),
                (Some("resourceType"), ResourceType::Group) => Ok(Expr::Const("'Group'")),
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
                (ResourceType::User, "active") => return Ok(Expr::Column("r.active")),
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
        let mut parts: Vec<&str> = Vec::with_capacity(3);
        if let Some(s) = f.schema {
            parts.push(s);
        }
        parts.push(f.attr.name);
        if let Some(sub) = f.sub {
            parts.push(sub.name);
        }
        Ok(Expr::Json {
            src: "r.doc".into(),
            path: json_path(&parts),
        })
    }

    /// The SQL text of `e`, pushing its parameters.
    fn render(&mut self, e: &Expr) -> String {
        match e {
            Expr::Folded(c) | Expr::Column(c) | Expr::Const(c) => (*c).to_owned(),
            Expr::Json { src, path } => {
                self.params.push(SqlValue::Text(path.clone()));
                format!("json_extract({src}, ?)")
            }
        }
    }

    fn literal(&self, e: &Expr, lit: &Literal) -> SqlValue {
        match lit {
            Literal::Null => SqlValue::Null,
            Literal::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Literal::Int(i) => SqlValue::Integer(*i),
            Literal::Num(n) => SqlValue::Real(*n),
            Literal::Str(s) => match e {
                Expr::Folded(_) => SqlValue::Text(fold(s)),
                _ => SqlValue::Text(s.clone()),
            },
        }
    }

    fn compare(
        &mut self,
        e: &Expr,
        op: CompareOp,
        lit: &Literal,
        ci: bool,
    ) -> Result<String, Unsupported> {
        if *lit == Literal::Null {
            let x = self.render(e);
            return Ok(match op {
                CompareOp::Eq => format!("{x} IS NULL"),
                _ => format!("{x} IS NOT NULL"),
            });
        }
        let is_str = matches!(lit, Literal::Str(_));
        // Folded columns are compared exactly against a folded literal (and keep their index).
        let nocase = if ci && is_str && matches!(e, Expr::Json { .. }) {
            " COLLATE NOCASE"
        } else {
            ""
        };
        let value = self.literal(e, lit);
        let x = self.render(e);
        let sql = match op {
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::Lt
            | CompareOp::Le => {
                let sym = match op {
                    CompareOp::Eq | CompareOp::Ne => "=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    _ => "<=",
                };
                self.params.push(value);
                if op == CompareOp::Ne {
                    format!("NOT coalesce({x} {sym} ?{nocase}, 0)")
                } else {
                    format!("{x} {sym} ?{nocase}")
                }
            }
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                let SqlValue::Text(v) = value else {
                    return Err(Unsupported("co, sw and ew compare strings".into()));
                };
                if ci || matches!(e, Expr::Folded(_)) {
                    let pattern = match op {
                        CompareOp::Co => format!("%{}%", escape_like(&v)),
                        CompareOp::Sw => format!("{}%", escape_like(&v)),
                        _ => format!("%{}", escape_like(&v)),
                    };
                    self.params.push(SqlValue::Text(pattern));
                    format!("{x} LIKE ? ESCAPE '\\'")
                } else {
                    match op {
                        CompareOp::Co => {
                            self.params.push(SqlValue::Text(v));
                            format!("instr({x}, ?) > 0")
                        }
                        _ if v.is_empty() => format!("{x} IS NOT NULL"),
                        CompareOp::Sw => {
                            self.params.push(SqlValue::Text(v.clone()));
                            self.params.push(SqlValue::Text(v));
                            format!("substr({x}, 1, length(?)) = ?")
                        }
                        _ => {
                            self.params.push(SqlValue::Text(v.clone()));
                            self.params.push(SqlValue::Text(v));
                            format!("substr({x}, -length(?)) = ?")
                        }
                    }
                }
            }
        };
        Ok(sql)
    }

    fn present(&mut self, f: &Field, elem: Option<Element<'_>>) -> Result<String, Unsupported> {
        if elem.is_none() && self.is_members(f) {
            return Ok("EXISTS (SELECT 1 FROM scim_members pm WHERE pm.group_id = r.id)".into());
        }
        let e = self.expr(f, elem)?;
        let x = self.render(&e);
        Ok(match e {
            Expr::Const(_) => "1".into(),
            Expr::Json { .. } => format!("coalesce({x} NOT IN ('', '{{}}', '[]'), 0)"),
            Expr::Folded(_) | Expr::Column(_) => format!("coalesce({x} <> '', 0)"),
        })
    }

    fn any(&mut self, f: &Field, inner: &Cond) -> Result<String, Unsupported> {
        if self.is_members(f) {
            if let Cond::Compare(sub, CompareOp::Eq, Literal::Str(id)) = inner
                && sub.0.sub.is_some_and(|s| s.name == "value")
            {
                // The indexed path: user id -> its memberships -> groups.
                self.params.push(SqlValue::Text(id.clone()));
                return Ok(
                    "r.id IN (SELECT pm.group_id FROM scim_members pm
                     WHERE pm.member_id = (SELECT su.id FROM scim_users su WHERE su.scim_id = ?))"
                        .into(),
                );
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
        let mut parts: Vec<&str> = Vec::with_capacity(2);
        if let Some(s) = f.schema {
            parts.push(s);
        }
        parts.push(f.attr.name);
        self.params.push(SqlValue::Text(json_path(&parts)));
        let inner = self.cond(inner, Some(Element::Json(&alias)))?;
        Ok(format!(
            "EXISTS (SELECT 1 FROM json_each(r.doc, ?) AS {alias} WHERE {inner})"
        ))
    }
}
