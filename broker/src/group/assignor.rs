//! Server-side assignors for the KIP-848 consumer protocol: `uniform`
//! (balanced and sticky) and `range` (contiguous ranges per topic).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A partition: (topic id, index).
pub type TopicPartition = (uuid::Uuid, i32);

/// What the assignor needs to know about one member.
pub struct AssignorMember<'a> {
    pub id: &'a str,
    /// Topic ids the member subscribes to (that exist).
    pub topics: BTreeSet<uuid::Uuid>,
    /// The member's current target, kept where balance allows.
    pub current: &'a BTreeSet<TopicPartition>,
}

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

pub fn is_known(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// Computes a target assignment; `partitions` maps each topic id to its partition count.
pub fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<uuid::Uuid, i32>,
) -> HashMap<String, BTreeSet<TopicPartition>> {
    if assignor == RANGE {
        range(members, partitions)
    } else {
        uniform(members, partitions)
    }
}

fn range(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<uuid::Uuid, i32>,
) -> HashMap<String, BTreeSet<TopicPartition>> {
    let mut out: HashMap<String, BTreeSet<TopicPartition>> = members
        .iter()
        .map(|m| (m.id.to_string(), BTreeSet::new()))
        .collect();
    for (topic, &count) in partitions {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort();
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subscribers.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let set = out.entry(m.to_string()).or_default();
            for p in next..next + take {
                set.insert((*topic, p));
            }
            next += take;
        }
    }
    out
}

