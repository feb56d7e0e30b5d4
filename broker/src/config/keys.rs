//! The table of every server.properties key the broker understands.
//!
//! One row per key: its type, its built-in default, and one line of
//! documentation (shown by DescribeConfigs and in `config/server.properties`).
//! Keys that Kafka operators commonly set but that have no effect here yet are
//! listed as `Effect::Ignored`, so a real Kafka config starts and the log says
//! which lines did nothing, rather than refusing it or hiding it.

/// How a value is parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Long,
    Bool,
    Str,
    List,
    Double,
}

/// Whether the broker acts on a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Used,
    /// Accepted for compatibility with Kafka configs; logged at start.
    Ignored,
}

/// One known key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    /// `None`: no default (unset unless given).
    pub default: Option<&'static str>,
    pub effect: Effect,
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    doc: &'static str,
) -> Key {
    Key {
        name,
        kind,
        default,
        effect: Effect::Used,
        doc,
    }
}

const fn ignored(name: &'static str, kind: Kind, default: Option<&'static str>) -> Key {
    Key {
        name,
        kind,
        default,
        effect: Effect::Ignored,
        doc: "Accepted for compatibility with Kafka configurations; no effect in Millrace yet.",
    }
}

use Kind::*;

pub const KEYS: &[Key] = &[
    key("node.id", Int, Some("1"), "This node's id in the cluster."),
    key("broker.id", Int, None, "Legacy alias of node.id."),
    key("process.roles", List, Some("broker,controller"), "Roles of this process: broker, controller (processor comes with the processor)."),
    key("listeners", List, Some("PLAINTEXT://localhost:9092"), "Addresses to listen on for Kafka clients, as NAME://host:port."),
    key("admin.listener", Str, Some("localhost:9644"), "Address (host:port) of the admin HTTP listener: /healthz, /metrics and the jobs API; empty to disable."),
    key("processor.enabled", Bool, Some("true"), "Run a member of every stream job on this node; false leaves jobs to the other nodes."),
    key("processor.jobs.dir", Str, None, "Directory of *.sql job files created at start when no job of that name exists (GitOps-style)."),
    key("advertised.listeners", List, None, "Addresses given to clients in Metadata; defaults to listeners (0.0.0.0 is replaced by the host name)."),
    key("controller.quorum.voters", List, None, "Controller voters as id@host:port (single node: may be left unset)."),
    key("controller.listener.names", List, Some("CONTROLLER"), "Names of listeners (in listeners) that carry the controller protocol; not offered to clients."),
    key("broker.heartbeat.interval.ms", Int, Some("250"), "How often a broker reports its liveness to the controller leader."),
    key("broker.session.timeout.ms", Int, Some("1500"), "A broker not heard from for this long is fenced (loses partition leadership)."),
    key("log.dirs", List, Some("./data"), "Directory holding partition logs and cluster metadata."),
    key("log.dir", Str, None, "Legacy single-directory form of log.dirs."),
    key("num.partitions", Int, Some("1"), "Partitions of auto-created topics and of CreateTopics without a count."),
    key("default.replication.factor", Int, Some("1"), "Replication factor of topics created without one."),
    key("min.insync.replicas", Int, Some("1"), "Default min.insync.replicas of topics."),
    key("auto.leader.rebalance.enable", Bool, Some("true"), "Move leadership back to preferred replicas (the first listed) once they are in sync again."),
    key("leader.imbalance.check.interval.seconds", Int, Some("300"), "How often the controller looks for partitions led by a non-preferred replica."),
    key("replica.lag.time.max.ms", Int, Some("30000"), "A follower that has not caught up with its leader for this long leaves the ISR."),
    key("auto.create.topics.enable", Bool, Some("true"), "Create a topic when a client asks for metadata of an unknown one."),
    key("delete.topic.enable", Bool, Some("true"), "Allow DeleteTopics."),
    key("log.retention.hours", Int, Some("168"), "Default retention.ms in hours (lowest priority of the three)."),
    key("log.retention.minutes", Int, None, "Default retention.ms in minutes (overrides hours)."),
    key("log.retention.ms", Long, None, "Default retention.ms (overrides minutes and hours); -1 keeps forever."),
    key("log.retention.bytes", Long, Some("-1"), "Default retention.bytes per partition; -1 means no limit."),
    key("log.retention.check.interval.ms", Long, Some("300000"), "How often retention runs."),
    key("log.segment.bytes", Int, Some("1073741824"), "Default segment.bytes: roll a segment at this size."),
    key("log.roll.hours", Int, Some("168"), "Default segment.ms in hours."),
    key("log.roll.ms", Long, None, "Default segment.ms (overrides log.roll.hours)."),
    key("log.index.interval.bytes", Int, Some("4096"), "Default index.interval.bytes: bytes between index entries."),
    key("log.index.size.max.bytes", Int, Some("10485760"), "Default segment.index.bytes: index file size."),
    key("log.flush.interval.messages", Long, Some("9223372036854775807"), "Default flush.messages: fsync after this many messages (1 = every append)."),
    key("log.flush.interval.ms", Long, None, "Default flush.ms: fsync when data is this old."),
    key("log.flush.scheduler.interval.ms", Long, Some("1000"), "How often the flush.ms check runs."),
    key("log.cleanup.policy", List, Some("delete"), "Default cleanup.policy: delete, compact, or both."),
    key("log.cleaner.enable", Bool, Some("true"), "Run the log cleaner for compacted topics."),
    key("log.cleaner.backoff.ms", Long, Some("15000"), "Pause between log cleaner passes."),
    key("log.cleaner.delete.retention.ms", Long, Some("86400000"), "Default delete.retention.ms: how long tombstones stay."),
    key("log.message.timestamp.type", Str, Some("CreateTime"), "Default message.timestamp.type: CreateTime or LogAppendTime."),
    key("message.max.bytes", Int, Some("1048588"), "Default max.message.bytes: largest record batch accepted."),
    key("socket.request.max.bytes", Int, Some("104857600"), "Largest request frame; bigger frames close the connection."),
    key("max.connections", Int, Some("10000"), "Client connections accepted at once; more wait in the backlog."),
    key("connections.max.idle.ms", Long, Some("600000"), "Close client connections idle this long."),
    key("offsets.topic.num.partitions", Int, Some("50"), "Partitions of __consumer_offsets."),
    key("offsets.topic.replication.factor", Int, Some("1"), "Replication factor of __consumer_offsets."),
    key("group.initial.rebalance.delay.ms", Int, Some("3000"), "Delay before the first rebalance of a new group."),
    key("group.min.session.timeout.ms", Int, Some("6000"), "Smallest session timeout a group member may ask for."),
    key("group.max.session.timeout.ms", Int, Some("1800000"), "Largest session timeout a group member may ask for."),
    key("group.consumer.heartbeat.interval.ms", Int, Some("5000"), "Heartbeat interval given to consumer-protocol (KIP-848) members."),
    key("group.consumer.migration.policy", Str, Some("bidirectional"), "Mixing protocols in one group: disabled, upgrade (a consumer-protocol member converts a classic group), downgrade (a consumer group whose last consumer-protocol member left becomes classic), bidirectional."),
    key("group.consumer.session.timeout.ms", Int, Some("45000"), "Session timeout of consumer-protocol (KIP-848) members."),
    key("group.max.size", Int, Some("2147483647"), "Members one group may have."),
    key("offsets.commit.timeout.ms", Int, Some("5000"), "How long a group write waits for the in-sync replicas of __consumer_offsets."),
    key("offsets.retention.minutes", Int, Some("10080"), "Committed offsets of empty groups expire after this long."),
    key("offsets.retention.check.interval.ms", Long, Some("600000"), "How often expired offsets are removed."),
    key("offset.metadata.max.bytes", Int, Some("4096"), "Largest metadata string of a committed offset."),
    key("compression.type", Str, Some("producer"), "Default compression.type of topics; only producer (keep what the client sent) is supported."),
    key("log.cleaner.min.cleanable.ratio", Double, Some("0.5"), "Default min.cleanable.dirty.ratio."),
    key("log.cleaner.min.compaction.lag.ms", Long, Some("0"), "Default min.compaction.lag.ms."),
    key("log.segment.delete.delay.ms", Long, Some("60000"), "Default file.delete.delay.ms."),
    key("unclean.leader.election.enable", Bool, Some("false"), "Default unclean.leader.election.enable."),
    key("log.level", Str, Some("info"), "Log level when RUST_LOG is unset: error, warn, info, debug, trace."),
    key("cluster.id", Str, None, "Cluster id; generated and stored in meta.properties on first start when unset."),
    key("broker.rack", Str, None, "Rack of this broker, reported in Metadata."),
    ignored("inter.broker.listener.name", Str, None),
    ignored("listener.security.protocol.map", List, None),
    ignored("num.network.threads", Int, None),
    ignored("num.io.threads", Int, None),
    ignored("num.recovery.threads.per.data.dir", Int, None),
    ignored("socket.send.buffer.bytes", Int, None),
    ignored("socket.receive.buffer.bytes", Int, None),
    ignored("transaction.state.log.replication.factor", Int, None),
    ignored("transaction.state.log.min.isr", Int, None),
    ignored("group.coordinator.rebalance.protocols", List, None),
    ignored("share.coordinator.state.topic.replication.factor", Int, None),
    ignored("share.coordinator.state.topic.min.isr", Int, None),
];

/// Looks a key up by name.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_parse() {
        let mut names: Vec<_> = KEYS.iter().map(|k| k.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        for k in KEYS {
            if let Some(d) = k.default {
                super::super::parse::check(k, d).unwrap_or_else(|e| panic!("{}: {e}", k.name));
            }
        }
    }
}
