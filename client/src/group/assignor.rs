//! Client-side partition assignors, run by the group leader: "range" and
//! "roundrobin", with Kafka's Java semantics so mixed groups agree.
//!
//! Pure functions: members and partition counts in, assignment out. Members
//! are ordered as Java's `MemberInfo` orders them (static members by
//! `group.instance.id` first, then dynamic ones by member id), so the result
//! is deterministic for a given input.

use std::collections::{BTreeMap, BTreeSet};

use super::protocol::TopicPartitions;

/// One member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: Vec<String>,
}

impl MemberSubscription {
    /// Java's `MemberInfo` order: static members first (by instance id), then member id.
    fn order_key(&self) -> (bool, &str, &str) {
        (
            self.group_instance_id.is_none(),
            self.group_instance_id.as_deref().unwrap_or(""),
            &self.member_id,
        )
    }
}

/// A partition assignment strategy, named as in Kafka's `partition.assignment.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Per topic: contiguous ranges, the first members get one extra.
    Range,
    /// All partitions dealt out in turn to the members subscribed to each topic.
    RoundRobin,
}

impl Assignor {
    /// The protocol name sent in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
        }
    }

    /// Parses a protocol name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            _ => None,
        }
    }

    /// Assigns the partitions of `partitions` (topic -> partition count) to
    /// `members`. Topics nobody subscribes to, or missing from `partitions`,
    /// are skipped. Every member gets an entry, possibly empty.
    pub fn assign(
        self,
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, TopicPartitions> {
        let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
        sorted.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let mut out: BTreeMap<String, TopicPartitions> = members
            .iter()
            .map(|m| (m.member_id.clone(), TopicPartitions::new()))
            .collect();
        match self {
            Assignor::Range => range(&sorted, partitions, &mut out),
            Assignor::RoundRobin => round_robin(&sorted, partitions, &mut out),
        }
        for topics in out.values_mut() {
            topics.retain(|_, ps| !ps.is_empty());
        }
        out
    }
}

fn subscribes(m: &MemberSubscription, topic: &str) -> bool {
    m.topics.iter().any(|t| t == topic)
}

fn range(
    sorted: &[&MemberSubscription],
    partitions: &BTreeMap<String, i32>,
    out: &mut BTreeMap<String, TopicPartitions>,
) {
    for (topic, &count) in partitions {
        let consumers: Vec<&&MemberSubscription> =
            sorted.iter().filter(|m| subscribes(m, topic)).collect();
        if consumers.is_empty() || count <= 0 {
            continue;
        }
        let n = consumers.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, m) in consumers.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            let slot = out.entry(m.member_id.clone()).or_default();
            slot.entry(topic.clone())
                .or_default()
                .extend(start..start + len);
        }
    }
}

