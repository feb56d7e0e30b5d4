//! A deterministic simulation of the controller's partition state machine
//! (the metadata image) and the replication protocol (the `Partition`s of
//! three brokers over memory logs). One seed drives every choice: which
//! broker crashes, which fetch response is delayed or lost, how far the clock
//! moves. Invariants are checked after every step:
//! - at most one replica ever leads a given leader epoch;
//! - a leader's high watermark never moves back during its leadership;
//! - every record acknowledged to an acks=all producer is in the current
//!   leader's log at its offset, while a member of the ISR survives;
//! - a caught-up follower's log is a byte-identical prefix of the leader's.
//!
//! `SIM_SEED=n` replays one seed; the seed is printed on failure.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bytes::Bytes;
use millrace_storage::testkit::{build_batch, ProducerFields, TestRecord};
use millrace_storage::{LogConfig, MemoryLog};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Partition, Role};
use crate::metadata::{MetadataImage, MetadataRecord, NO_LEADER};

const BROKERS: i32 = 3;
const MIN_ISR: usize = 2;
const LAG_MAX_MS: i64 = 300;
const STEPS: usize = 1500;

/// A fetch response in flight: computed at the leader, applied later.
struct InFlight {
    follower: i32,
    epoch: i32,
    bytes: Bytes,
    hw: i64,
    log_start: i64,
    deliver_at: usize,
}

struct Sim {
    rng: StdRng,
    now: i64,
    step: usize,
    image: MetadataImage,
    nodes: BTreeMap<i32, Option<Partition>>,
    /// Logs of crashed nodes, as the disk keeps them.
    disks: HashMap<i32, Box<dyn millrace_storage::Log>>,
    in_flight: Vec<InFlight>,
    /// Appends waiting for acks=all: (leader, epoch, next offset, payload, offset).
    pending: Vec<(i32, i32, i64, u64, i64)>,
    acked: BTreeMap<i64, u64>,
    next_payload: u64,
    epoch_leaders: HashMap<i32, i32>,
    leader_hw: Option<(i32, i32, i64)>,
}

