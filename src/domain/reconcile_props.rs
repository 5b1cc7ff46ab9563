//! Property tests of [`reconcile`] and [`diff`] over small random worlds (a few teams, some
//! unknown to the config; group keys differing in case and spacing; current rows of every
//! source), plus example-based tests that read as the rules they check.

use std::collections::BTreeSet;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::Index;

use super::ids::{ProviderId, TeamId};
use super::reconcile::{
    MappingTable, MembershipRow, Plan, Policy, Source, Target, UserInput, diff, reconcile,
};

const PROVIDERS: [&str; 2] = ["entra", "okta"];
const TEAMS: [&str; 6] = [
    "admins", "viewers", "editors", "auditors", "everyone", "retired",
];
/// Group keys as IdPs send them: the same group in two spellings, padding, unmapped ones.
const GROUPS: [&str; 7] = [
    "g-admins", "G-Admins", " g-view ", "g-edit", "g-audit", "g-none", "",
];

fn team(name: &str) -> TeamId {
    TeamId::parse(name).expect("a valid team id")
}

fn provider(name: &str) -> ProviderId {
    ProviderId::parse(name).expect("a valid provider id")
}

fn row(team_name: &str, source: Source, via: &str) -> MembershipRow {
    MembershipRow {
        team: team(team_name),
        source,
        via: via.to_owned(),
    }
}

/// `current` with `plan` applied, as the store does it.
fn apply(current: &BTreeSet<MembershipRow>, plan: &Plan) -> BTreeSet<MembershipRow> {
    let mut rows = current.clone();
    for r in &plan.remove {
        rows.remove(r);
    }
    rows.extend(plan.add.iter().cloned());
    rows
}

fn rows_of(rows: &BTreeSet<MembershipRow>, source: Source) -> BTreeSet<MembershipRow> {
    rows.iter()
        .filter(|r| r.source == source)
        .cloned()
        .collect()
}

fn known_rows(rows: &BTreeSet<MembershipRow>, policy: &Policy) -> BTreeSet<MembershipRow> {
    rows.iter()
        .filter(|r| policy.known_teams.contains(&r.team))
        .cloned()
        .collect()
}

fn arb_team() -> impl Strategy<Value = TeamId> {
    prop::sample::select(&TEAMS[..]).prop_map(team)
}

fn arb_group() -> impl Strategy<Value = String> {
    prop::sample::select(&GROUPS[..]).prop_map(str::to_owned)
}

fn arb_source() -> impl Strategy<Value = Source> {
    prop::sample::select(&Source::ALL[..])
}

/// Mappings of both providers (some to teams the config does not know), a random set of known
/// teams and default teams.
fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        vec(
            (
                prop::sample::select(&PROVIDERS[..]),
                arb_group(),
                arb_team(),
            ),
            0..12,
        ),
        btree_set(arb_team(), 0..=TEAMS.len()),
        vec(arb_team(), 0..3),
    )
        .prop_map(|(maps, known_teams, teams_without_groups)| {
            let mut mappings = MappingTable::default();
            for (p, g, t) in maps {
                mappings.insert(provider(p), &g, t);
            }
            Policy {
                mappings,
                known_teams,
                teams_without_groups,
            }
        })
}

fn arb_groups() -> impl Strategy<Value = Option<Vec<String>>> {
    prop::option::weighted(0.8, vec(arb_group(), 0..6))
}

fn arb_input() -> impl Strategy<Value = UserInput> {
    (
        prop::sample::select(&PROVIDERS[..]),
        arb_groups(),
        arb_groups(),
        vec(arb_team(), 0..3),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(p, claims_groups, scim_groups, config_teams, active, locked)| UserInput {
                provider: provider(p),
                claims_groups,
                scim_groups,
                config_teams,
                active,
                locked,
            },
        )
}

/// Rows a store could hold: any team (also ones since removed from the config), any source.
fn arb_current() -> impl Strategy<Value = BTreeSet<MembershipRow>> {
    btree_set(
        (arb_team(), arb_source(), arb_group()).prop_map(|(team, source, group)| {
            let via = match source {
                Source::Claims | Source::Scim => MappingTable::normalise(&group),
                Source::Config | Source::Default => String::new(),
            };
            MembershipRow { team, source, via }
        }),
        0..8,
    )
}

