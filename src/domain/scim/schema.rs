//! The attributes teamgate supports (RFC 7643 §4 and §8.7), as one static table. The same
//! table canonicalises and type-checks request bodies, resolves filter and PATCH paths, and is
//! served as `/Schemas`, so what is advertised is exactly what is accepted.

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, ResourceType, USER_SCHEMA};

/// True when `s` starts with a schema URN prefix (`urn:`, any case) and has more after it.
/// Byte-safe: a key whose fourth byte falls inside a multi-byte character is simply not a URN
/// (fuzzing found the slicing that panicked on such keys).
pub fn is_urn(s: &str) -> bool {
    s.len() > 4 && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    /// May be set once (when it has no value), never changed.
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub description: &'static str,
    pub sub: &'static [Attr],
}

impl Attr {
    /// The sub-attribute called `name`, compared case-insensitively (RFC 7643 §2.1).
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Complex attributes whose main datum is a `value` sub-attribute (emails, manager...).
    pub fn has_value_sub(&self) -> bool {
        self.sub_attr("value").is_some()
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "name": self.name,
            "type": self.ty.as_str(),
            "multiValued": self.multi,
            "description": self.description,
            "required": self.required,
            "mutability": match self.mutability {
                Mutability::ReadOnly => "readOnly",
                Mutability::ReadWrite => "readWrite",
                Mutability::Immutable => "immutable",
                Mutability::WriteOnly => "writeOnly",
            },
            "returned": match self.returned {
                Returned::Always => "always",
                Returned::Never => "never",
                Returned::Default => "default",
                Returned::Request => "request",
            },
        });
        if let Some(obj) = out.as_object_mut() {
            if !matches!(self.ty, AttrType::Complex | AttrType::Boolean) {
                obj.insert("caseExact".into(), self.case_exact.into());
                obj.insert(
                    "uniqueness".into(),
                    match self.uniqueness {
                        Uniqueness::None => "none",
                        Uniqueness::Server => "server",
                        Uniqueness::Global => "global",
                    }
                    .into(),
                );
            }
            if !self.canonical.is_empty() {
                obj.insert("canonicalValues".into(), json!(self.canonical));
            }
            if self.ty == AttrType::Reference {
                obj.insert("referenceTypes".into(), json!(self.reference_types));
            }
            if self.ty == AttrType::Complex {
                let subs: Vec<Value> = self.sub.iter().map(Attr::to_json).collect();
                obj.insert("subAttributes".into(), Value::Array(subs));
            }
        }
        out
    }
}

/// A schema: an id (URN) and its attributes.
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attr],
}

impl Schema {
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The RFC 7643 §7 representation served at `/Schemas/{id}`.
    pub fn to_json(&self, location: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attr::to_json).collect::<Vec<_>>(),
            "meta": { "resourceType": "Schema", "location": location },
        })
    }
}

const STR: Attr = Attr {
    name: "",
    ty: AttrType::String,
    multi: false,
    required: false,
    case_exact: false,
    mutability: Mutability::ReadWrite,
    returned: Returned::Default,
    uniqueness: Uniqueness::None,
    canonical: &[],
    reference_types: &[],
    description: "",
    sub: &[],
};

const fn string(name: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        description,
        ..STR
    }
}

const fn boolean(name: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        description,
        ty: AttrType::Boolean,
        ..STR
    }
}

const fn reference(
    name: &'static str,
    types: &'static [&'static str],
    description: &'static str,
) -> Attr {
    Attr {
        name,
        description,
        ty: AttrType::Reference,
        reference_types: types,
        case_exact: true,
        ..STR
    }
}

const fn complex(
    name: &'static str,
    multi: bool,
    sub: &'static [Attr],
    description: &'static str,
) -> Attr {
    Attr {
        name,
        description,
        ty: AttrType::Complex,
        multi,
        sub,
        ..STR
    }
}

