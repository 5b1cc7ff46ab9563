//! `teamgate migrate-db --from SQLITE --to postgres://...` (issue 13): the real binary copies a
//! used SQLite database (users, memberships, SCIM state with tenants, sessions with their
//! details, pre-login sessions, audit, ES256 and RS256 keys, the OpenID provider's grants and
//! tokens) into an empty PostgreSQL database, prints and checks the counts of every table,
//! refuses a non-empty target, and a server started on the copy knows the same users,
//! sessions, SCIM resources and grants. And both backends have the same schema.

use reqwest::StatusCode;

use crate::helpers::{
    Arg, TestDb, demo_config, demo_sign_in, new_browser, spawn_app_with, sql_column, sql_one,
};
use crate::support::postgres;
use teamgate::store::grants::{NewGrant, TokenKind};
use teamgate::store::scim::{NewToken, Realm, UserValues};
use teamgate::store::users::NewIdentity;

/// A tenant of a multi-tenant provider (the SCIM rows of migration 0005 carry it).
const TENANT: &str = "11111111-1111-4111-8111-111111111111";

fn migrate(from: &std::path::Path, to: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_teamgate"))
        .args(["migrate-db", "--from"])
        .arg(from)
        .args(["--to", to])
        .output()
        .unwrap()
}

#[tokio::test]
async fn migrate_db_copies_every_row_and_the_copy_serves_the_same_users() {
    if !postgres::require("copy a SQLite database into PostgreSQL") {
        return;
    }
    let source = spawn_app_with(&demo_config(), TestDb::sqlite).await;
    let browser = new_browser();
    demo_sign_in(&source, &browser, "alice@example.com").await;
    demo_sign_in(&source, &new_browser(), "bob@example.com").await;
    let me = browser.get(source.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // A login in flight: a pre-login session (counted by the triggers of migration 0004).
    let started = new_browser()
        .get(source.url("/login"))
        .send()
        .await
        .unwrap();
    assert!(started.status().is_redirection());
    // What main's features store: a tenant-bound SCIM token and user, an RS256 key, and a
    // provider grant of alice's session with an access and a refresh token.
    teamgate::signing::ensure_rsa_key(&source.state.store, &source.state.clock)
        .await
        .unwrap();
    let alice_session = sql_one(
        &source.state,
        "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'alice@example.com'",
        &[],
    )
    .await
    .unwrap();
    let grant_id = source
        .state
        .store
        .write(move |tx| {
            let token = NewToken {
                public_id: "tenant-token",
                provider: "demo",
                tenant: Some(TENANT),
                hash: [7; 32],
                created_at: "2026-12-01T00:00:00.000Z",
                expires_at: 4_000_000_000,
                note: None,
            };
            tx.insert_scim_token(&token)?;
            let realm = Realm::new("demo", Some(TENANT));
            let user_id = tx
                .link_identity(
                    &NewIdentity {
                        provider: "demo",
                        subject: &realm.subject("oid-1"),
                        email: None,
                        name: None,
                        active: true,
                    },
                    "2026-12-01T00:00:00.000Z",
                )?
                .user_id;
            let doc = serde_json::json!({"userName": "tenant@example.com"});
            let doc = doc.as_object().unwrap();
            tx.insert_scim_user(
                &realm,
                "scim-1",
                user_id,
                &UserValues {
                    user_name: "tenant@example.com",
                    external_id: Some("oid-1"),
                    active: true,
                    doc,
                },
                "2026-12-01T00:00:00.000Z",
            )?;
            let alice = tx.find_users("alice@example.com")?.remove(0);
            let grant = tx.insert_grant(&NewGrant {
                client_id: "app".into(),
                user_id: alice.id,
                session_id: alice_session.clone(),
                session_generation: alice.session_generation,
                code_hash: [1; 32],
                code_expires_at: 4_000_000_000,
                redirect_uri: "https://app.example.com/cb".into(),
                code_challenge: None,
                nonce: None,
                scopes: "openid".into(),
                auth_time: 1,
                expires_at: 4_000_000_000,
                created_at: 1,
            })?;
            tx.insert_oauth_token(&[2; 32], grant, TokenKind::Access, 4_000_000_000)?;
            tx.insert_oauth_token(&[3; 32], grant, TokenKind::Refresh, 4_000_000_000)?;
            Ok::<_, teamgate::store::StoreError>(grant)
        })
        .await
        .unwrap();
    let details = sql_one(
        &source.state,
        "SELECT COUNT(*) FROM sessions WHERE created_at IS NOT NULL AND client_ip IS NOT NULL",
        &[],
    )
    .await;
    assert_ne!(details.as_deref(), Some("0"), "no session details to copy");
    let users = sql_one(&source.state, "SELECT COUNT(*) FROM users", &[]).await;
    let audit = sql_one(&source.state, "SELECT COUNT(*) FROM audit", &[]).await;
    let file = source.db.setting.clone();

    let target = TestDb::postgres();
    let out = migrate(std::path::Path::new(&file), &target.setting);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every table is counted on both sides; those written above hold rows.
    for (table, _) in teamgate::store::copy::TABLES {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(*table))
            .unwrap_or_else(|| panic!("no count for {table}: {stdout}"));
        let counts: Vec<&str> = line.split_whitespace().skip(1).collect();
        assert_eq!(counts[0], counts[1], "{line}");
        let must_have_rows = [
            "users",
            "memberships",
            "audit",
            "sessions",
            "signing_keys",
            "rsa_signing_keys",
            "scim_users",
            "scim_tokens",
            "oauth_grants",
            "oauth_tokens",
        ];
        if must_have_rows.contains(table) {
            assert_ne!(counts[0], "0", "{line}");
        }
    }
    assert!(stdout.contains("every row copied and counted"), "{stdout}");

    // Into a database that is not empty any more: refused, nothing written.
    let again = migrate(std::path::Path::new(&file), &target.setting);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A server on the copy: the same users, the same audit, and alice's session still works
    // (the cookie jar sends it to any port of 127.0.0.1).
    let setting = target.setting.clone();
    let copy = spawn_app_with(&demo_config(), move |_| TestDb {
        setting,
        pg_name: None,
    })
    .await;
    assert_eq!(
        sql_one(&copy.state, "SELECT COUNT(*) FROM users", &[]).await,
        users
    );
    let copied_audit: i64 = sql_one(&copy.state, "SELECT COUNT(*) FROM audit", &[])
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(copied_audit >= audit.unwrap().parse::<i64>().unwrap());
    let me = browser.get(copy.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the session moved with the data"
    );
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["email"], "alice@example.com");
    // The sessions' details, the pre-login count, the tenants and the grants came along.
    assert_eq!(
        sql_one(
            &copy.state,
            "SELECT COUNT(*) FROM sessions WHERE created_at IS NOT NULL AND client_ip IS NOT NULL",
            &[],
        )
        .await,
        details
    );
    let pending = sql_one(
        &copy.state,
        "SELECT COUNT(*) FROM sessions WHERE user_id IS NULL",
        &[],
    )
    .await
    .unwrap();
    assert_ne!(pending, "0");
    let (counted, user, token, grant, refresh) = copy
        .state
        .store
        .read(|tx| {
            Ok::<_, teamgate::store::StoreError>((
                tx.pending_session_count()?,
                tx.scim_user(&Realm::new("demo", Some(TENANT)), "scim-1")?,
                tx.scim_token_by_hash(&[7; 32])?,
                tx.grant_by_code(&[1; 32])?,
                tx.oauth_token(&[3; 32])?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(counted.to_string(), pending, "the pre-login counter");
    assert_eq!(user.unwrap().tenant.as_deref(), Some(TENANT));
    assert_eq!(token.unwrap().0.tenant.as_deref(), Some(TENANT));
    assert_eq!(grant.unwrap().id, grant_id);
    let (refresh, of) = refresh.unwrap();
    assert_eq!((refresh.kind, of.id), (TokenKind::Refresh, grant_id));
    // New rows get new ids past the copied ones.
    demo_sign_in(&copy, &new_browser(), "carol@example.com").await;
    let next = copy
        .state
        .store
        .write(move |tx| {
            let grant = tx.grant(grant_id)?.unwrap();
            tx.insert_grant(&NewGrant {
                client_id: grant.client_id,
                user_id: grant.user_id,
                session_id: grant.session_id,
                session_generation: grant.session_generation,
                code_hash: [9; 32],
                code_expires_at: grant.code_expires_at,
                redirect_uri: grant.redirect_uri,
                code_challenge: None,
                nonce: None,
                scopes: grant.scopes,
                auth_time: grant.auth_time,
                expires_at: grant.expires_at,
                created_at: grant.created_at,
            })
        })
        .await
        .unwrap();
    assert!(next > grant_id);
    drop(copy);
    drop(target);
}

/// The names `sql` lists on `state`'s database, sorted.
async fn names(state: &teamgate::state::AppState, sql: &str, args: &[Arg]) -> Vec<String> {
    let mut names = sql_column(state, sql, args).await;
    names.sort();
    names
}

/// Both backends have the same tables, columns, indexes and triggers: the PostgreSQL
/// migrations mirror every SQLite migration (the counter table of pre-login sessions holds 16
/// rows there instead of one, see `store/postgres/sql/0004_pending_sessions.sql`; its shape
/// is the same).
#[tokio::test]
async fn the_postgresql_schema_mirrors_every_sqlite_table_column_index_and_trigger() {
    if !postgres::require("compare the two schemas") {
        return;
    }
    let sqlite = spawn_app_with(&demo_config(), TestDb::sqlite).await;
    let pg = spawn_app_with(&demo_config(), |_| TestDb::postgres()).await;
    let sqlite_tables = names(
        &sqlite.state,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        &[],
    )
    .await;
    let pg_tables = names(
        &pg.state,
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
           AND table_name <> 'teamgate_schema'",
        &[],
    )
    .await;
    assert!(
        sqlite_tables.contains(&"oauth_grants".to_owned())
            && sqlite_tables.contains(&"refresh_grants".to_owned()),
        "{sqlite_tables:?}"
    );
    assert_eq!(sqlite_tables, pg_tables);
    for table in &sqlite_tables {
        let sqlite_columns = names(
            &sqlite.state,
            "SELECT name FROM pragma_table_info(?1)",
            &[table.as_str().into()],
        )
        .await;
        let pg_columns = names(
            &pg.state,
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = ?1",
            &[table.as_str().into()],
        )
        .await;
        assert_eq!(sqlite_columns, pg_columns, "the columns of {table}");
    }
    // Indexes made by CREATE INDEX (not those behind a PRIMARY KEY or UNIQUE constraint,
    // which each engine names its own way).
    let sqlite_indexes = names(
        &sqlite.state,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'",
        &[],
    )
    .await;
    let pg_indexes = names(
        &pg.state,
        "SELECT i.relname::text FROM pg_index x
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        &[],
    )
    .await;
    assert!(
        sqlite_indexes.contains(&"sessions_pending".to_owned()),
        "{sqlite_indexes:?}"
    );
    assert_eq!(sqlite_indexes, pg_indexes);
    let sqlite_triggers = names(
        &sqlite.state,
        "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        &[],
    )
    .await;
    let pg_triggers = names(
        &pg.state,
        "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal",
        &[],
    )
    .await;
    assert_eq!(sqlite_triggers, pg_triggers);
}
