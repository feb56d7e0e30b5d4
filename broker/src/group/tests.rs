//! State-machine tests for classic groups: time is passed in, answers are
//! read from the members' channels.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::classic::{Group, GroupConfig, GroupState, JoinOutcome, JoinRequest, SyncOutcome};
use super::member::{JoinResult, SyncResult};

const CFG: GroupConfig = GroupConfig {
    initial_rebalance_delay_ms: 0,
    migration: super::mixed::MigrationPolicy::Bidirectional,
    max_size: 10,
};

fn req(member: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: true,
    }
}

fn now(o: JoinOutcome) -> JoinResult {
    match o {
        JoinOutcome::Now(r) => r,
        JoinOutcome::Wait(mut rx) => rx.try_recv().expect("join should have completed"),
    }
}

fn waiting(o: JoinOutcome) -> tokio::sync::oneshot::Receiver<JoinResult> {
    match o {
        JoinOutcome::Wait(rx) => rx,
        JoinOutcome::Now(r) => panic!("expected to wait, got {r:?}"),
    }
}

/// Joins a new member through the MEMBER_ID_REQUIRED round trip.
fn join_new(g: &mut Group, t: i64) -> JoinOutcome {
    let first = now(g.join(req("", None), t, CFG));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    g.join(req(&first.member_id, None), t, CFG)
}

fn sync(
    g: &mut Group,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    t: i64,
) -> SyncOutcome {
    g.sync(member, None, generation, assignments, t, CFG)
}

fn sync_now(o: SyncOutcome) -> SyncResult {
    match o {
        SyncOutcome::Now(r) => r,
        SyncOutcome::Wait(mut rx) => rx.try_recv().expect("sync should have completed"),
    }
}

#[test]
fn one_member_joins_syncs_and_heartbeats() {
    let mut g = Group::new("g");
    let r = now(join_new(&mut g, 0));
    assert_eq!((r.error, r.generation), (0, 1));
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
    let s = sync_now(sync(
        &mut g,
        &r.member_id,
        1,
        vec![(r.member_id.clone(), Bytes::from_static(b"a0"))],
        1,
    ));
    assert_eq!(s.assignment.as_ref(), b"a0");
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat(&r.member_id, None, 1, 2), Ok(()));
    assert_eq!(
        g.heartbeat(&r.member_id, None, 0, 2),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        g.heartbeat("nobody", None, 1, 2),
        Err(ResponseError::UnknownMemberId)
    );
}

/// Two members, stable at generation 2 with assignments "pa" and "pb"; returns their ids.
fn stable_pair(g: &mut Group) -> (String, String) {
    let a = now(join_new(g, 0));
    sync_now(sync(g, &a.member_id, 1, vec![], 0));
    let mut b_rx = waiting(join_new(g, 10));
    now(g.join(req(&a.member_id, None), 12, CFG));
    let b = b_rx.try_recv().unwrap();
    let b_sync = sync(g, &b.member_id, 2, vec![], 13);
    let assignments = vec![
        (a.member_id.clone(), Bytes::from_static(b"pa")),
        (b.member_id.clone(), Bytes::from_static(b"pb")),
    ];
    sync_now(sync(g, &a.member_id, 2, assignments, 14));
    sync_now(b_sync);
    assert_eq!(g.state, GroupState::Stable);
    (a.member_id, b.member_id)
}

#[test]
fn a_leader_rejoining_a_stable_group_with_the_same_assignment_keeps_the_generation() {
    let mut g = Group::new("g");
    let (a, b) = stable_pair(&mut g);
    let again = now(g.join(req(&a, None), 20, CFG));
    assert_eq!((again.error, again.generation), (0, 2));
    assert_eq!(again.members.len(), 2, "the leader gets the member list");
    assert_eq!(g.state, GroupState::Stable);
    let same = vec![
        (a.clone(), Bytes::from_static(b"pa")),
        (b.clone(), Bytes::from_static(b"pb")),
    ];
    let s = sync_now(sync(&mut g, &a, 2, same, 21));
    assert_eq!((s.error, s.assignment.as_ref()), (0, &b"pa"[..]));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat(&b, None, 2, 22), Ok(()));
}