/// A list and the same list reordered with some of its items repeated.
fn arb_list_and_reshuffle<T: Clone + std::fmt::Debug + 'static>(
    item: impl Strategy<Value = T>,
) -> impl Strategy<Value = (Vec<T>, Vec<T>)> {
    (vec(item, 0..6), vec(any::<Index>(), 0..4)).prop_flat_map(|(list, repeats)| {
        let mut longer = list.clone();
        if !list.is_empty() {
            longer.extend(repeats.iter().map(|i| i.get(&list).clone()));
        }
        (Just(list), Just(longer).prop_shuffle())
    })
}

proptest! {
    #[test]
    fn applying_the_plan_then_reconciling_again_plans_nothing(
        input in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
    ) {
        let target = reconcile(&input, &policy, &current);
        let plan = diff(&current, &target.rows);
        let applied = apply(&current, &plan);
        prop_assert_eq!(&applied, &target.rows, "the plan leads exactly to the target");
        let again = reconcile(&input, &policy, &applied);
        prop_assert_eq!(diff(&applied, &again.rows), Plan::default());
    }

    #[test]
    fn the_result_does_not_depend_on_the_order_or_duplication_of_group_lists(
        base in arb_input(),
        claims in arb_list_and_reshuffle(arb_group()),
        scim in arb_list_and_reshuffle(arb_group()),
        config_teams in arb_list_and_reshuffle(arb_team()),
        policy in arb_policy(),
        current in arb_current(),
    ) {
        let as_given = UserInput {
            claims_groups: base.claims_groups.as_ref().map(|_| claims.0),
            scim_groups: base.scim_groups.as_ref().map(|_| scim.0),
            config_teams: config_teams.0,
            ..base.clone()
        };
        let reshuffled = UserInput {
            claims_groups: base.claims_groups.as_ref().map(|_| claims.1),
            scim_groups: base.scim_groups.as_ref().map(|_| scim.1),
            config_teams: config_teams.1,
            ..base
        };
        prop_assert_eq!(
            reconcile(&as_given, &policy, &current),
            reconcile(&reshuffled, &policy, &current)
        );
    }

    #[test]
    fn an_unknown_source_keeps_exactly_its_current_rows_for_known_teams(
        input in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
        scim_unknown in any::<bool>(),
    ) {
        let (source, input) = if scim_unknown {
            (Source::Scim, UserInput { scim_groups: None, ..input })
        } else {
            (Source::Claims, UserInput { claims_groups: None, ..input })
        };
        // Deactivation and locks have their own rules, checked below.
        let input = UserInput { active: true, locked: false, ..input };
        let target = reconcile(&input, &policy, &current);
        prop_assert_eq!(
            rows_of(&target.rows, source),
            known_rows(&rows_of(&current, source), &policy)
        );
    }

    #[test]
    fn memberships_from_one_source_are_never_removed_by_input_of_another_source(
        input in arb_input(),
        other in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
    ) {
        let target = reconcile(&input, &policy, &current);
        for source in [Source::Claims, Source::Scim, Source::Config] {
            // Everything the same except the inputs of the other sources.
            let mut changed = UserInput {
                claims_groups: other.claims_groups.clone(),
                scim_groups: other.scim_groups.clone(),
                config_teams: other.config_teams.clone(),
                ..input.clone()
            };
            match source {
                Source::Claims => changed.claims_groups = input.claims_groups.clone(),
                Source::Scim => changed.scim_groups = input.scim_groups.clone(),
                Source::Config => changed.config_teams = input.config_teams.clone(),
                Source::Default => unreachable!("not iterated"),
            }
            let changed_target = reconcile(&changed, &policy, &current);
            prop_assert_eq!(
                rows_of(&changed_target.rows, source),
                rows_of(&target.rows, source),
                "{:?} rows moved when only other sources' input changed", source
            );
        }
    }

    /// A locked user keeps their teams even when deactivated (the lock wins; their sessions
    /// stop through revocation, not through reconcile), so this is about unlocked users and
    /// locked ones who hold nothing yet.
    #[test]
    fn an_inactive_user_ends_with_nothing(
        input in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
    ) {
        // Locked or not: deprovisioning wins over the lock.
        let input = UserInput { active: false, ..input };
        let target = reconcile(&input, &policy, &current);
        prop_assert_eq!(&target, &Target::default());
        prop_assert!(apply(&current, &diff(&current, &target.rows)).is_empty());
    }

    #[test]
    fn a_locked_user_with_memberships_never_changes(
        input in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
        first in (arb_team(), arb_source()),
    ) {
        let input = UserInput { locked: true, active: true, ..input };
        let mut current = current;
        current.insert(MembershipRow { team: first.0, source: first.1, via: String::new() });
        // Teams of the user's rows exist: the store deletes the memberships of a team removed
        // from the config (that case is `a_locked_user_leaves_a_team_removed_from_the_config`).
        let mut policy = policy;
        policy.known_teams.extend(current.iter().map(|r| r.team.clone()));
        let target = reconcile(&input, &policy, &current);
        prop_assert_eq!(diff(&current, &target.rows), Plan::default());
    }

    #[test]
    fn default_teams_appear_only_when_nothing_else_maps(
        input in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
    ) {
        let input = UserInput { active: true, locked: false, ..input };
        let target = reconcile(&input, &policy, &current);
        let defaults = rows_of(&target.rows, Source::Default);
        let others = target.rows.len() - defaults.len();
        let known_defaults: BTreeSet<TeamId> = policy
            .teams_without_groups
            .iter()
            .filter(|t| policy.known_teams.contains(*t))
            .cloned()
            .collect();
        if others > 0 {
            prop_assert!(defaults.is_empty(), "defaults beside other rows: {:?}", target.rows);
        } else {
            let given: BTreeSet<TeamId> = defaults.iter().map(|r| r.team.clone()).collect();
            prop_assert_eq!(given, known_defaults, "nothing mapped, so the defaults are given");
            prop_assert!(defaults.iter().all(|r| r.via.is_empty()));
        }
    }

    #[test]
    fn every_row_is_for_a_known_team(
        input in arb_input(),
        policy in arb_policy(),
        current in arb_current(),
    ) {
        let target = reconcile(&input, &policy, &current);
        for r in &target.rows {
            prop_assert!(policy.known_teams.contains(&r.team), "{:?} is not a known team", r.team);
        }
    }
}

