//! Shared by the `scim_*` test files: a teamgate with two SCIM providers (`entra`, groups keyed
//! by id; `okta`, keyed by name) and one with SCIM disabled, a token for each, and a client
//! that speaks `application/scim+json` and returns status, headers and JSON body.

#![allow(dead_code)]

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use teamgate::provisioning::tokens;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::oidc_common::secret_file;
use crate::support::postgres::TestDb;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The Entra group object id the `admins` team maps.
pub const ADMINS_GROUP_ID: &str = "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159";
/// The Okta group name the `engineering` team maps.
pub const ENGINEERING: &str = "Engineering";

pub fn config() -> String {
    let secret = secret_file("client-secret");
    format!(
        r#"
[server]
public_url = "{{PUBLIC_URL}}"
database = "{{DB}}"

[[provider]]
id = "entra"
kind = "entra"
issuer = "http://127.0.0.1:9/entra/v2.0"
client_id = "teamgate"
client_secret_file = "{secret}"
scim = {{ enabled = true }}

[[provider]]
id = "okta"
kind = "okta"
issuer = "http://127.0.0.1:9/okta"
client_id = "teamgate"
client_secret_file = "{secret}"
scim = {{ enabled = true }}

[[provider]]
id = "nosync"
kind = "oidc"
issuer = "http://127.0.0.1:9/nosync"
client_id = "teamgate"
client_secret_file = "{secret}"

[[team]]
id = "admins"
roles = [{{ scope = "org/acme", role = "owner" }}]
groups = [{{ provider = "entra", id = "{ADMINS_GROUP_ID}" }}]

[[team]]
id = "engineering"
roles = [{{ scope = "org/acme", role = "editor" }}]
groups = [{{ provider = "okta", name = "{ENGINEERING}" }}]

[[team]]
id = "everyone"
roles = [{{ scope = "org/acme", role = "viewer" }}]

[defaults]
teams_without_groups = ["everyone"]
"#
    )
}

/// A SCIM response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// A SCIM error with this status and `scimType` (`None`: none expected).
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["schemas"], json!([ERROR]), "body: {}", self.body);
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "body: {}",
            self.body
        );
        assert_eq!(
            self.body.get("scimType").and_then(Value::as_str),
            scim_type,
            "body: {}",
            self.body
        );
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "body: {}",
            self.body
        );
        assert_eq!(self.headers["content-type"], "application/scim+json");
    }

    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {}", self.body))
            .to_owned()
    }

    pub fn etag(&self) -> String {
        self.headers["etag"].to_str().unwrap().to_owned()
    }
}

pub struct ScimRig {
    pub app: TestApp,
    pub client: reqwest::Client,
    pub entra_token: String,
    pub okta_token: String,
}

pub async fn token(app: &TestApp, provider: &str) -> String {
    let config = app.state.config.get();
    let t = tokens::create(
        &app.state.store,
        &app.state.clock,
        &config,
        provider,
        None,
        30,
        None,
    )
    .await
    .unwrap();
    t.token.expose().to_owned()
}

impl ScimRig {
    pub async fn start() -> ScimRig {
        Self::start_with(&config()).await
    }

    pub async fn start_with(config: &str) -> ScimRig {
        Self::rig(spawn_app(config).await).await
    }

    /// [`ScimRig::start`] on a PostgreSQL database of its own, whatever the suite's backend
    /// (call `support::postgres::require` first).
    pub async fn start_on_postgres() -> ScimRig {
        Self::rig(spawn_app_with(&config(), |_| TestDb::postgres()).await).await
    }

    async fn rig(app: TestApp) -> ScimRig {
        let entra_token = token(&app, "entra").await;
        let okta_token = token(&app, "okta").await;
        ScimRig {
            app,
            client: reqwest::Client::new(),
            entra_token,
            okta_token,
        }
    }

    pub fn token_of(&self, provider: &str) -> &str {
        if provider == "okta" {
            &self.okta_token
        } else {
            &self.entra_token
        }
    }