fn round_robin(
    sorted: &[&MemberSubscription],
    partitions: &BTreeMap<String, i32>,
    out: &mut BTreeMap<String, TopicPartitions>,
) {
    if sorted.is_empty() {
        return;
    }
    let subscribed: BTreeSet<&str> = sorted
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    let mut next = 0usize;
    for (topic, &count) in partitions {
        if !subscribed.contains(topic.as_str()) {
            continue;
        }
        for p in 0..count.max(0) {
            // Someone subscribes to `topic`, so this finds a member within one lap.
            while !subscribes(sorted[next % sorted.len()], topic) {
                next += 1;
            }
            let m = sorted[next % sorted.len()];
            next += 1;
            let slot = out.entry(m.member_id.clone()).or_default();
            slot.entry(topic.clone()).or_default().push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.to_owned(),
            group_instance_id: None,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    fn counts(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    /// Every partition of every subscribed topic goes to exactly one member,
    /// and only to a member subscribed to its topic.
    fn check_exactly_once(
        members: &[MemberSubscription],
        partitions: &BTreeMap<String, i32>,
        result: &BTreeMap<String, TopicPartitions>,
    ) {
        let mut seen = BTreeMap::new();
        for (member, topics) in result {
            let m = members.iter().find(|m| &m.member_id == member).unwrap();
            for (topic, ps) in topics {
                assert!(subscribes(m, topic), "{member} got unsubscribed {topic}");
                for p in ps {
                    assert!(
                        seen.insert((topic.clone(), *p), member.clone()).is_none(),
                        "{topic}-{p} assigned twice"
                    );
                }
            }
        }
        for (topic, &n) in partitions {
            if members.iter().any(|m| subscribes(m, topic)) {
                for p in 0..n {
                    assert!(
                        seen.contains_key(&(topic.clone(), p)),
                        "{topic}-{p} unassigned"
                    );
                }
            }
        }
    }

    fn sizes(result: &BTreeMap<String, TopicPartitions>) -> Vec<usize> {
        result
            .values()
            .map(|t| t.values().map(Vec::len).sum())
            .collect()
    }

    #[test]
    fn range_matches_kafka_example() {
        // Kafka's RangeAssignor javadoc: C0, C1; t0, t1 with 3 partitions each.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let parts = counts(&[("t0", 3), ("t1", 3)]);
        let r = Assignor::Range.assign(&members, &parts);
        assert_eq!(r["C0"]["t0"], vec![0, 1]);
        assert_eq!(r["C0"]["t1"], vec![0, 1]);
        assert_eq!(r["C1"]["t0"], vec![2]);
        assert_eq!(r["C1"]["t1"], vec![2]);
        check_exactly_once(&members, &parts, &r);
    }

    #[test]
    fn roundrobin_matches_kafka_example() {
        // Kafka's RoundRobinAssignor javadoc: same input, interleaved output.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let parts = counts(&[("t0", 3), ("t1", 3)]);
        let r = Assignor::RoundRobin.assign(&members, &parts);
        assert_eq!(r["C0"]["t0"], vec![0, 2]);
        assert_eq!(r["C0"]["t1"], vec![1]);
        assert_eq!(r["C1"]["t0"], vec![1]);
        assert_eq!(r["C1"]["t1"], vec![0, 2]);
        check_exactly_once(&members, &parts, &r);
    }

    #[test]
    fn roundrobin_skips_members_not_subscribed() {
        // Javadoc's second example: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2].
        let members = [
            member("C0", &["t0"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t0", "t1", "t2"]),
        ];
        let parts = counts(&[("t0", 1), ("t1", 2), ("t2", 3)]);
        let r = Assignor::RoundRobin.assign(&members, &parts);
        assert_eq!(r["C0"]["t0"], vec![0]);
        assert_eq!(r["C1"]["t1"], vec![0]);
        assert_eq!(r["C2"]["t1"], vec![1]);
        assert_eq!(r["C2"]["t2"], vec![0, 1, 2]);
        check_exactly_once(&members, &parts, &r);
    }

    #[test]
    fn balanced_and_exactly_once_over_many_shapes() {
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            for n_members in 1..=7 {
                for n_parts in 0..=20 {
                    let members: Vec<_> = (0..n_members)
                        .map(|i| member(&format!("m-{i:02}"), &["t"]))
                        .collect();
                    let parts = counts(&[("t", n_parts), ("other", 4)]);
                    let r = assignor.assign(&members, &parts);
                    check_exactly_once(&members, &parts, &r);
                    assert_eq!(r.len(), members.len(), "every member gets an entry");
                    let s = sizes(&r);
                    let (min, max) = (s.iter().min().unwrap(), s.iter().max().unwrap());
                    assert!(max - min <= 1, "{assignor:?} {n_members}x{n_parts}: {s:?}");
                }
            }
        }
    }

    #[test]
    fn roundrobin_is_balanced_across_topics_with_equal_subscriptions() {
        let members: Vec<_> = (0..3)
            .map(|i| member(&format!("m{i}"), &["a", "b", "c"]))
            .collect();
        let parts = counts(&[("a", 1), ("b", 1), ("c", 1)]);
        let r = Assignor::RoundRobin.assign(&members, &parts);
        assert_eq!(sizes(&r), vec![1, 1, 1]);
        // Range puts all three on the first member: Kafka's known range skew.
        let r = Assignor::Range.assign(&members, &parts);
        assert_eq!(sizes(&r), vec![3, 0, 0]);
    }

    #[test]
    fn deterministic_regardless_of_member_order() {
        let mut members: Vec<_> = (0..5)
            .map(|i| member(&format!("m{i}"), &["a", "b"]))
            .collect();
        let parts = counts(&[("a", 7), ("b", 3)]);
        for assignor in [Assignor::Range, Assignor::RoundRobin] {
            let first = assignor.assign(&members, &parts);
            members.reverse();
            assert_eq!(assignor.assign(&members, &parts), first);
            members.rotate_left(2);
            assert_eq!(assignor.assign(&members, &parts), first);
        }
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        let mut a = member("zzz", &["t"]);
        a.group_instance_id = Some("instance-1".into());
        let b = member("aaa", &["t"]);
        let r = Assignor::Range.assign(&[b, a], &counts(&[("t", 3)]));
        assert_eq!(r["zzz"]["t"], vec![0, 1]);
        assert_eq!(r["aaa"]["t"], vec![2]);
    }

    #[test]
    fn names_round_trip() {
        for a in [Assignor::Range, Assignor::RoundRobin] {
            assert_eq!(Assignor::from_name(a.name()), Some(a));
        }
        assert_eq!(Assignor::from_name("sticky"), None);
    }
}