fn partition(node: i32, log: Box<dyn millrace_storage::Log>) -> Partition {
    Partition::with_log("t", 0, uuid::Uuid::nil(), Path::new("/sim"), log, node)
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut image = MetadataImage::default();
        for id in 1..=BROKERS {
            image = image
                .apply(&MetadataRecord::RegisterBroker {
                    id,
                    incarnation: uuid::Uuid::from_u128(id as u128),
                    host: "sim".into(),
                    port: 1,
                    rack: None,
                })
                .unwrap();
            image = image.apply(&MetadataRecord::UnfenceBroker { id }).unwrap();
        }
        image = image
            .apply(&MetadataRecord::CreateTopic {
                name: "t".into(),
                id: uuid::Uuid::nil(),
                partitions: 1,
                replication_factor: BROKERS as u16,
                configs: BTreeMap::new(),
                assignments: vec![(1..=BROKERS).collect()],
            })
            .unwrap();
        let mut nodes = BTreeMap::new();
        for id in 1..=BROKERS {
            let log = Box::new(MemoryLog::new(LogConfig::default()).unwrap());
            nodes.insert(id, Some(partition(id, log)));
        }
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            now: 1_000,
            step: 0,
            image,
            nodes,
            disks: HashMap::new(),
            in_flight: Vec::new(),
            pending: Vec::new(),
            acked: BTreeMap::new(),
            next_payload: 0,
            epoch_leaders: HashMap::new(),
            leader_hw: None,
        };
        sim.publish();
        sim
    }

    fn state(&self) -> crate::metadata::PartitionImage {
        self.image.topic("t").unwrap().partition(0).unwrap().clone()
    }

    fn node(&self, id: i32) -> Option<&Partition> {
        self.nodes.get(&id).and_then(Option::as_ref)
    }

    /// Every running replica takes the current image (metadata propagation).
    fn publish(&mut self) {
        let state = self.state();
        for p in self.nodes.values().flatten() {
            p.apply(&state, self.now);
        }
    }

    fn propose(&mut self, r: MetadataRecord) {
        if let Ok(next) = self.image.apply(&r) {
            self.image = next;
            self.publish();
        }
    }

    fn leader(&self) -> Option<(i32, &Partition)> {
        let s = self.state();
        self.node(s.leader).map(|p| (s.leader, p))
    }

    fn run(&mut self) {
        for step in 0..STEPS {
            self.step = step;
            self.now += self.rng.random_range(1..40);
            let event = self.rng.random_range(0..100);
            if std::env::var("SIM_TRACE").is_ok() {
                let st = self.state();
                let nodes: Vec<String> = self
                    .nodes
                    .iter()
                    .map(|(id, p)| match p {
                        Some(p) => {
                            let o = p.offsets();
                            format!(
                                "{id}:{:?}/e{}/hw{}/leo{}/le{:?}",
                                p.role(),
                                p.leader_epoch(),
                                o.high_watermark,
                                o.log_end,
                                p.latest_epoch()
                            )
                        }
                        None => format!("{id}:down"),
                    })
                    .collect();
                eprintln!(
                    "step {step} ev {event} leader {} epoch {} isr {:?} | {}",
                    st.leader,
                    st.leader_epoch,
                    st.isr,
                    nodes.join(" ")
                );
            }
            match event {
                0..=24 => self.produce(),
                25..=59 => self.fetch(),
                60..=69 => self.deliver(),
                70..=79 => self.isr_tick(),
                80..=83 => self.crash(),
                84..=89 => self.restart(),
                _ => self.controller_tick(),
            }
            self.acks();
            self.check();
        }
    }

    fn produce(&mut self) {
        let Some((id, p)) = self.leader() else { return };
        let payload = self.next_payload;
        let batch = build_batch(
            &[TestRecord::new(
                None,
                Some(&payload.to_be_bytes()),
                self.now,
            )],
            ProducerFields::default(),
        );
        if let Ok(info) = p.append(&batch, self.now, Some(MIN_ISR)) {
            let epoch = p.leader_epoch();
            self.pending
                .push((id, epoch, info.last_offset + 1, payload, info.first_offset));
        }
        self.next_payload += 1;
    }

    /// A follower fetches; the response is applied now or later (or lost).
    fn fetch(&mut self) {
        let followers: Vec<i32> = self
            .nodes
            .iter()
            .filter_map(|(id, p)| p.as_ref().map(|p| (*id, p)))
            .filter(|(_, p)| matches!(p.role(), Role::Follower { .. }))
            .map(|(id, _)| id)
            .collect();
        if followers.is_empty() {
            return;
        }
        let f = followers[self.rng.random_range(0..followers.len())];
        let Some((_, leader)) = self.leader() else {
            return;
        };
        let follower = self.node(f).unwrap();
        let epoch = follower.leader_epoch();
        if follower.needs_truncation() {
            let last = follower.latest_epoch().unwrap_or(-1);
            if let Ok(answer) = leader.end_offset_for_epoch(last, epoch) {
                let answer = answer.filter(|_| last >= 0);
                let target = follower.truncation_target(answer);
                let _ = follower.truncate_to(target, epoch);
            }
            return;
        }
        let at = follower.offsets().log_end;
        let Ok((bytes, offsets, _)) = leader.replica_fetch(f, at, epoch, 4096, self.now) else {
            return;
        };
        let delay = if self.rng.random_bool(0.7) {
            0
        } else {
            self.rng.random_range(1..50)
        };
        let response = InFlight {
            follower: f,
            epoch,
            bytes,
            hw: offsets.high_watermark,
            log_start: offsets.log_start,
            deliver_at: self.step + delay,
        };
        if self.rng.random_bool(0.05) {
            return; // lost on the wire
        }
        self.in_flight.push(response);
        self.deliver();
    }

    fn deliver(&mut self) {
        let due: Vec<InFlight> = {
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|r| r.deliver_at <= self.step);
            self.in_flight = later;
            due
        };
        for r in due {
            if let Some(p) = self.node(r.follower) {
                // Stale (other epoch) or out-of-order responses are refused.
                let _ = p.append_replicated(&r.bytes, r.hw, r.log_start, r.epoch, self.now);
            }
        }
    }

    fn isr_tick(&mut self) {
        let Some((_, leader)) = self.leader() else {
            return;
        };
        if let Some((isr, leader_epoch, partition_epoch)) = leader.wanted_isr(self.now, LAG_MAX_MS)
        {
            self.propose(MetadataRecord::AlterIsr {
                topic: "t".into(),
                partition: 0,
                leader_epoch,
                partition_epoch,
                isr,
            });
        }
    }

    fn crash(&mut self) {
        let running: Vec<i32> = self
            .nodes
            .iter()
            .filter(|(_, p)| p.is_some())
            .map(|(id, _)| *id)
            .collect();
        if running.len() <= 1 {
            return;
        }
        let id = running[self.rng.random_range(0..running.len())];
        let p = self.nodes.get_mut(&id).unwrap().take().unwrap();
        self.disks.insert(id, p.into_log());
        self.pending.retain(|(leader, ..)| *leader != id);
    }

    /// The controller notices a dead broker (missed heartbeats).
    fn controller_tick(&mut self) {
        let dead: Vec<i32> = self
            .nodes
            .iter()
            .filter(|(id, p)| p.is_none() && !self.image.brokers[*id].fenced)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            self.propose(MetadataRecord::FenceBroker { id });
        }
    }

    fn restart(&mut self) {
        let mut down: Vec<i32> = self.disks.keys().copied().collect();
        down.sort_unstable();
        if down.is_empty() {
            return;
        }
        let id = down[self.rng.random_range(0..down.len())];
        let log = self.disks.remove(&id).unwrap();
        self.nodes.insert(id, Some(partition(id, log)));
        self.propose(MetadataRecord::RegisterBroker {
            id,
            incarnation: uuid::Uuid::from_u128(((self.step as u128) << 8) | id as u128),
            host: "sim".into(),
            port: 1,
            rack: None,
        });
        self.propose(MetadataRecord::UnfenceBroker { id });
        self.publish();
    }

    fn acks(&mut self) {
        let mut still = Vec::new();
        for w in std::mem::take(&mut self.pending) {
            let (leader, epoch, next, payload, offset) = w;
            let Some(p) = self.node(leader) else { continue };
            if p.leader_epoch() != epoch {
                continue;
            }
            match p.acks_all_done(next, MIN_ISR) {
                Ok(true) => {
                    self.acked.insert(offset, payload);
                }
                Ok(false) => still.push(w),
                Err(_) => {}
            }
        }
        self.pending = still;
    }

    fn check(&mut self) {
        let step = self.step;
        for (id, p) in self
            .nodes
            .iter()
            .filter_map(|(id, p)| p.as_ref().map(|p| (*id, p)))
        {
            if p.role() == Role::Leader {
                let e = p.leader_epoch();
                let first = *self.epoch_leaders.entry(e).or_insert(id);
                assert_eq!(first, id, "step {step}: two leaders for epoch {e}");
            }
        }
        let s = self.state();
        if s.leader == NO_LEADER {
            return;
        }
        let Some(hw) = self.node(s.leader).map(|l| l.offsets().high_watermark) else {
            return;
        };
        if self.node(s.leader).unwrap().role() != Role::Leader {
            return;
        }
        if let Some((id, epoch, last)) = self.leader_hw {
            if id == s.leader && epoch == s.leader_epoch {
                assert!(
                    hw >= last,
                    "step {step}: leader HW went back {last} -> {hw}"
                );
            }
        }
        self.leader_hw = Some((s.leader, s.leader_epoch, hw));
        let leader = self.node(s.leader).unwrap();
        let values = values(leader);
        for (offset, payload) in &self.acked {
            assert_eq!(
                values.get(offset),
                Some(payload),
                "step {step}: acknowledged record at {offset} missing on leader {} (epoch {})",
                s.leader,
                s.leader_epoch
            );
        }
        let leader_bytes = leader.read_everything(leader.offsets().log_end).unwrap().0;
        for (id, p) in self
            .nodes
            .iter()
            .filter_map(|(id, p)| p.as_ref().map(|p| (*id, p)))
        {
            if id == s.leader || p.needs_truncation() || !matches!(p.role(), Role::Follower { .. })
            {
                continue;
            }
            // Below its HW a follower holds only committed records, which
            // every ISR member (so the leader) has too.
            let mine = p.read_local(0, usize::MAX / 2).unwrap().0;
            assert!(
                leader_bytes.starts_with(&mine),
                "step {step}: follower {id} up to its HW is not a prefix of leader {}",
                s.leader
            );
        }
    }
}