fn uniform(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<uuid::Uuid, i32>,
) -> HashMap<String, BTreeSet<TopicPartition>> {
    let mut out: HashMap<String, BTreeSet<TopicPartition>> = members
        .iter()
        .map(|m| (m.id.to_string(), BTreeSet::new()))
        .collect();
    let all: Vec<TopicPartition> = partitions
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| (*t, p)))
        .filter(|(t, _)| members.iter().any(|m| m.topics.contains(t)))
        .collect();
    if members.is_empty() {
        return out;
    }
    // Each member keeps up to its fair share of what it already has: `base`
    // partitions, and one more for as many members as the division leaves
    // over, so the result is balanced (sizes differ by at most one).
    let base = all.len() / members.len();
    let mut extra = all.len() % members.len();
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut sorted: Vec<&AssignorMember<'_>> = members.iter().collect();
    sorted.sort_by_key(|m| m.id);
    let keepable = |m: &AssignorMember<'_>, tp: &TopicPartition| {
        m.topics.contains(&tp.0) && partitions.get(&tp.0).is_some_and(|&n| tp.1 < n)
    };
    let mut leftovers: Vec<(&str, TopicPartition)> = Vec::new();
    for m in &sorted {
        let mut mine = m
            .current
            .iter()
            .filter(|tp| keepable(m, tp) && !taken.contains(tp))
            .copied();
        let keep: Vec<TopicPartition> = mine.by_ref().take(base).collect();
        if let Some(next) = mine.next() {
            leftovers.push((m.id, next));
        }
        taken.extend(keep.iter().copied());
        out.entry(m.id.to_string()).or_default().extend(keep);
    }
    for (id, tp) in leftovers {
        if extra > 0 && !taken.contains(&tp) {
            extra -= 1;
            taken.insert(tp);
            out.entry(id.to_string()).or_default().insert(tp);
        }
    }
    for tp in all.into_iter().filter(|tp| !taken.contains(tp)) {
        let target = sorted
            .iter()
            .filter(|m| m.topics.contains(&tp.0))
            .min_by_key(|m| (out.get(m.id).map_or(0, BTreeSet::len), m.id));
        if let Some(m) = target {
            out.entry(m.id.to_string()).or_default().insert(tp);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members<'a>(
        ids: &'a [&'a str],
        topics: &[uuid::Uuid],
        current: &'a BTreeSet<TopicPartition>,
    ) -> Vec<AssignorMember<'a>> {
        ids.iter()
            .map(|id| AssignorMember {
                id,
                topics: topics.iter().copied().collect(),
                current,
            })
            .collect()
    }

    fn check_exactly_once(out: &HashMap<String, BTreeSet<TopicPartition>>, total: usize) {
        let all: Vec<_> = out.values().flatten().collect();
        let unique: BTreeSet<_> = all.iter().collect();
        assert_eq!(all.len(), total);
        assert_eq!(unique.len(), total);
    }

    #[test]
    fn both_assign_every_partition_once_and_balance() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let parts: BTreeMap<_, _> = [(a, 5), (b, 2)].into_iter().collect();
        let none = BTreeSet::new();
        for name in [UNIFORM, RANGE] {
            let out = assign(name, &members(&["m1", "m2", "m3"], &[a, b], &none), &parts);
            check_exactly_once(&out, 7);
            let sizes: Vec<usize> = out.values().map(BTreeSet::len).collect();
            let spread = sizes.iter().max().unwrap() - sizes.iter().min().unwrap();
            assert!(
                spread <= if name == RANGE { 2 } else { 1 },
                "{name}: {sizes:?}"
            );
        }
    }

    #[test]
    fn uniform_is_sticky() {
        let t = uuid::Uuid::new_v4();
        let parts: BTreeMap<_, _> = [(t, 6)].into_iter().collect();
        let none = BTreeSet::new();
        let first = assign(UNIFORM, &members(&["a", "b"], &[t], &none), &parts);
        // A third member joins: a and b keep what they can.
        let ms = vec![
            AssignorMember {
                id: "a",
                topics: [t].into(),
                current: &first["a"],
            },
            AssignorMember {
                id: "b",
                topics: [t].into(),
                current: &first["b"],
            },
            AssignorMember {
                id: "c",
                topics: [t].into(),
                current: &none,
            },
        ];
        let second = assign(UNIFORM, &ms, &parts);
        check_exactly_once(&second, 6);
        assert!(second["a"].is_subset(&first["a"]) && second["b"].is_subset(&first["b"]));
        assert_eq!(second["c"].len(), 2);
    }

    /// 4 partitions held 2+2, a third member joins: 2+1+1, not 2+2+0.
    #[test]
    fn uniform_rebalances_when_the_division_is_uneven() {
        let t = uuid::Uuid::new_v4();
        let parts: BTreeMap<_, _> = [(t, 4)].into_iter().collect();
        let none = BTreeSet::new();
        let first = assign(UNIFORM, &members(&["a", "b"], &[t], &none), &parts);
        assert_eq!((first["a"].len(), first["b"].len()), (2, 2));
        let ms: Vec<AssignorMember<'_>> = [("a", &first["a"]), ("b", &first["b"]), ("c", &none)]
            .into_iter()
            .map(|(id, current)| AssignorMember {
                id,
                topics: [t].into(),
                current,
            })
            .collect();
        let second = assign(UNIFORM, &ms, &parts);
        check_exactly_once(&second, 4);
        let mut sizes: Vec<usize> = second.values().map(BTreeSet::len).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 1, 2]);
        assert!(second["a"].is_subset(&first["a"]) && second["b"].is_subset(&first["b"]));
    }

    #[test]
    fn only_subscribers_get_a_topic() {
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let parts: BTreeMap<_, _> = [(a, 2), (b, 2)].into_iter().collect();
        let none = BTreeSet::new();
        let ms = vec![
            AssignorMember {
                id: "x",
                topics: [a].into(),
                current: &none,
            },
            AssignorMember {
                id: "y",
                topics: [b].into(),
                current: &none,
            },
        ];
        for name in [UNIFORM, RANGE] {
            let out = assign(name, &ms, &parts);
            assert!(out["x"].iter().all(|tp| tp.0 == a) && out["y"].iter().all(|tp| tp.0 == b));
            check_exactly_once(&out, 4);
        }
    }
}
