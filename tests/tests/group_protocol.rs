//! The classic group protocol on the wire, with exact error codes: bad
//! JoinGroup input, member ids of another group, commits for unknown topics
//! and partitions, OffsetFetch for several groups (v8), DescribeGroups,
//! ListGroups, DeleteGroups, OffsetDelete, and group state across broker
//! restarts. After each piece of bad input the group's healthy member still
//! heartbeats with its generation (no rebalance was triggered).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::{
    FindCoordinatorRequest, JoinGroupResponse, OffsetDeleteRequest, TopicName,
};
use millrace_tests::clients::{create_topic, topic_name};
use millrace_tests::group::BROKER_OVERRIDES;
use millrace_tests::kproto::{
    code, commit, delete_groups, describe, fetch_offsets, gid, heartbeat, join_request, leave,
    list_groups, sb, RawClient, RawMember,
};
use millrace_tests::BrokerProcess;

fn start_broker() -> BrokerProcess {
    BrokerProcess::start(BROKER_OVERRIDES)
}

/// The member is still in its generation, alone, and the group is Stable.
fn assert_healthy(c: &mut RawClient, m: &RawMember) {
    assert_eq!(m.heartbeat(c), code::NONE, "heartbeat of {}", m.member_id);
    let d = describe(c, &m.group);
    assert_eq!(d.error_code, code::NONE);
    assert_eq!(d.group_state.as_str(), "Stable", "{d:?}");
    let ids: Vec<&str> = d.members.iter().map(|x| x.member_id.as_str()).collect();
    assert_eq!(ids, vec![m.member_id.as_str()]);
}

#[test]
fn member_id_required_then_join_and_bad_joins_get_exact_errors_without_a_rebalance() {
    let broker = start_broker();
    let mut c = RawClient::connect(broker.addr());
    let group = topic_name("g-join");

    // v4+: a new member first gets its id with MEMBER_ID_REQUIRED.
    let first: JoinGroupResponse = c.call(5, &join_request(&group, "", None, 10_000, "range"));
    assert_eq!(first.error_code, code::MEMBER_ID_REQUIRED);
    assert!(
        !first.member_id.is_empty(),
        "an id comes with MEMBER_ID_REQUIRED"
    );
    let joined: JoinGroupResponse = c.call(
        5,
        &join_request(&group, first.member_id.as_str(), None, 10_000, "range"),
    );
    assert_eq!(joined.error_code, code::NONE, "{joined:?}");
    assert_eq!(joined.member_id, first.member_id);
    assert_eq!(joined.leader, first.member_id);
    assert_eq!(
        joined.protocol_name.as_ref().map(|s| s.as_str()),
        Some("range")
    );
    let m = RawMember {
        group: group.clone(),
        member_id: joined.member_id.to_string(),
        instance_id: None,
        generation: joined.generation_id,
        leader: joined.leader.to_string(),
    };
    let sync = m.sync(&mut c, Some(Bytes::from_static(b"plan-a")));
    assert_eq!(sync.error_code, code::NONE);
    assert_eq!(&sync.assignment[..], b"plan-a");
    assert_healthy(&mut c, &m);

    let bad = |c: &mut RawClient, what: &str, req, want: i16| {
        let r: JoinGroupResponse = c.call(5, &req);
        assert_eq!(r.error_code, want, "{what}: {r:?}");
    };
    // An empty protocol list, an empty protocol type.
    bad(
        &mut c,
        "empty protocol list",
        join_request(&group, "", None, 10_000, "range").with_protocols(vec![]),
        code::INCONSISTENT_GROUP_PROTOCOL,
    );
    bad(
        &mut c,
        "empty protocol type",
        join_request(&group, "", None, 10_000, "range").with_protocol_type(sb("")),
        code::INCONSISTENT_GROUP_PROTOCOL,
    );
    // A protocol type or a protocol name the group's member does not share.
    bad(
        &mut c,
        "other protocol type",
        join_request(&group, "", None, 10_000, "range").with_protocol_type(sb("connect")),
        code::INCONSISTENT_GROUP_PROTOCOL,
    );
    bad(
        &mut c,
        "unsupported protocol",
        join_request(&group, "", None, 10_000, "no-such-assignor"),
        code::INCONSISTENT_GROUP_PROTOCOL,
    );
    // Session timeouts outside [group.min.session.timeout.ms (1000), max (1800000)].
    for timeout in [0, 10, 999, 1_800_001, i32::MAX] {
        bad(
            &mut c,
            &format!("session timeout {timeout}"),
            join_request(&group, "", None, timeout, "range"),
            code::INVALID_SESSION_TIMEOUT,
        );
        bad(
            &mut c,
            &format!("session timeout {timeout} (new group)"),
            join_request(&topic_name("g-fresh"), "", None, timeout, "range"),
            code::INVALID_SESSION_TIMEOUT,
        );
    }
    // No group id; a member id the group never gave out.
    bad(
        &mut c,
        "empty group id",
        join_request("", "", None, 10_000, "range"),
        code::INVALID_GROUP_ID,
    );
    bad(
        &mut c,
        "made-up member id",
        join_request(&group, "member-made-up", None, 10_000, "range"),
        code::UNKNOWN_MEMBER_ID,
    );
    // None of it touched the member: same generation, still Stable, still alone.
    assert_healthy(&mut c, &m);
    let again = m.sync(&mut c, None);
    assert_eq!(
        (again.error_code, &again.assignment[..]),
        (code::NONE, &b"plan-a"[..])
    );
}

