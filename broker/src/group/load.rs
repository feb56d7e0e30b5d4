//! Which `__consumer_offsets` partitions this node coordinates the groups of.
//!
//! A group's coordinator is the leader of its `__consumer_offsets` partition.
//! Leadership is learnt from the replicas (the metadata image applied by the
//! fetcher task); this table turns each partition's role into a load state:
//! a partition this node starts to lead (or leads again under a new leader
//! epoch) is replayed before its groups are served, and the groups of a
//! partition it stops leading are dropped from memory, so that their members
//! are told NOT_COORDINATOR and look the coordinator up again.

use std::collections::HashMap;

use kafka_protocol::ResponseError;

/// Where the groups of one `__consumer_offsets` partition stand on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadState {
    /// Another node (or none) leads the partition.
    NotLeader,
    /// This node leads it under `epoch` and is replaying it.
    Loading { epoch: i32 },
    /// This node leads it under `epoch` and serves its groups.
    Loaded { epoch: i32 },
}

impl LoadState {
    /// The error a group API answers for a group of this partition, if any.
    pub fn error(self) -> Option<ResponseError> {
        match self {
            LoadState::NotLeader => Some(ResponseError::NotCoordinator),
            LoadState::Loading { .. } => Some(ResponseError::CoordinatorLoadInProgress),
            LoadState::Loaded { .. } => None,
        }
    }
}

/// What the coordinator must do after a partition's role was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    /// Drop the partition's groups from memory.
    pub unload: bool,
    /// Replay the partition, then call [`Loads::finish`] with this epoch.
    pub load: Option<i32>,
}

/// The load state of every `__consumer_offsets` partition (absent: NotLeader).
#[derive(Debug, Default)]
pub struct Loads {
    states: HashMap<i32, LoadState>,
}

impl Loads {
    pub fn state(&self, partition: i32) -> LoadState {
        self.states
            .get(&partition)
            .copied()
            .unwrap_or(LoadState::NotLeader)
    }

    /// Records that this node leads `partition` under `leading` (Some epoch)
    /// or does not lead it (None), and says what that requires.
    pub fn observe(&mut self, partition: i32, leading: Option<i32>) -> Step {
        let current = self.state(partition);
        match (current, leading) {
            (LoadState::NotLeader, None) => Step::default(),
            (LoadState::Loading { epoch } | LoadState::Loaded { epoch }, Some(e)) if epoch == e => {
                Step::default()
            }
            (_, Some(epoch)) => {
                self.states.insert(partition, LoadState::Loading { epoch });
                // A new epoch means another leader may have written in
                // between: what is in memory is stale, replay from scratch.
                Step {
                    unload: current != LoadState::NotLeader,
                    load: Some(epoch),
                }
            }
            (_, None) => {
                self.states.remove(&partition);
                Step {
                    unload: true,
                    load: None,
                }
            }
        }
    }

    /// Whether [`Self::observe`] with the same arguments would do nothing.
    pub fn settled(&self, partition: i32, leading: Option<i32>) -> bool {
        match (self.state(partition), leading) {
            (LoadState::NotLeader, None) => true,
            (LoadState::Loading { epoch } | LoadState::Loaded { epoch }, Some(e)) => epoch == e,
            _ => false,
        }
    }

    /// Marks a replay under `epoch` complete. False when leadership moved on
    /// meanwhile: the replayed records must then be discarded.
    pub fn finish(&mut self, partition: i32, epoch: i32) -> bool {
        if self.state(partition) != (LoadState::Loading { epoch }) {
            return false;
        }
        self.states.insert(partition, LoadState::Loaded { epoch });
        true
    }

    /// A replay under `epoch` failed: forget it, so the next observation of
    /// the role starts it again.
    pub fn fail(&mut self, partition: i32, epoch: i32) {
        if self.state(partition) == (LoadState::Loading { epoch }) {
            self.states.remove(&partition);
        }
    }

    pub fn is_loaded(&self, partition: i32) -> bool {
        matches!(self.state(partition), LoadState::Loaded { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn becoming_leader_loads_then_serves() {
        let mut loads = Loads::default();
        assert_eq!(loads.state(3).error(), Some(ResponseError::NotCoordinator));
        let step = loads.observe(3, Some(5));
        assert_eq!(
            step,
            Step {
                unload: false,
                load: Some(5)
            }
        );
        assert_eq!(
            loads.state(3).error(),
            Some(ResponseError::CoordinatorLoadInProgress)
        );
        // Seeing the same role again starts nothing new.
        assert!(loads.settled(3, Some(5)));
        assert!(!loads.settled(3, Some(6)));
        assert!(!loads.settled(3, None));
        assert_eq!(loads.observe(3, Some(5)), Step::default());
        assert!(loads.finish(3, 5));
        assert_eq!(loads.state(3), LoadState::Loaded { epoch: 5 });
        assert_eq!(loads.state(3).error(), None);
        assert_eq!(loads.observe(3, Some(5)), Step::default());
        assert!(!loads.is_loaded(4));
    }

    #[test]
    fn losing_leadership_unloads() {
        let mut loads = Loads::default();
        loads.observe(0, Some(1));
        loads.finish(0, 1);
        assert_eq!(
            loads.observe(0, None),
            Step {
                unload: true,
                load: None
            }
        );
        assert_eq!(loads.state(0), LoadState::NotLeader);
        assert_eq!(loads.observe(0, None), Step::default());
    }

    #[test]
    fn a_new_epoch_reloads_and_a_stale_replay_is_discarded() {
        let mut loads = Loads::default();
        loads.observe(0, Some(1));
        // Leadership moved away and back before the first replay finished.
        assert_eq!(
            loads.observe(0, Some(3)),
            Step {
                unload: true,
                load: Some(3)
            }
        );
        assert!(!loads.finish(0, 1));
        assert_eq!(loads.state(0), LoadState::Loading { epoch: 3 });
        assert!(loads.finish(0, 3));
        assert_eq!(
            loads.observe(0, Some(4)),
            Step {
                unload: true,
                load: Some(4)
            }
        );
        assert_eq!(loads.state(0), LoadState::Loading { epoch: 4 });
    }

    #[test]
    fn a_failed_replay_is_retried_on_the_next_observation() {
        let mut loads = Loads::default();
        loads.observe(2, Some(7));
        loads.fail(2, 7);
        assert_eq!(loads.state(2), LoadState::NotLeader);
        assert_eq!(loads.observe(2, Some(7)).load, Some(7));
        // A failure of a superseded replay changes nothing.
        loads.fail(2, 6);
        assert_eq!(loads.state(2), LoadState::Loading { epoch: 7 });
    }
}
