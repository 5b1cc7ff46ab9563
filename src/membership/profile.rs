//! How a change of a user's profile (name, email, whether the email is verified) is written in
//! the audit log, whichever source made it: a sign-in or a SCIM push (the newest wins).

use crate::store::users::{Profile, UserRecord};

impl From<&UserRecord> for Profile {
    fn from(user: &UserRecord) -> Self {
        Profile {
            name: user.name.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
        }
    }
}

/// The audit detail of a profile change made by `source` ("the sign-in", "SCIM"); `None` when
/// nothing changed. `why_verified` / `why_unverified` say where the new email's status comes
/// from.
pub fn describe_change(
    before: &Profile,
    after: &Profile,
    source: &str,
    why_verified: &str,
    why_unverified: &str,
) -> Option<String> {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let mut changes = Vec::new();
    if before.name != after.name {
        changes.push(format!(
            "name {:?} -> {:?}",
            show(&before.name),
            show(&after.name)
        ));
    }
    if before.email != after.email || before.email_verified != after.email_verified {
        changes.push(format!(
            "email {} -> {} ({})",
            show(&before.email),
            show(&after.email),
            if after.email_verified {
                why_verified
            } else {
                why_unverified
            }
        ));
    }
    (!changes.is_empty())
        .then(|| format!("from {source}, the newest source: {}", changes.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, email: &str, verified: bool) -> Profile {
        Profile {
            name: Some(name.into()),
            email: Some(email.into()),
            email_verified: verified,
        }
    }

    #[test]
    fn a_change_names_each_field_that_moved_and_why_the_email_is_or_is_not_verified() {
        let before = profile("Hana", "h@example.com", true);
        assert_eq!(describe_change(&before, &before, "SCIM", "v", "u"), None);
        let renamed = profile("Hana R", "h@example.com", true);
        assert_eq!(
            describe_change(&before, &renamed, "SCIM", "v", "u").as_deref(),
            Some("from SCIM, the newest source: name \"Hana\" -> \"Hana R\"")
        );
        let moved = profile("Hana", "new@example.com", false);
        assert_eq!(
            describe_change(&before, &moved, "the sign-in", "v", "not verified").as_deref(),
            Some(
                "from the sign-in, the newest source: email h@example.com -> new@example.com (not verified)"
            )
        );
    }
}