/// A policy with `entra` groups g-admins -> admins, g-view -> viewers, the default team
/// `everyone`, and `retired` no longer in the config though g-old still maps to it.
fn example_policy() -> Policy {
    let mut mappings = MappingTable::default();
    mappings.insert(provider("entra"), "g-admins", team("admins"));
    mappings.insert(provider("entra"), "g-view", team("viewers"));
    mappings.insert(provider("entra"), "g-old", team("retired"));
    Policy {
        mappings,
        known_teams: ["admins", "viewers", "everyone"].map(team).into(),
        teams_without_groups: vec![team("everyone")],
    }
}

fn signed_in_with(groups: &[&str]) -> UserInput {
    UserInput {
        provider: provider("entra"),
        claims_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        scim_groups: None,
        config_teams: Vec::new(),
        active: true,
        locked: false,
    }
}

#[test]
fn a_user_whose_groups_map_to_nothing_gets_the_default_teams() {
    let target = reconcile(
        &signed_in_with(&["g-unknown"]),
        &example_policy(),
        &BTreeSet::new(),
    );
    assert_eq!(
        target.rows,
        [row("everyone", Source::Default, "")].into(),
        "the default team, and nothing else"
    );
    assert_eq!(target.unmapped_groups, ["g-unknown".to_owned()].into());
}

#[test]
fn a_mapped_group_grants_its_team_and_no_default() {
    let target = reconcile(
        &signed_in_with(&["g-admins", "g-unknown"]),
        &example_policy(),
        &BTreeSet::new(),
    );
    assert_eq!(
        target.rows,
        [row("admins", Source::Claims, "g-admins")].into()
    );
}