#[test]
fn a_leader_that_assigns_anew_in_a_stable_group_starts_a_rebalance() {
    let mut g = Group::new("g");
    let (a, b) = stable_pair(&mut g);
    now(g.join(req(&a, None), 20, CFG));
    let moved = vec![
        (a.clone(), Bytes::from_static(b"pa+new")),
        (b.clone(), Bytes::from_static(b"pb")),
    ];
    let s = sync_now(sync(&mut g, &a, 2, moved, 21));
    assert_eq!(s.error, ResponseError::RebalanceInProgress.code());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&b, None, 2, 22),
        Err(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn second_member_triggers_rebalance_and_both_get_assignments() {
    let mut g = Group::new("g");
    let a = now(join_new(&mut g, 0));
    sync_now(sync(&mut g, &a.member_id, 1, vec![], 0));
    let mut b_rx = waiting(join_new(&mut g, 10));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a.member_id, None, 1, 11),
        Err(ResponseError::RebalanceInProgress)
    );
    // The old member rejoins: the join completes for both.
    let a2 = now(g.join(req(&a.member_id, None), 12, CFG));
    let b = b_rx.try_recv().unwrap();
    assert_eq!((a2.generation, b.generation), (2, 2));
    assert_eq!(a2.leader, a.member_id, "the oldest member stays leader");
    assert_eq!(a2.members.len(), 2);
    assert!(b.members.is_empty(), "only the leader sees the member list");
    let mut b_sync = match sync(&mut g, &b.member_id, 2, vec![], 13) {
        SyncOutcome::Wait(rx) => rx,
        SyncOutcome::Now(r) => panic!("follower should wait for the leader: {r:?}"),
    };
    let assignments = vec![
        (a.member_id.clone(), Bytes::from_static(b"pa")),
        (b.member_id.clone(), Bytes::from_static(b"pb")),
    ];
    assert_eq!(
        sync_now(sync(&mut g, &a.member_id, 2, assignments, 14))
            .assignment
            .as_ref(),
        b"pa"
    );
    assert_eq!(b_sync.try_recv().unwrap().assignment.as_ref(), b"pb");
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut g = Group::new("g");
    let a = now(join_new(&mut g, 0));
    sync_now(sync(&mut g, &a.member_id, 1, vec![], 0));
    let mut b_rx = waiting(join_new(&mut g, 10));
    // `a` keeps heartbeating (and is told to rejoin) but never does.
    for t in [9_000, 18_000, 27_000] {
        assert_eq!(
            g.heartbeat(&a.member_id, None, 1, t),
            Err(ResponseError::RebalanceInProgress)
        );
        g.tick(t, CFG);
        assert_eq!(g.state, GroupState::PreparingRebalance);
    }
    g.tick(10 + 30_000, CFG);
    let b = b_rx.try_recv().unwrap();
    assert_eq!(b.generation, 2);
    assert_eq!(b.leader, b.member_id);
    assert!(!g.members.contains_key(&a.member_id));
}

