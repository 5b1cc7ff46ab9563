//! Finding users as administrators name them, and the overviews the admin pages list.

use serde::Serialize;

use crate::store::memberships::StoredMembership;
use crate::store::scim::fold;
use crate::store::users::UserRecord;
use crate::store::{ReadTx, StoreError};

/// Users matching `key`: an email (any case), the public id, `provider:subject`, the internal
/// numeric id, or a SCIM userName (of any provider, compared as SCIM does, case-folded).
pub fn find_users(tx: &dyn ReadTx, key: &str) -> Result<Vec<UserRecord>, StoreError> {
    let key = key.trim();
    let mut found = tx.find_users(key)?;
    if let Ok(id) = key.parse::<i64>()
        && let Some(user) = tx.user(id)?
        && found.iter().all(|u| u.id != user.id)
    {
        found.push(user);
    }
    for id in tx.identities_by_scim_user_name(&fold(key))? {
        if found.iter().all(|u| u.id != id)
            && let Some(user) = tx.user(id)?
        {
            found.push(user);
        }
    }
    Ok(found)
}

/// A user by public id.
pub fn user_by_public_id(
    tx: &dyn ReadTx,
    public_id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    Ok(tx
        .find_users(public_id)?
        .into_iter()
        .find(|u| u.public_id == public_id))
}

/// A user with their memberships, for the admin users table.
#[derive(Debug, Clone, Serialize)]
pub struct UserOverview {
    pub user: UserRecord,
    pub memberships: Vec<StoredMembership>,
    pub sessions: i64,
}

/// One page of users (optionally those matching `search`) with their memberships and live
/// sessions, and how many users match in all.
pub fn users_overview(
    tx: &dyn ReadTx,
    search: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<(Vec<UserOverview>, i64), StoreError> {
    let (users, total) = tx.users_page(search, limit, offset)?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        out.push(UserOverview {
            memberships: tx.memberships(user.id)?,
            sessions: tx.session_count(user.id)?,
            user,
        });
    }
    Ok((out, total))
}
