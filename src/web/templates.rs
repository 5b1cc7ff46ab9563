//! HTML templates (minijinja, auto-escaped), embedded in the binary so that `teamgate` runs
//! from any directory. Each page module renders through [`Templates::render`].

use minijinja::Environment;
use serde::Serialize;

/// Every template, by name. Add new pages here.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("chooser.html", include_str!("../../templates/chooser.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "provider_logout.html",
        include_str!("../../templates/provider_logout.html"),
    ),
    (
        "demo_idp_pick.html",
        include_str!("../../templates/demo_idp_pick.html"),
    ),
    (
        "admin_clients.html",
        include_str!("../../templates/admin_clients.html"),
    ),
    (
        "admin_base.html",
        include_str!("../../templates/admin_base.html"),
    ),
    (
        "admin_audit_rows.html",
        include_str!("../../templates/admin_audit_rows.html"),
    ),
    (
        "admin_index.html",
        include_str!("../../templates/admin_index.html"),
    ),
    (
        "admin_users.html",
        include_str!("../../templates/admin_users.html"),
    ),
    (
        "admin_user.html",
        include_str!("../../templates/admin_user.html"),
    ),
    (
        "admin_teams.html",
        include_str!("../../templates/admin_teams.html"),
    ),
    (
        "admin_mappings.html",
        include_str!("../../templates/admin_mappings.html"),
    ),
    (
        "admin_scim.html",
        include_str!("../../templates/admin_scim.html"),
    ),
    (
        "admin_audit.html",
        include_str!("../../templates/admin_audit.html"),
    ),
    (
        "admin_plan.html",
        include_str!("../../templates/admin_plan.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("template {name}: {source}")]
pub struct TemplateError {
    name: String,
    #[source]
    source: minijinja::Error,
}

/// The loaded templates; cheap to share behind an `Arc`.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The templates, with `base` (the path teamgate is served under, `""` at the root of
    /// its site; see `ServerConfig::base_path`) as the global every link starts with.
    pub fn new(base: &str) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.add_global("base", base.to_owned());
        // `.html` templates are auto-escaped by minijinja's default callback.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|source| TemplateError {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    pub fn render(&self, name: &str, ctx: impl Serialize) -> Result<String, TemplateError> {
        let err = |source| TemplateError {
            name: name.to_owned(),
            source,
        };
        self.env
            .get_template(name)
            .map_err(err)?
            .render(ctx)
            .map_err(err)
    }
}