#[test]
fn expired_session_and_leave_rebalance_or_empty_the_group() {
    let mut g = Group::new("g");
    let a = now(join_new(&mut g, 0));
    sync_now(sync(&mut g, &a.member_id, 1, vec![], 0));
    assert!(
        g.tick(10_001, CFG),
        "a silent member expires after its session timeout"
    );
    assert_eq!(g.state, GroupState::Empty);
    let b = now(join_new(&mut g, 20_000));
    sync_now(sync(&mut g, &b.member_id, b.generation, vec![], 20_000));
    assert_eq!(g.leave(&b.member_id, None, 20_001, CFG), Ok(()));
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(
        g.protocol_type.as_deref(),
        Some("consumer"),
        "kept for tools that list consumer groups"
    );
    assert_eq!(
        g.leave(&b.member_id, None, 20_002, CFG),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn static_member_restart_keeps_assignment_without_rebalance() {
    let mut g = Group::new("g");
    let a = now(g.join(req("", Some("i1")), 0, CFG));
    sync_now(sync(
        &mut g,
        &a.member_id,
        1,
        vec![(a.member_id.clone(), Bytes::from_static(b"x"))],
        0,
    ));
    // Same instance id, new process (empty member id): no rebalance.
    let a2 = now(g.join(req("", Some("i1")), 5, CFG));
    assert_eq!(a2.error, 0);
    assert_eq!(a2.generation, 1);
    assert_ne!(a2.member_id, a.member_id);
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(
        sync_now(g.sync(&a2.member_id, Some("i1"), 1, vec![], 6, CFG))
            .assignment
            .as_ref(),
        b"x"
    );
    // The old process is fenced.
    assert_eq!(
        g.heartbeat(&a.member_id, Some("i1"), 1, 7),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        g.heartbeat(&a2.member_id, Some("i2"), 1, 7),
        Err(ResponseError::FencedInstanceId)
    );
}

#[test]
fn static_member_restart_with_new_metadata_keeps_the_generation() {
    let mut g = Group::new("g");
    let a = now(g.join(req("", Some("i1")), 0, CFG));
    sync_now(sync(&mut g, &a.member_id, 1, vec![], 0));
    let mut again = req("", Some("i1"));
    again.protocols = vec![(
        "range".into(),
        Bytes::from_static(b"fresh bytes of a new process"),
    )];
    let a2 = now(g.join(again, 5, CFG));
    assert_eq!((a2.error, a2.generation), (0, 1));
    assert_eq!(g.state, GroupState::Stable);
    // A protocol the group does not share is refused, and the group stays as it was.
    let mut other = req("", Some("i1"));
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(
        now(g.join(other, 6, CFG)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    assert_eq!((g.state, g.generation), (GroupState::Stable, 1));
}

#[test]
fn incompatible_protocols_and_unknown_members_are_refused() {
    let mut g = Group::new("g");
    now(join_new(&mut g, 0));
    let mut other = req("", None);
    other.protocols = vec![("roundrobin".into(), Bytes::new())];
    assert_eq!(
        now(g.join(other, 1, CFG)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    let mut empty = req("", None);
    empty.protocols.clear();
    assert_eq!(
        now(g.join(empty, 1, CFG)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
    assert_eq!(
        now(g.join(req("ghost", None), 1, CFG)).error,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(g.members.len(), 1, "refusals leave the group as it was");
}

#[test]
fn group_max_size_is_enforced() {
    let mut g = Group::new("g");
    let cfg = GroupConfig { max_size: 1, ..CFG };
    let a = now(g.join(
        JoinRequest {
            require_known_member_id: false,
            ..req("", None)
        },
        0,
        cfg,
    ));
    assert_eq!(a.error, 0);
    let b = now(g.join(
        JoinRequest {
            require_known_member_id: false,
            ..req("", None)
        },
        1,
        cfg,
    ));
    assert_eq!(b.error, ResponseError::GroupMaxSizeReached.code());
}

/// `group.consumer.migration.policy=disabled`: neither direction converts,
/// and the classic group's member is untouched by the refused attempt.
#[test]
fn disabled_migration_refuses_both_directions() {
    use super::mixed::{MigrationPolicy, Topics};
    let cfg = GroupConfig {
        migration: MigrationPolicy::Disabled,
        ..CFG
    };
    let topics: Topics = [("t".to_string(), (uuid::Uuid::new_v4(), 2))]
        .into_iter()
        .collect();
    let mut g = Group::new("g");
    let r = now(join_new(&mut g, 0));
    assert_eq!(r.error, 0);
    assert_eq!(
        g.upgrade(&topics, cfg.migration),
        Err(ResponseError::GroupIdNotFound)
    );
    assert_eq!(g.members.len(), 1, "the classic member stays");
    assert!(!g.is_consumer_group());

    // A consumer group refuses a new classic member.
    let mut g = Group::new("h");
    let hb = super::consumer::Heartbeat {
        member_id: "m1".into(),
        epoch: 0,
        instance_id: None,
        rack_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 30_000,
        subscribed: Some(vec!["t".into()]),
        subscribed_regex: None,
        server_assignor: None,
        owned: None,
    };
    let ccfg = super::consumer::ConsumerConfig {
        session_timeout_ms: 45_000,
        max_size: 10,
    };
    g.consumer.heartbeat(hb, &topics, 0, ccfg).unwrap();
    let sub = millrace_client::group::Subscription {
        topics: vec!["t".into()],
        ..Default::default()
    };
    let mut join = req("", None);
    join.protocols = vec![("range".into(), sub.encode().unwrap())];
    let r = g.join_consumer_group(join, &topics, 1, cfg.migration);
    assert_eq!(r.error, ResponseError::InconsistentGroupProtocol.code());
    assert_eq!(g.consumer.members.len(), 1);
}