const fn typed(name: &'static str, canonical: &'static [&'static str]) -> Attr {
    Attr {
        name,
        canonical,
        description: "A label indicating the attribute's function.",
        ..STR
    }
}

const PRIMARY: Attr = boolean(
    "primary",
    "True for the preferred value; at most one value has it.",
);
const DISPLAY: Attr = string(
    "display",
    "A human-readable name, primarily used for display.",
);

/// Sub-attributes of the plain multi-valued attributes (RFC 7643 §2.4).
const fn multi_subs(value_description: &'static str) -> [Attr; 4] {
    [
        string("value", value_description),
        DISPLAY,
        typed("type", &[]),
        PRIMARY,
    ]
}

static EMAIL_SUBS: [Attr; 4] = [
    string("value", "An email address, as sent (RFC 5321 form)."),
    DISPLAY,
    typed("type", &["work", "home", "other"]),
    PRIMARY,
];
static PHONE_SUBS: [Attr; 4] = [
    string("value", "A phone number, as sent."),
    DISPLAY,
    typed("type", &["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];
static IMS_SUBS: [Attr; 4] = multi_subs("An instant-messaging address.");
static PHOTO_SUBS: [Attr; 4] = [
    reference("value", &["external"], "The URL of a photo of the user."),
    DISPLAY,
    typed("type", &["photo", "thumbnail"]),
    PRIMARY,
];
static ENTITLEMENT_SUBS: [Attr; 4] = multi_subs("The value of an entitlement.");
static ROLE_SUBS: [Attr; 4] = multi_subs("The value of a role.");
static CERT_SUBS: [Attr; 4] = [
    Attr {
        name: "value",
        ty: AttrType::Binary,
        case_exact: true,
        description: "A DER-encoded X.509 certificate, base64.",
        ..STR
    },
    DISPLAY,
    typed("type", &[]),
    PRIMARY,
];
static ADDRESS_SUBS: [Attr; 8] = [
    string(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    string("streetAddress", "The full street address."),
    string("locality", "The city or locality."),
    string("region", "The state or region."),
    string("postalCode", "The zip code or postal code."),
    string("country", "The country name component."),
    typed("type", &["work", "home", "other"]),
    PRIMARY,
];
static NAME_SUBS: [Attr; 6] = [
    string("formatted", "The full name, formatted for display."),
    string("familyName", "The family name."),
    string("givenName", "The given name."),
    string("middleName", "The middle name(s)."),
    string("honorificPrefix", "The honorific prefix(es)."),
    string("honorificSuffix", "The honorific suffix(es)."),
];

const fn read_only(a: Attr) -> Attr {
    Attr {
        mutability: Mutability::ReadOnly,
        ..a
    }
}

static USER_GROUPS_SUBS: [Attr; 4] = [
    read_only(string(
        "value",
        "The id of a group the user is a direct member of.",
    )),
    read_only(reference("$ref", &["Group"], "The URI of the group.")),
    read_only(string("display", "The group's displayName.")),
    read_only(typed("type", &["direct"])),
];

static USER_ATTRS: [Attr; 21] = [
    Attr {
        name: "userName",
        required: true,
        uniqueness: Uniqueness::Server,
        description: "Unique identifier for the user, typically used to sign in. Unique per provider, compared case-insensitively (RFC 7643 §4.1.1).",
        ..STR
    },
    complex(
        "name",
        false,
        &NAME_SUBS,
        "The components of the user's name.",
    ),
    string("displayName", "The name of the user, suitable for display."),
    string("nickName", "The casual way to address the user."),
    reference(
        "profileUrl",
        &["external"],
        "A URL to the user's online profile.",
    ),
    string("title", "The user's title, such as \"Vice President\"."),
    string(
        "userType",
        "The relationship between the organisation and the user.",
    ),
    string(
        "preferredLanguage",
        "The user's preferred language (RFC 7231 §5.3.5).",
    ),
    string("locale", "The user's default location, for localisation."),
    string("timezone", "The user's time zone, in IANA format."),
    boolean(
        "active",
        "False when the IdP has disabled the user: they hold no teams and their sessions end. Accepts the strings \"True\"/\"False\" in any case.",
    ),
    Attr {
        name: "password",
        mutability: Mutability::WriteOnly,
        returned: Returned::Never,
        case_exact: true,
        description: "Accepted and discarded: teamgate never stores passwords.",
        ..STR
    },
    complex(
        "emails",
        true,
        &EMAIL_SUBS,
        "Email addresses for the user, stored as sent.",
    ),
    complex(
        "phoneNumbers",
        true,
        &PHONE_SUBS,
        "Phone numbers for the user.",
    ),
    complex(
        "ims",
        true,
        &IMS_SUBS,
        "Instant-messaging addresses for the user.",
    ),
    complex("photos", true, &PHOTO_SUBS, "URLs of photos of the user."),
    complex(
        "addresses",
        true,
        &ADDRESS_SUBS,
        "Physical mailing addresses for the user.",
    ),
    Attr {
        mutability: Mutability::ReadOnly,
        ..complex(
            "groups",
            true,
            &USER_GROUPS_SUBS,
            "The groups the user is a direct member of; read-only, changed through the Group resource.",
        )
    },
    complex(
        "entitlements",
        true,
        &ENTITLEMENT_SUBS,
        "Entitlements of the user.",
    ),
    complex(
        "roles",
        true,
        &ROLE_SUBS,
        "Roles of the user, as the IdP names them (not teamgate roles).",
    ),
    complex(
        "x509Certificates",
        true,
        &CERT_SUBS,
        "Certificates of the user.",
    ),
];

static MANAGER_SUBS: [Attr; 3] = [
    string("value", "The id of the user's manager."),
    reference("$ref", &["User"], "The URI of the manager."),
    read_only(string("displayName", "The manager's displayName.")),
];

static ENTERPRISE_ATTRS: [Attr; 6] = [
    string(
        "employeeNumber",
        "A string identifier assigned by the organisation.",
    ),
    string("costCenter", "The name of a cost center."),
    string("organization", "The name of an organisation."),
    string("division", "The name of a division."),
    string("department", "The name of a department."),
    complex(
        "manager",
        false,
        &MANAGER_SUBS,
        "The user's manager. A plain string is read as the manager's id (Entra sends that).",
    ),
];

static MEMBER_SUBS: [Attr; 4] = [
    Attr {
        mutability: Mutability::Immutable,
        case_exact: true,
        ..string(
            "value",
            "The SCIM id of a User of this provider. Nested groups are not supported.",
        )
    },
    Attr {
        mutability: Mutability::Immutable,
        ..reference("$ref", &["User"], "The URI of the member.")
    },
    read_only(string("display", "The member's displayName.")),
    Attr {
        mutability: Mutability::Immutable,
        ..typed("type", &["User"])
    },
];

static GROUP_ATTRS: [Attr; 2] = [
    Attr {
        name: "displayName",
        required: true,
        uniqueness: Uniqueness::Server,
        description: "The group's name. Unique per provider, compared case-insensitively, like the team mappings that may name it.",
        ..STR
    },
    complex(
        "members",
        true,
        &MEMBER_SUBS,
        "The users in the group. Changes apply one member at a time, whatever the group's size.",
    ),
];

/// Every schema served at `/Schemas`.
pub static USER: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &USER_ATTRS,
};
pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ENTERPRISE_ATTRS,
};
pub static GROUP: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &GROUP_ATTRS,
};
pub static ALL: [&Schema; 3] = [&USER, &ENTERPRISE_USER, &GROUP];

static META_SUBS: [Attr; 5] = [
    read_only(string("resourceType", "The resource type.")),
    read_only(Attr {
        ty: AttrType::DateTime,
        ..string("created", "When the resource was added.")
    }),
    read_only(Attr {
        ty: AttrType::DateTime,
        ..string("lastModified", "When the resource was last changed.")
    }),
    read_only(reference("location", &["uri"], "The URI of the resource.")),
    read_only(Attr {
        case_exact: true,
        ..string("version", "The weak ETag of the resource.")
    }),
];

/// RFC 7643 §3.1 common attributes.
pub static ID: Attr = Attr {
    name: "id",
    mutability: Mutability::ReadOnly,
    returned: Returned::Always,
    uniqueness: Uniqueness::Global,
    case_exact: true,
    description: "Assigned by teamgate; client-supplied values are ignored.",
    ..STR
};
/// The user's externalId links it to the login identity (Entra `oid`, Okta user id). It may
/// change (Entra sends `Replace externalId`, IdP quirk S12): the link follows it.
pub static USER_EXTERNAL_ID: Attr = Attr {
    name: "externalId",
    case_exact: true,
    description: "The IdP's id of the user (Entra object id, Okta user id): the login subject. A change moves the link to the login identity it names.",
    ..STR
};
pub static GROUP_EXTERNAL_ID: Attr = Attr {
    name: "externalId",
    case_exact: true,
    description: "The IdP's id of the group (Entra object id); what group_key = \"id\" mappings name.",
    ..STR
};
pub static META: Attr = Attr {
    mutability: Mutability::ReadOnly,
    ..complex("meta", false, &META_SUBS, "Resource metadata.")
};

/// Where an attribute lives in a resource document.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    /// The extension schema whose object holds the attribute; `None` for core and common.
    pub schema: Option<&'static str>,
    pub attr: &'static Attr,
}

impl Located {
    pub fn is_common(&self) -> bool {
        std::ptr::eq(self.attr, &ID)
            || std::ptr::eq(self.attr, &USER_EXTERNAL_ID)
            || std::ptr::eq(self.attr, &GROUP_EXTERNAL_ID)
            || std::ptr::eq(self.attr, &META)
    }
}

/// The extension schemas a resource type declares (RFC 7643 §6 `schemaExtensions`).
pub fn extensions(rt: ResourceType) -> &'static [&'static Schema] {
    static USER_EXT: [&Schema; 1] = [&ENTERPRISE_USER];
    match rt {
        ResourceType::User => &USER_EXT,
        ResourceType::Group => &[],
    }
}