#[test]
fn member_ids_of_another_group_are_unknown_and_both_groups_stay_healthy() {
    let broker = start_broker();
    let mut c = RawClient::connect(broker.addr());
    let (g1, g2) = (topic_name("g-one"), topic_name("g-two"));
    let a = RawMember::join_alone(&mut c, &g1, None, b"a");
    let b = RawMember::join_alone(&mut c, &g2, None, b"b");

    // a's id (and generation) used in g2.
    assert_eq!(
        heartbeat(&mut c, &g2, &a.member_id, None, a.generation),
        code::UNKNOWN_MEMBER_ID
    );
    let foreign = RawMember {
        group: g2.clone(),
        ..a.clone()
    };
    assert_eq!(
        foreign.sync(&mut c, None).error_code,
        code::UNKNOWN_MEMBER_ID
    );
    let r: JoinGroupResponse = c.call(5, &join_request(&g2, &a.member_id, None, 10_000, "range"));
    assert_eq!(
        r.error_code,
        code::UNKNOWN_MEMBER_ID,
        "JoinGroup with a foreign id"
    );
    let topic = topic_name("foreign");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(create_topic(&broker, &topic, 1));
    assert_eq!(
        commit(&mut c, &g2, &a.member_id, a.generation, &[(&topic, 0, 1)]),
        vec![(topic.clone(), 0, code::UNKNOWN_MEMBER_ID)]
    );
    assert_eq!(
        leave(&mut c, &g2, &a.member_id, None),
        (code::NONE, code::UNKNOWN_MEMBER_ID)
    );
    // A simple commit (no member, generation -1) into a group with members.
    assert_eq!(
        commit(&mut c, &g2, "", -1, &[(&topic, 0, 1)]),
        vec![(topic.clone(), 0, code::UNKNOWN_MEMBER_ID)]
    );
    // Right member, wrong generation.
    assert_eq!(
        heartbeat(&mut c, &g1, &a.member_id, None, a.generation + 1),
        code::ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(
            &mut c,
            &g1,
            &a.member_id,
            a.generation - 1,
            &[(&topic, 0, 1)]
        ),
        vec![(topic.clone(), 0, code::ILLEGAL_GENERATION)]
    );
    let fetched = fetch_offsets(&mut c, &[(&g1, None), (&g2, None)]);
    assert!(
        fetched
            .iter()
            .all(|(_, (e, offsets))| *e == 0 && offsets.is_empty()),
        "nothing was committed: {fetched:?}"
    );
    assert_healthy(&mut c, &a);
    assert_healthy(&mut c, &b);
}