/// offset -> payload of every record in the leader's log.
fn values(p: &Partition) -> BTreeMap<i64, u64> {
    let end = p.offsets().log_end;
    let mut out = BTreeMap::new();
    let Ok((bytes, _)) = p.read_everything(end) else {
        return out;
    };
    for batch in millrace_storage::batch::BatchIter::new(&bytes) {
        let (_, header) = batch.unwrap();
        let records = millrace_storage::records::BatchRecords::new(header).unwrap();
        for r in records.iter() {
            let r = r.unwrap();
            let v = r.value.unwrap();
            out.insert(r.offset, u64::from_be_bytes(v.try_into().unwrap()));
        }
    }
    out
}

#[test]
fn replication_keeps_acknowledged_records_through_crashes() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED must be a number")],
        Err(_) => (0..std::env::var("SIM_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(30))
            .map(|_| rand::random::<u64>())
            .collect(),
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| {
            let mut sim = Sim::new(seed);
            sim.run();
            (
                sim.acked.len(),
                sim.image
                    .topic("t")
                    .unwrap()
                    .partition(0)
                    .unwrap()
                    .leader_epoch,
            )
        });
        match outcome {
            Ok((acked, epochs)) => {
                assert!(acked > 0, "seed {seed}: nothing was ever acknowledged");
                let _ = epochs;
            }
            Err(e) => {
                eprintln!("replication simulation failed; replay with SIM_SEED={seed}");
                std::panic::resume_unwind(e);
            }
        }
    }
}