/// The schema a URN names for `rt` (core or declared extension), compared case-insensitively.
pub fn schema_for(rt: ResourceType, urn: &str) -> Option<&'static Schema> {
    let core: &'static Schema = match rt {
        ResourceType::User => &USER,
        ResourceType::Group => &GROUP,
    };
    if core.id.eq_ignore_ascii_case(urn) {
        return Some(core);
    }
    extensions(rt)
        .iter()
        .copied()
        .find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// Find attribute `name` of `rt`, in the schema `urn` when given (else core and common).
/// `Ok(None)` for an attribute of an extension teamgate does not know (kept as sent);
/// `Err` for a name no schema defines.
pub fn locate(rt: ResourceType, urn: Option<&str>, name: &str) -> Result<Option<Located>, String> {
    match urn {
        Some(urn) => match schema_for(rt, urn) {
            Some(s) if s.id == rt.core_schema() => locate(rt, None, name),
            Some(s) => s
                .attr(name)
                .map(|attr| {
                    Some(Located {
                        schema: Some(s.id),
                        attr,
                    })
                })
                .ok_or_else(|| format!("the schema {} has no attribute \"{name}\"", s.id)),
            None => Ok(None),
        },
        None => {
            let common = if name.eq_ignore_ascii_case("id") {
                Some(&ID)
            } else if name.eq_ignore_ascii_case("externalId") {
                Some(match rt {
                    ResourceType::User => &USER_EXTERNAL_ID,
                    ResourceType::Group => &GROUP_EXTERNAL_ID,
                })
            } else if name.eq_ignore_ascii_case("meta") {
                Some(&META)
            } else {
                None
            };
            let attr = common.or_else(|| match rt {
                ResourceType::User => USER.attr(name),
                ResourceType::Group => GROUP.attr(name),
            });
            attr.map(|attr| Some(Located { schema: None, attr }))
                .ok_or_else(|| format!("{} has no attribute \"{name}\"", rt.name()))
        }
    }
}