    /// A request to `/scim/v2/{provider}{path}` with that provider's token.
    pub fn req(
        &self,
        method: reqwest::Method,
        provider: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.app.url(&format!("/scim/v2/{provider}{path}")))
            .bearer_auth(self.token_of(provider))
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let response = rb.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, provider: &str, path: &str) -> Reply {
        self.send(self.req(reqwest::Method::GET, provider, path))
            .await
    }

    pub async fn delete(&self, provider: &str, path: &str) -> Reply {
        self.send(self.req(reqwest::Method::DELETE, provider, path))
            .await
    }

    pub async fn with_body(
        &self,
        method: reqwest::Method,
        provider: &str,
        path: &str,
        body: &Value,
    ) -> Reply {
        let rb = self
            .req(method, provider, path)
            .header("content-type", "application/scim+json")
            .body(body.to_string());
        self.send(rb).await
    }

    pub async fn post(&self, provider: &str, path: &str, body: &Value) -> Reply {
        self.with_body(reqwest::Method::POST, provider, path, body)
            .await
    }

    pub async fn put(&self, provider: &str, path: &str, body: &Value) -> Reply {
        self.with_body(reqwest::Method::PUT, provider, path, body)
            .await
    }

    pub async fn patch(&self, provider: &str, path: &str, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        self.with_body(reqwest::Method::PATCH, provider, path, &body)
            .await
    }

    /// A filter as Entra sends it: URL-encoded in the query.
    pub async fn filter(&self, provider: &str, resource: &str, filter: &str) -> Reply {
        let rb = self
            .req(reqwest::Method::GET, provider, &format!("/{resource}"))
            .query(&[("filter", filter)]);
        self.send(rb).await
    }

    pub async fn create_user(
        &self,
        provider: &str,
        user_name: &str,
        external_id: Option<&str>,
    ) -> String {
        let mut body = json!({"schemas": [USER], "userName": user_name, "active": true,
            "name": {"givenName": "Given", "familyName": "Family"},
            "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}]});
        if let Some(e) = external_id {
            body["externalId"] = json!(e);
        }
        let r = self.post(provider, "/Users", &body).await;
        r.assert_status(201);
        r.id()
    }

    pub async fn create_group(
        &self,
        provider: &str,
        name: &str,
        external_id: Option<&str>,
    ) -> String {
        let mut body = json!({"schemas": [GROUP], "displayName": name, "members": []});
        if let Some(e) = external_id {
            body["externalId"] = json!(e);
        }
        let r = self.post(provider, "/Groups", &body).await;
        r.assert_status(201);
        r.id()
    }

    /// The login identity (`users.id`) behind SCIM user `scim_id`.
    pub async fn user_id(&self, provider: &str, scim_id: &str) -> i64 {
        let (p, s) = (provider.to_owned(), scim_id.to_owned());
        self.app
            .state
            .store
            .read(move |conn| {
                Ok::<_, teamgate::store::StoreError>(
                    conn.scim_user(&teamgate::store::scim::Realm::new(&p, None), &s)?
                        .map(|r| r.user_id),
                )
            })
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no SCIM user {scim_id}"))
    }

    /// The teams of login identity `user_id`, sorted.
    pub async fn teams(&self, user_id: i64) -> Vec<String> {
        crate::helpers::sql_column(
            &self.app.state,
            "SELECT DISTINCT team_id FROM memberships WHERE user_id = ?1 ORDER BY team_id",
            &[user_id.into()],
        )
        .await
    }

    /// (action, team, trigger, detail) of the audit rows about `user_id`, oldest first.
    pub async fn audit(&self, user_id: i64) -> Vec<(String, String, String, String)> {
        crate::helpers::sql_rows(
            &self.app.state,
            "SELECT action, COALESCE(team_id, ''), trigger, COALESCE(detail, '') FROM audit
                 WHERE user_id = ?1 ORDER BY id",
            &[user_id.into()],
        )
        .await
        .into_iter()
        .map(|r| {
            let v = |i: usize| r[i].clone().unwrap_or_default();
            (v(0), v(1), v(2), v(3))
        })
        .collect()
    }

    /// `users.active` of a login identity.
    pub async fn identity_active(&self, user_id: i64) -> bool {
        crate::helpers::sql_one(
            &self.app.state,
            "SELECT active FROM users WHERE id = ?1",
            &[user_id.into()],
        )
        .await
        .as_deref()
            == Some("1")
    }

    /// Give `user_id` a signed-in session row, as a login would.
    pub async fn add_session(&self, user_id: i64) {
        use tower_sessions::session::{Id, Record};
        use tower_sessions::session_store::SessionStore;
        let store = teamgate::store::sessions::DbSessionStore::new(
            self.app.state.store.clone(),
            self.app.state.clock.clone(),
        );
        let mut data = std::collections::HashMap::new();
        data.insert("auth".to_owned(), json!({"user_id": user_id}));
        let mut record = Record {
            id: Id::default(),
            data,
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
    }

    pub async fn sessions(&self, user_id: i64) -> i64 {
        self.app
            .state
            .store
            .read(move |conn| conn.session_count(user_id))
            .await
            .unwrap()
    }

    pub async fn session_generation(&self, user_id: i64) -> i64 {
        crate::helpers::sql_one(
            &self.app.state,
            "SELECT session_generation FROM users WHERE id = ?1",
            &[user_id.into()],
        )
        .await
        .unwrap()
        .parse()
        .unwrap()
    }
}

/// The `value`s of a group's members, as GET returns them.
pub fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|v| v["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// A token of `provider` bound to `tenant` (a multi-tenant Entra provider's).
pub async fn tenant_token(app: &TestApp, provider: &str, tenant: &str) -> String {
    let config = app.state.config.get();
    let t = tokens::create(
        &app.state.store,
        &app.state.clock,
        &config,
        provider,
        Some(tenant),
        30,
        None,
    )
    .await
    .unwrap();
    t.token.expose().to_owned()
}

/// A SCIM client of one provider with one token, on any app (say a tenant-bound token of a
/// multi-tenant provider, beside a test IdP).
pub struct ScimClient {
    /// teamgate's address, `http://127.0.0.1:PORT`.
    pub base: String,
    pub state: teamgate::state::AppState,
    pub provider: String,
    pub token: String,
    client: reqwest::Client,
}

impl ScimClient {
    pub fn new(app: &TestApp, provider: &str, token: &str) -> Self {
        Self::at(&app.address, &app.state, provider, token)
    }

    pub fn at(base: &str, state: &teamgate::state::AppState, provider: &str, token: &str) -> Self {
        Self {
            base: base.to_owned(),
            state: state.clone(),
            provider: provider.to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(
                method,
                format!("{}/scim/v2/{}{path}", self.base, self.provider),
            )
            .bearer_auth(&self.token)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let response = rb.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub async fn with_body(&self, method: reqwest::Method, path: &str, body: &Value) -> Reply {
        let rb = self
            .req(method, path)
            .header("content-type", "application/scim+json")
            .body(body.to_string());
        self.send(rb).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.with_body(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.with_body(reqwest::Method::PUT, path, body).await
    }

    pub async fn patch(&self, path: &str, ops: Value) -> Reply {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        self.with_body(reqwest::Method::PATCH, path, &body).await
    }

    /// A filter as Entra sends it: URL-encoded in the query, with other query parameters.
    pub async fn query(&self, resource: &str, query: &[(&str, &str)]) -> Reply {
        let rb = self
            .req(reqwest::Method::GET, &format!("/{resource}"))
            .query(query);
        self.send(rb).await
    }

    /// POST `/Users` as Entra sends it; returns the SCIM id.
    pub async fn create_user(&self, user_name: &str, external_id: Option<&str>) -> String {
        let mut body = json!({"schemas": [USER, ENTERPRISE], "userName": user_name, "active": true,
            "displayName": format!("{user_name} display"),
            "emails": [{"primary": true, "type": "work", "value": user_name}]});
        if let Some(e) = external_id {
            body["externalId"] = json!(e);
        }
        let r = self.post("/Users", &body).await;
        r.assert_status(201);
        r.id()
    }

    /// POST `/Groups` as Entra sends it (its extra schema, no members); returns the SCIM id.
    pub async fn create_group(&self, name: &str, external_id: &str) -> String {
        let r = self
            .post(
                "/Groups",
                &json!({"schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                    "externalId": external_id, "displayName": name, "members": []}),
            )
            .await;
        r.assert_status(201);
        r.id()
    }

    /// Entra's default-dialect member add (IdP quirk S4).
    pub async fn add_member(&self, group: &str, user: &str) {
        self.patch(
            &format!("/Groups/{group}"),
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": user}]}]),
        )
        .await
        .assert_status(204);
    }

    /// The login identity (`users.id`) behind SCIM user `scim_id` of this client's realm.
    pub async fn user_id(&self, scim_id: &str) -> i64 {
        crate::helpers::sql_one(
            &self.state,
            "SELECT user_id FROM scim_users WHERE scim_id = ?1",
            &[scim_id.into()],
        )
        .await
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no SCIM user {scim_id}"))
    }
}

/// (subject, active, email, email_verified, name) of login identity `user_id`.
pub async fn identity(
    app: &teamgate::state::AppState,
    user_id: i64,
) -> (String, bool, Option<String>, bool, Option<String>) {
    let row = crate::helpers::sql_rows(
        app,
        "SELECT subject, active, email, email_verified, name FROM users WHERE id = ?1",
        &[user_id.into()],
    )
    .await
    .into_iter()
    .next()
    .unwrap_or_else(|| panic!("no identity {user_id}"));
    // Booleans come back as "1" / "0" from either backend.
    let flag = |v: &Option<String>| v.as_deref() == Some("1");
    (
        row[0].clone().unwrap_or_default(),
        flag(&row[1]),
        row[2].clone(),
        flag(&row[3]),
        row[4].clone(),
    )
}

/// The teams of login identity `user_id`, sorted.
pub async fn teams_of_user(app: &teamgate::state::AppState, user_id: i64) -> Vec<String> {
    crate::helpers::sql_column(
        app,
        "SELECT DISTINCT team_id FROM memberships WHERE user_id = ?1 ORDER BY team_id",
        &[user_id.into()],
    )
    .await
}

/// The audit actions about `user_id`, oldest first.
pub async fn audit_actions(app: &teamgate::state::AppState, user_id: i64) -> Vec<(String, String)> {
    crate::helpers::sql_rows(
        app,
        "SELECT action, COALESCE(detail, '') FROM audit WHERE user_id = ?1 ORDER BY id",
        &[user_id.into()],
    )
    .await
    .into_iter()
    .map(|r| {
        let mut r = r.into_iter().map(Option::unwrap_or_default);
        (r.next().unwrap_or_default(), r.next().unwrap_or_default())
    })
    .collect()
}
