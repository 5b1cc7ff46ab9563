//! Tenants of a multi-tenant Entra provider (IdP quirk E9). One provider admits several
//! directories, whose object ids, group ids and SCIM resources must never meet: every key that
//! names a user or a group of such a provider carries its tenant, `{tid}/{key}`. The login
//! subject (`{tid}/{oid}`), the subject a tenant-bound SCIM token links its users to
//! (`{tid}/{externalId}`), the group keys of login claims and of SCIM groups, and the team
//! mappings (`{ provider, tenant, id }`) are all written this one way, so a group that tenant B
//! pushes can never match a mapping meant for tenant A (security case J1).

/// `key` qualified by `tenant`: `{tid}/{key}`, or `key` itself when there is no tenant.
pub fn qualify(tenant: Option<&str>, key: &str) -> String {
    match tenant {
        Some(t) => format!("{t}/{key}"),
        None => key.to_owned(),
    }
}

/// Every key of `keys` qualified by `tenant`.
pub fn qualify_all(tenant: Option<&str>, keys: Vec<String>) -> Vec<String> {
    match tenant {
        None => keys,
        Some(_) => keys.iter().map(|k| qualify(tenant, k)).collect(),
    }
}

/// The keys of `tenant` among qualified `keys`, without their tenant: what Microsoft Graph,
/// which speaks for one tenant at a time, is asked about.
pub fn keys_of(tenant: Option<&str>, keys: &[String]) -> Vec<String> {
    match tenant {
        None => keys.to_vec(),
        Some(t) => keys
            .iter()
            .filter_map(|k| {
                k.strip_prefix(t)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .map(str::to_owned)
            })
            .collect(),
    }
}

/// The tenant of a multi-tenant subject `{tid}/{oid}`.
pub fn of_subject(subject: &str) -> Option<&str> {
    subject
        .split_once('/')
        .map(|(tid, _)| tid)
        .filter(|tid| super::ids::is_guid(tid))
}

/// A tenant id as teamgate stores it: a GUID, lower case (Entra's `tid` is lower case; the
/// config and the command line may be typed in either).
pub fn parse(s: &str) -> Option<String> {
    let s = s.trim();
    super::ids::is_guid(s).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "6e2b7a3c-0d1e-4f5a-8b9c-0a1b2c3d4e5f";

    #[test]
    fn keys_are_qualified_by_their_tenant_and_read_back_per_tenant() {
        assert_eq!(qualify(None, "g1"), "g1");
        assert_eq!(qualify(Some(A), "g1"), format!("{A}/g1"));
        let keys = qualify_all(Some(A), vec!["g1".into(), "g2".into()]);
        assert_eq!(keys, vec![format!("{A}/g1"), format!("{A}/g2")]);
        let mixed = vec![
            format!("{A}/g1"),
            "00000000-0000-0000-0000-000000000000/g2".into(),
            format!("{A}x/g3"),
        ];
        assert_eq!(keys_of(Some(A), &mixed), vec!["g1".to_owned()]);
        assert_eq!(keys_of(None, &mixed), mixed);
    }

    #[test]
    fn a_subject_names_its_tenant_only_when_it_starts_with_a_guid() {
        assert_eq!(of_subject(&format!("{A}/oid")), Some(A));
        assert_eq!(of_subject("oid"), None);
        assert_eq!(of_subject("scim:abc/def"), None);
    }

    #[test]
    fn tenant_ids_are_guids_stored_in_lower_case() {
        assert_eq!(parse(&A.to_uppercase()).as_deref(), Some(A));
        assert_eq!(parse("organizations"), None);
    }
}