#[test]
fn static_member_with_a_wrong_member_id_is_fenced() {
    let broker = start_broker();
    let mut c = RawClient::connect(broker.addr());
    let g = topic_name("g-fence");
    let s = RawMember::join_alone(&mut c, &g, Some("instance-1"), b"s");
    let other = RawMember::join_alone(&mut c, &topic_name("g-other"), Some("instance-2"), b"o");
    // instance-1's id with instance-2's name, in s's group.
    assert_eq!(
        heartbeat(&mut c, &g, &s.member_id, Some("instance-2"), s.generation),
        code::FENCED_INSTANCE_ID
    );
    // The other group's member claiming instance-1 here: not a member at all.
    assert_eq!(
        heartbeat(
            &mut c,
            &g,
            &other.member_id,
            Some("instance-1"),
            s.generation
        ),
        code::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        leave(&mut c, &g, &other.member_id, Some("instance-1")),
        (code::NONE, code::FENCED_INSTANCE_ID)
    );
    assert_healthy(&mut c, &s);
    assert_healthy(&mut c, &other);
}

#[tokio::test]
async fn commits_for_unknown_topics_and_partitions_fail_per_partition_only() {
    let broker = start_broker();
    let topic = topic_name("commit");
    create_topic(&broker, &topic, 2).await;
    let mut c = RawClient::connect(broker.addr());
    let g = topic_name("g-commit");
    let m = RawMember::join_alone(&mut c, &g, None, b"m");
    let missing = topic_name("missing");
    let got = commit(
        &mut c,
        &g,
        &m.member_id,
        m.generation,
        &[
            (&topic, 0, 5),
            (&topic, 1, 7),
            (&topic, 2, 1),
            (&topic, -1, 1),
            (&missing, 0, 3),
        ],
    );
    assert_eq!(
        got,
        vec![
            (topic.clone(), 0, code::NONE),
            (topic.clone(), 1, code::NONE),
            (topic.clone(), 2, code::UNKNOWN_TOPIC_OR_PARTITION),
            (topic.clone(), -1, code::UNKNOWN_TOPIC_OR_PARTITION),
            (missing.clone(), 0, code::UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    // A simple consumer's group (no members) commits with generation -1.
    let simple = topic_name("g-simple");
    assert_eq!(
        commit(&mut c, &simple, "", -1, &[(&topic, 1, 42)]),
        vec![(topic.clone(), 1, code::NONE)]
    );
    // OffsetFetch v8: two groups in one request, one by partitions, one "all".
    let fetched: BTreeMap<String, _> = fetch_offsets(
        &mut c,
        &[(&g, Some(vec![(&topic, vec![0, 1])])), (&simple, None)],
    )
    .into_iter()
    .collect();
    let want_g = BTreeMap::from([
        ((topic.clone(), 0), (5, code::NONE)),
        ((topic.clone(), 1), (7, code::NONE)),
    ]);
    assert_eq!(fetched[&g], (code::NONE, want_g));
    let want_simple = BTreeMap::from([((topic.clone(), 1), (42, code::NONE))]);
    assert_eq!(fetched[&simple], (code::NONE, want_simple));
    // Nothing was stored for the rejected partitions or the missing topic.
    let all = fetch_offsets(&mut c, &[(&g, None)]);
    assert_eq!(
        all[0].1 .1.len(),
        2,
        "only the two good partitions: {all:?}"
    );
    assert_healthy(&mut c, &m);
}

#[tokio::test]
async fn describe_list_delete_groups_and_offset_delete() {
    let broker = start_broker();
    let topic = topic_name("admin");
    create_topic(&broker, &topic, 2).await;
    let mut c = RawClient::connect(broker.addr());
    let live = topic_name("g-live");
    let empty = topic_name("g-empty");
    let m = RawMember::join_alone(&mut c, &live, Some("inst-live"), b"plan");
    assert_eq!(
        commit(&mut c, &empty, "", -1, &[(&topic, 0, 3), (&topic, 1, 4)]),
        vec![(topic.clone(), 0, 0), (topic.clone(), 1, 0)]
    );

    let listed = list_groups(&mut c);
    assert_eq!(
        listed.get(&live).map(String::as_str),
        Some("Stable"),
        "{listed:?}"
    );
    assert_eq!(
        listed.get(&empty).map(String::as_str),
        Some("Empty"),
        "{listed:?}"
    );

    let d = describe(&mut c, &live);
    assert_eq!(
        (
            d.group_state.as_str(),
            d.protocol_type.as_str(),
            d.protocol_data.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), m.member_id);
    assert_eq!(
        d.members[0].group_instance_id.as_ref().map(|s| s.as_str()),
        Some("inst-live")
    );
    assert_eq!(&d.members[0].member_assignment[..], b"plan");
    assert_eq!(describe(&mut c, &empty).group_state.as_str(), "Empty");
    let unknown = describe(&mut c, &topic_name("g-never"));
    assert_eq!(
        (unknown.error_code, unknown.group_state.as_str()),
        (code::NONE, "Dead"),
        "DescribeGroups v5 of an unknown group"
    );

    // OffsetDelete on the empty group: partition 0 goes, partition 1 stays.
    let od = c.call(
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(gid(&empty))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(sb(&topic)))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])]),
    );
    assert_eq!(od.error_code, code::NONE, "{od:?}");
    assert_eq!(od.topics[0].partitions[0].error_code, code::NONE);
    let left = fetch_offsets(&mut c, &[(&empty, Some(vec![(&topic, vec![0, 1])]))]);
    assert_eq!(
        left[0].1 .1.values().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![-1, 4]
    );

    let never = topic_name("g-never");
    assert_eq!(
        delete_groups(&mut c, &[&live, &empty, &never]),
        vec![
            (live.clone(), code::NON_EMPTY_GROUP),
            (empty.clone(), code::NONE),
            (never.clone(), code::GROUP_ID_NOT_FOUND),
        ]
    );
    assert!(!list_groups(&mut c).contains_key(&empty));
    let gone = fetch_offsets(&mut c, &[(&empty, Some(vec![(&topic, vec![1])]))]);
    assert_eq!(
        gone[0].1 .1[&(topic.clone(), 1)].0,
        -1,
        "offsets deleted with the group"
    );
    assert_healthy(&mut c, &m);

    // Once the member leaves, the group can go.
    assert_eq!(
        leave(&mut c, &live, "", Some("inst-live")),
        (code::NONE, code::NONE)
    );
    assert_eq!(describe(&mut c, &live).group_state.as_str(), "Empty");
    assert_eq!(
        delete_groups(&mut c, &[&live]),
        vec![(live.clone(), code::NONE)]
    );
}