/// RFC 7643 §2.2 `required`: a User needs a `userName`, a Group a `displayName`, each a
/// non-blank string.
pub fn check_required(rt: ResourceType, doc: &Map<String, Value>) -> Result<(), ScimError> {
    let name = match rt {
        ResourceType::User => "userName",
        ResourceType::Group => "displayName",
    };
    match doc.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        _ => Err(ScimError::InvalidValue(format!(
            "{name} is required and must be a non-empty string"
        ))),
    }
}

/// Parse a boolean as Entra sends it: JSON `true`/`false`, or the strings "True"/"False" in
/// any case (IdP quirk S2; security case 67 decides to accept them).
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Check `value` against `attr` and return it in canonical form: attribute names in the
/// schema's spelling, string booleans as booleans, a single value of a multi-valued attribute
/// wrapped in an array, a plain string given for a complex attribute with a `value`
/// sub-attribute read as `{"value": ...}`, unknown sub-attributes dropped. `Ok(None)` means
/// "unassigned" (JSON null or an empty array, RFC 7644 §3.5.2).
pub fn coerce(attr: &Attr, value: &Value, at: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_single(attr, item, at)? {
                out.push(v);
            }
        }
        return Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        });
    }
    coerce_single(attr, value, at)
}

/// [`coerce`] for one value of `attr` (an element when `attr` is multi-valued).
pub fn coerce_single(attr: &Attr, value: &Value, at: &str) -> Result<Option<Value>, ScimError> {
    let wrong = |what: &str| ScimError::InvalidValue(format!("{at} must be {what}"));
    match (attr.ty, value) {
        (_, Value::Null) => Ok(None),
        (AttrType::Boolean, v) => parse_bool(v)
            .map(|b| Some(Value::Bool(b)))
            .ok_or_else(|| wrong("a boolean (true/false)")),
        (AttrType::String | AttrType::Reference | AttrType::Binary, Value::String(_)) => {
            Ok(Some(value.clone()))
        }
        (AttrType::String | AttrType::Reference | AttrType::Binary, _) => Err(wrong("a string")),
        (AttrType::DateTime, Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|_| Some(value.clone()))
                .map_err(|_| wrong("an RFC 3339 date-time"))
        }
        (AttrType::DateTime, _) => Err(wrong("an RFC 3339 date-time string")),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(value.clone()))
        }
        (AttrType::Integer, _) => Err(wrong("an integer")),
        (AttrType::Decimal, Value::Number(_)) => Ok(Some(value.clone())),
        (AttrType::Decimal, _) => Err(wrong("a number")),
        (AttrType::Complex, Value::Object(obj)) => {
            let mut out = Map::new();
            for (key, v) in obj {
                // Unknown sub-attributes are ignored, as for unknown core attributes.
                let Some(sub) = attr.sub_attr(key) else {
                    continue;
                };
                if out.contains_key(sub.name) {
                    return Err(ScimError::InvalidSyntax(format!(
                        "{at}.{} is given twice",
                        sub.name
                    )));
                }
                if let Some(v) = coerce(sub, v, &format!("{at}.{}", sub.name))? {
                    out.insert(sub.name.to_owned(), v);
                }
            }
            Ok(if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            })
        }
        (AttrType::Complex, Value::String(_)) if attr.has_value_sub() => {
            let mut out = Map::new();
            out.insert("value".into(), value.clone());
            Ok(Some(Value::Object(out)))
        }
        (AttrType::Complex, _) => Err(wrong("an object")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn attributes_are_found_whatever_their_case() {
        let l = locate(ResourceType::User, None, "USERNAME")
            .unwrap()
            .unwrap();
        assert_eq!(l.attr.name, "userName");
        let l = locate(ResourceType::User, None, "x509certificates")
            .unwrap()
            .unwrap();
        assert_eq!(l.attr.name, "x509Certificates");
    }

    #[test]
    fn a_core_urn_prefix_names_the_core_attribute() {
        let l = locate(
            ResourceType::User,
            Some("urn:ietf:params:scim:schemas:core:2.0:User"),
            "userName",
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.attr.name, "userName");
        assert!(l.schema.is_none());
    }

    #[test]
    fn an_enterprise_attribute_lives_under_its_schema() {
        let l = locate(
            ResourceType::User,
            Some(ENTERPRISE_USER_SCHEMA),
            "employeenumber",
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.schema, Some(ENTERPRISE_USER_SCHEMA));
        assert_eq!(l.attr.name, "employeeNumber");
    }

    #[test]
    fn an_unknown_extension_is_opaque_and_an_unknown_core_attribute_is_an_error() {
        assert!(
            locate(ResourceType::User, Some("urn:example:ext:1.0:User"), "x")
                .unwrap()
                .is_none()
        );
        assert!(locate(ResourceType::User, None, "shoeSize").is_err());
        assert!(
            locate(
                ResourceType::Group,
                Some(ENTERPRISE_USER_SCHEMA),
                "department"
            )
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn external_id_is_writable_for_users_and_groups() {
        let u = locate(ResourceType::User, None, "externalId")
            .unwrap()
            .unwrap();
        assert_eq!(u.attr.mutability, Mutability::ReadWrite);
        let g = locate(ResourceType::Group, None, "externalid")
            .unwrap()
            .unwrap();
        assert_eq!(g.attr.mutability, Mutability::ReadWrite);
        assert!(g.is_common());
    }

    #[test]
    fn string_booleans_in_any_case_become_booleans() {
        let active = USER.attr("active").unwrap();
        for (given, want) in [
            ("False", false),
            ("TRUE", true),
            ("false", false),
            ("tRuE", true),
        ] {
            assert_eq!(
                coerce(active, &json!(given), "active").unwrap(),
                Some(json!(want))
            );
        }
        assert!(matches!(
            coerce(active, &json!("nope"), "active"),
            Err(ScimError::InvalidValue(_))
        ));
        assert!(matches!(
            coerce(active, &json!(0), "active"),
            Err(ScimError::InvalidValue(_))
        ));
    }

    #[test]
    fn complex_values_get_canonical_names_and_lose_unknown_sub_attributes() {
        let name = USER.attr("name").unwrap();
        let got = coerce(name, &json!({"GIVENNAME": "Ada", "shoe": 1}), "name").unwrap();
        assert_eq!(got, Some(json!({"givenName": "Ada"})));
    }

    #[test]
    fn a_single_value_of_a_multi_valued_attribute_is_wrapped() {
        let emails = USER.attr("emails").unwrap();
        let got = coerce(
            emails,
            &json!({"value": "a@x", "primary": "True"}),
            "emails",
        )
        .unwrap();
        assert_eq!(got, Some(json!([{"value": "a@x", "primary": true}])));
    }

    #[test]
    fn a_string_manager_is_read_as_its_id() {
        let manager = ENTERPRISE_USER.attr("manager").unwrap();
        assert_eq!(
            coerce(manager, &json!("m-1"), "manager").unwrap(),
            Some(json!({"value": "m-1"}))
        );
    }

    #[test]
    fn a_number_is_not_a_string() {
        let user_name = USER.attr("userName").unwrap();
        assert!(matches!(
            coerce(user_name, &json!(5), "userName"),
            Err(ScimError::InvalidValue(_))
        ));
    }

    #[test]
    fn the_same_sub_attribute_twice_in_different_case_is_refused() {
        let name = USER.attr("name").unwrap();
        let got = coerce(name, &json!({"givenName": "a", "givenname": "b"}), "name");
        assert!(matches!(got, Err(ScimError::InvalidSyntax(_))));
    }

    #[test]
    fn the_schemas_document_lists_every_attribute_with_its_traits() {
        let doc = USER.to_json("http://x/Schemas/u");
        let attrs = doc["attributes"].as_array().unwrap();
        let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["required"], true);
        let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(password["returned"], "never");
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["subAttributes"].as_array().unwrap().len(), 4);
    }
}