#[test]
fn group_keys_match_whatever_their_case_and_surrounding_spaces() {
    let target = reconcile(
        &signed_in_with(&[" G-Admins ", "G-VIEW"]),
        &example_policy(),
        &BTreeSet::new(),
    );
    assert_eq!(
        target.rows,
        [
            row("admins", Source::Claims, "g-admins"),
            row("viewers", Source::Claims, "g-view"),
        ]
        .into()
    );
}

#[test]
fn a_group_mapped_only_to_a_team_no_longer_in_the_config_grants_nothing() {
    let target = reconcile(
        &signed_in_with(&["g-old"]),
        &example_policy(),
        &BTreeSet::new(),
    );
    assert_eq!(target.rows, [row("everyone", Source::Default, "")].into());
    assert!(target.unmapped_groups.contains("g-old"));
}

#[test]
fn a_failed_group_lookup_keeps_the_teams_of_the_last_login() {
    let current = [row("admins", Source::Claims, "g-admins")].into();
    let unknown = UserInput {
        claims_groups: None,
        ..signed_in_with(&[])
    };
    let target = reconcile(&unknown, &example_policy(), &current);
    assert_eq!(target.rows, current, "unknown is not read as \"no groups\"");
}

#[test]
fn a_login_does_not_remove_teams_granted_over_scim() {
    let current = [row("viewers", Source::Scim, "g-view")].into();
    let input = UserInput {
        scim_groups: Some(vec!["g-view".into()]),
        ..signed_in_with(&["g-admins"])
    };
    let target = reconcile(&input, &example_policy(), &current);
    let plan = diff(&current, &target.rows);
    assert!(plan.remove.is_empty(), "{plan:?}");
    assert_eq!(plan.add, [row("admins", Source::Claims, "g-admins")]);
}

#[test]
fn a_config_member_holds_the_team_without_any_group() {
    let input = UserInput {
        config_teams: vec![team("viewers"), team("retired")],
        ..signed_in_with(&[])
    };
    let target = reconcile(&input, &example_policy(), &BTreeSet::new());
    assert_eq!(target.rows, [row("viewers", Source::Config, "")].into());
}

#[test]
fn a_deactivated_user_loses_every_membership() {
    let current = [
        row("admins", Source::Claims, "g-admins"),
        row("viewers", Source::Scim, "g-view"),
        row("everyone", Source::Config, ""),
    ]
    .into();
    let input = UserInput {
        active: false,
        ..signed_in_with(&["g-admins"])
    };
    let target = reconcile(&input, &example_policy(), &current);
    assert!(target.rows.is_empty());
    assert_eq!(diff(&current, &target.rows).remove.len(), 3);
}

#[test]
fn a_locked_user_keeps_their_teams_when_their_groups_change() {
    let current = [row("admins", Source::Claims, "g-admins")].into();
    let input = UserInput {
        locked: true,
        ..signed_in_with(&["g-view"])
    };
    let target = reconcile(&input, &example_policy(), &current);
    assert!(diff(&current, &target.rows).is_empty());
}

#[test]
fn a_locked_users_first_login_still_gives_their_mapped_teams() {
    let input = UserInput {
        locked: true,
        ..signed_in_with(&["g-admins"])
    };
    let target = reconcile(&input, &example_policy(), &BTreeSet::new());
    assert_eq!(
        target.rows,
        [row("admins", Source::Claims, "g-admins")].into()
    );
}

#[test]
fn a_locked_user_leaves_a_team_removed_from_the_config() {
    // `plan` shows what a new config does to a locked user: the store drops the memberships
    // of a removed team, so reconcile must not promise to keep them.
    let current = [
        row("admins", Source::Claims, "g-admins"),
        row("retired", Source::Claims, "g-old"),
    ]
    .into();
    let input = UserInput {
        locked: true,
        ..signed_in_with(&[])
    };
    let target = reconcile(&input, &example_policy(), &current);
    assert_eq!(
        target.rows,
        [row("admins", Source::Claims, "g-admins")].into()
    );
}