#[test]
fn find_coordinator_names_this_broker_for_every_group() {
    let broker = start_broker();
    let mut c = RawClient::connect(broker.addr());
    let keys: Vec<_> = (0..5).map(|i| sb(&format!("g-coord-{i}"))).collect();
    let r = c.call(
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(keys.clone()),
    );
    assert_eq!(r.coordinators.len(), 5);
    for (k, co) in keys.iter().zip(&r.coordinators) {
        assert_eq!(co.key, *k);
        assert_eq!(co.error_code, code::NONE, "{co:?}");
        assert_eq!(
            (co.node_id.0, co.port),
            (1, i32::from(broker.addr().port()))
        );
    }
}

/// Group state (members, generation, assignment) and committed offsets are
/// back after a restart: the member heartbeats in its old generation.
async fn group_state_survives(kill: bool) {
    let mut broker = start_broker();
    let topic = topic_name("persist");
    create_topic(&broker, &topic, 2).await;
    let g = topic_name("g-persist");
    let simple = topic_name("g-persist-simple");
    let m = {
        let mut c = RawClient::connect(broker.addr());
        let m = RawMember::join_alone(&mut c, &g, Some("inst-p"), b"plan-p");
        assert_eq!(
            commit(
                &mut c,
                &g,
                &m.member_id,
                m.generation,
                &[(&topic, 0, 11), (&topic, 1, 12)]
            ),
            vec![(topic.clone(), 0, 0), (topic.clone(), 1, 0)]
        );
        assert_eq!(
            commit(&mut c, &simple, "", -1, &[(&topic, 0, 21)]),
            vec![(topic.clone(), 0, 0)]
        );
        // A second commit overwrites the first: the newest must win after replay.
        assert_eq!(
            commit(&mut c, &simple, "", -1, &[(&topic, 0, 22)]),
            vec![(topic.clone(), 0, 0)]
        );
        m
    };
    if kill {
        broker.kill9();
        broker.start_again();
    } else {
        broker.restart();
    }
    let mut c = RawClient::connect(broker.addr());
    let fetched: BTreeMap<String, _> = fetch_offsets(
        &mut c,
        &[
            (&g, Some(vec![(&topic, vec![0, 1])])),
            (&simple, Some(vec![(&topic, vec![0])])),
        ],
    )
    .into_iter()
    .collect();
    assert_eq!(
        fetched[&g].1.values().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![11, 12]
    );
    assert_eq!(fetched[&simple].1[&(topic.clone(), 0)].0, 22);
    let d = describe(&mut c, &g);
    assert_eq!(d.group_state.as_str(), "Stable", "{d:?}");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), m.member_id);
    assert_eq!(&d.members[0].member_assignment[..], b"plan-p");
    assert_eq!(
        m.heartbeat(&mut c),
        code::NONE,
        "heartbeat in the old generation"
    );
    let s = m.sync(&mut c, None);
    assert_eq!(
        (s.error_code, &s.assignment[..]),
        (code::NONE, &b"plan-p"[..])
    );
    assert_eq!(
        commit(&mut c, &g, &m.member_id, m.generation, &[(&topic, 0, 13)]),
        vec![(topic.clone(), 0, 0)]
    );
    let groups = list_groups(&mut c);
    assert_eq!(groups.get(&simple).map(String::as_str), Some("Empty"));
}

#[tokio::test]
async fn group_state_and_offsets_survive_a_sigterm_restart() {
    group_state_survives(false).await;
}

#[tokio::test]
async fn group_state_and_offsets_survive_kill_9() {
    group_state_survives(true).await;
}

#[test]
fn static_rejoin_with_new_metadata_keeps_the_generation() {
    let broker = start_broker();
    let mut c = RawClient::connect(broker.addr());
    let g = topic_name("g-static-meta");
    let s = RawMember::join_alone(&mut c, &g, Some("inst-m"), b"plan-s");
    // The same instance restarts: no member id, same protocol, new metadata bytes.
    let mut req = join_request(&g, "", Some("inst-m"), 10_000, "range");
    req.protocols[0].metadata = Bytes::from_static(b"new-process-metadata");
    let r: JoinGroupResponse = c.call(5, &req);
    assert_eq!(r.error_code, code::NONE, "{r:?}");
    assert_ne!(r.member_id.as_str(), s.member_id, "a new member id");
    assert_eq!(
        r.generation_id, s.generation,
        "the generation stays (no rebalance)"
    );
    let d = describe(&mut c, &g);
    assert_eq!(d.group_state.as_str(), "Stable");
}
