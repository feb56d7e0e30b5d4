//! Topic-level configuration: the keys a topic may override, how each one's
//! default follows from the broker configuration, validation, and the
//! translation into the storage crate's `LogConfig`.

use std::collections::BTreeMap;

use millrace_storage::LogConfig;

use super::{ConfigError, ServerConfig, Source};

/// One topic-level key.
pub struct TopicKey {
    pub name: &'static str,
    /// DescribeConfigs config_type: 1 bool, 2 string, 3 int, 5 long, 6 double, 7 list.
    pub config_type: i8,
    pub doc: &'static str,
    check: fn(&str) -> Result<(), String>,
}

fn long_min(v: &str, min: i64) -> Result<(), String> {
    match v.parse::<i64>() {
        Ok(n) if n >= min => Ok(()),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(_) => Err("expected an integer".into()),
    }
}

fn int_min(v: &str, min: i64) -> Result<(), String> {
    match v.parse::<i32>() {
        Ok(n) if n as i64 >= min => Ok(()),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(_) => Err("expected a 32-bit integer".into()),
    }
}

fn policy(v: &str) -> Result<(), String> {
    let items = super::parse::list(v);
    if items.is_empty() || items.iter().any(|p| p != "delete" && p != "compact") {
        return Err("expected delete, compact, or compact,delete".into());
    }
    Ok(())
}

fn timestamp_type(v: &str) -> Result<(), String> {
    match v {
        "CreateTime" | "LogAppendTime" => Ok(()),
        _ => Err("expected CreateTime or LogAppendTime".into()),
    }
}

fn compression(v: &str) -> Result<(), String> {
    match v {
        "producer" => Ok(()),
        "gzip" | "snappy" | "lz4" | "zstd" | "uncompressed" => {
            Err("broker-side recompression is not supported yet; use producer".into())
        }
        _ => Err("expected producer".into()),
    }
}

fn boolean(v: &str) -> Result<(), String> {
    match v {
        "true" | "false" => Ok(()),
        _ => Err("expected true or false".into()),
    }
}

fn ratio(v: &str) -> Result<(), String> {
    match v.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(()),
        _ => Err("expected a number between 0 and 1".into()),
    }
}

const fn tk(
    name: &'static str,
    config_type: i8,
    doc: &'static str,
    check: fn(&str) -> Result<(), String>,
) -> TopicKey {
    TopicKey {
        name,
        config_type,
        doc,
        check,
    }
}

pub const TOPIC_KEYS: &[TopicKey] = &[
    tk("cleanup.policy", 7, "delete, compact, or both.", policy),
    tk(
        "compression.type",
        2,
        "Compression kept on disk; producer keeps the client's.",
        compression,
    ),
    tk(
        "delete.retention.ms",
        5,
        "How long tombstones stay in a compacted topic.",
        |v| long_min(v, 0),
    ),
    tk(
        "file.delete.delay.ms",
        5,
        "Delay before a deleted segment's files are removed.",
        |v| long_min(v, 0),
    ),
    tk(
        "flush.messages",
        5,
        "fsync after this many messages (1: every append).",
        |v| long_min(v, 1),
    ),
    tk(
        "flush.ms",
        5,
        "fsync when unflushed data is this old.",
        |v| long_min(v, 0),
    ),
    tk(
        "index.interval.bytes",
        3,
        "Bytes between offset index entries.",
        |v| int_min(v, 0),
    ),
    tk(
        "max.message.bytes",
        3,
        "Largest record batch accepted.",
        |v| int_min(v, 0),
    ),
    tk(
        "message.timestamp.type",
        2,
        "CreateTime or LogAppendTime.",
        timestamp_type,
    ),
    tk(
        "min.cleanable.dirty.ratio",
        6,
        "Dirty share of a log that triggers compaction.",
        ratio,
    ),
    tk(
        "min.compaction.lag.ms",
        5,
        "Records younger than this are not compacted.",
        |v| long_min(v, 0),
    ),
    tk(
        "min.insync.replicas",
        3,
        "Replicas that must acknowledge acks=all writes.",
        |v| int_min(v, 1),
    ),
    tk(
        "retention.bytes",
        5,
        "Bytes kept per partition; -1 means no limit.",
        |v| long_min(v, -1),
    ),
    tk(
        "retention.ms",
        5,
        "How long records are kept; -1 keeps them forever.",
        |v| long_min(v, -1),
    ),
    tk("segment.bytes", 3, "Roll a segment at this size.", |v| {
        int_min(v, 14)
    }),
    tk("segment.index.bytes", 3, "Size of each index file.", |v| {
        int_min(v, 4)
    }),
    tk("segment.ms", 5, "Roll a segment after this long.", |v| {
        long_min(v, 1)
    }),
    tk(
        "unclean.leader.election.enable",
        1,
        "Elect leaders outside the ISR (may lose data).",
        boolean,
    ),
];

/// Looks a topic key up.
pub fn find(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// Checks one topic override; the error text is for the client.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let key = find(name).ok_or_else(|| format!("unknown topic config '{name}'"))?;
    (key.check)(value).map_err(|e| format!("invalid value '{value}' for '{name}': {e}"))
}

/// The broker-level default of a topic key: value, source and the broker key it came from.
pub fn broker_default(server: &ServerConfig, name: &str) -> (String, Source, &'static str) {
    let v = |k: &'static str| server.get(k).map(|(v, s)| (v.to_string(), s, k));
    let scaled = |k: &'static str, unit: i64| {
        v(k).and_then(|(val, s, k)| {
            val.parse::<i64>()
                .ok()
                .map(|n| ((n * unit).to_string(), s, k))
        })
    };
    let direct = |k: &'static str| v(k).unwrap_or_else(|| (String::new(), Source::Default, k));
    match name {
        "cleanup.policy" => direct("log.cleanup.policy"),
        "compression.type" => direct("compression.type"),
        "delete.retention.ms" => direct("log.cleaner.delete.retention.ms"),
        "file.delete.delay.ms" => direct("log.segment.delete.delay.ms"),
        "flush.messages" => direct("log.flush.interval.messages"),
        "flush.ms" => v("log.flush.interval.ms").unwrap_or_else(|| {
            (
                i64::MAX.to_string(),
                Source::Default,
                "log.flush.interval.ms",
            )
        }),
        "index.interval.bytes" => direct("log.index.interval.bytes"),
        "max.message.bytes" => direct("message.max.bytes"),
        "message.timestamp.type" => direct("log.message.timestamp.type"),
        "min.cleanable.dirty.ratio" => direct("log.cleaner.min.cleanable.ratio"),
        "min.compaction.lag.ms" => direct("log.cleaner.min.compaction.lag.ms"),
        "min.insync.replicas" => direct("min.insync.replicas"),
        "retention.bytes" => direct("log.retention.bytes"),
        "retention.ms" => v("log.retention.ms")
            .or_else(|| scaled("log.retention.minutes", 60_000))
            .unwrap_or_else(|| direct_scaled(server, "log.retention.hours")),
        "segment.bytes" => direct("log.segment.bytes"),
        "segment.index.bytes" => direct("log.index.size.max.bytes"),
        "segment.ms" => v("log.roll.ms").unwrap_or_else(|| direct_scaled(server, "log.roll.hours")),
        "unclean.leader.election.enable" => direct("unclean.leader.election.enable"),
        _ => (String::new(), Source::Default, ""),
    }
}

fn direct_scaled(server: &ServerConfig, key: &'static str) -> (String, Source, &'static str) {
    let (v, s) = server.get(key).unwrap_or(("168", Source::Default));
    let hours = v.parse::<i64>().unwrap_or(168);
    ((hours * 3_600_000).to_string(), s, key)
}

/// Checks that every broker key feeding a topic default is a valid topic value.
pub fn check_broker_defaults(
    values: &BTreeMap<String, (String, Source)>,
) -> Result<(), ConfigError> {
    let pairs = [
        ("log.cleanup.policy", "cleanup.policy"),
        ("compression.type", "compression.type"),
        ("log.message.timestamp.type", "message.timestamp.type"),
        (
            "log.cleaner.min.cleanable.ratio",
            "min.cleanable.dirty.ratio",
        ),
        ("log.segment.bytes", "segment.bytes"),
        ("log.flush.interval.messages", "flush.messages"),
    ];
    for (broker_key, topic_key) in pairs {
        if let Some((v, _)) = values.get(broker_key) {
            validate(topic_key, v).map_err(|reason| ConfigError::Malformed {
                key: broker_key.to_string(),
                value: v.clone(),
                reason,
            })?;
        }
    }
    Ok(())
}

/// The value of every topic key for a topic with `overrides`.
pub fn effective(
    server: &ServerConfig,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<&'static str, String> {
    TOPIC_KEYS
        .iter()
        .map(|k| {
            let v = overrides
                .get(k.name)
                .cloned()
                .unwrap_or_else(|| broker_default(server, k.name).0);
            (k.name, v)
        })
        .collect()
}

/// The storage configuration of a topic's partitions.
pub fn log_config(server: &ServerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let e = effective(server, overrides);
    let long = |k: &str, d: i64| e.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(d);
    let policy = super::parse::list(
        e.get("cleanup.policy")
            .map(String::as_str)
            .unwrap_or("delete"),
    );
    let flush_messages = long("flush.messages", i64::MAX).max(1) as u64;
    let defaults = LogConfig::default();
    LogConfig {
        segment_bytes: long("segment.bytes", defaults.segment_bytes as i64) as u64,
        segment_ms: long("segment.ms", defaults.segment_ms),
        segment_index_bytes: long("segment.index.bytes", defaults.segment_index_bytes as i64)
            as u64,
        index_interval_bytes: long("index.interval.bytes", defaults.index_interval_bytes as i64)
            as u64,
        retention_ms: long("retention.ms", defaults.retention_ms),
        retention_bytes: long("retention.bytes", defaults.retention_bytes),
        flush_messages,
        flush_ms: long("flush.ms", defaults.flush_ms),
        fsync_every_append: flush_messages == 1,
        max_message_bytes: long("max.message.bytes", defaults.max_message_bytes as i64)
            .clamp(0, u32::MAX as i64) as u32,
        compact: policy.iter().any(|p| p == "compact"),
        delete: policy.iter().any(|p| p == "delete"),
        delete_retention_ms: long("delete.retention.ms", defaults.delete_retention_ms),
        message_timestamp_type_log_append: e.get("message.timestamp.type").map(String::as_str)
            == Some("LogAppendTime"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_default_follows_hours_minutes_ms() {
        let (c, _) = ServerConfig::load(None, &[], Vec::new()).unwrap();
        assert_eq!(broker_default(&c, "retention.ms").0, "604800000");
        let (c, _) =
            ServerConfig::load(None, &["log.retention.minutes=2".into()], Vec::new()).unwrap();
        assert_eq!(broker_default(&c, "retention.ms").0, "120000");
        let (c, _) = ServerConfig::load(
            None,
            &[
                "log.retention.minutes=2".into(),
                "log.retention.ms=5".into(),
            ],
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            broker_default(&c, "retention.ms"),
            ("5".into(), Source::Override, "log.retention.ms")
        );
    }

    #[test]
    fn overrides_reach_the_log_config() {
        let (c, _) = ServerConfig::load(None, &[], Vec::new()).unwrap();
        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        o.insert("retention.ms".to_string(), "1000".to_string());
        o.insert("flush.messages".to_string(), "1".to_string());
        let l = log_config(&c, &o);
        assert!(l.compact && l.delete && l.fsync_every_append);
        assert_eq!(l.retention_ms, 1000);
    }

    #[test]
    fn validation_names_key_and_reason() {
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "x")
            .unwrap_err()
            .contains("retention.ms"));
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("no.such.key", "1")
            .unwrap_err()
            .contains("unknown"));
    }
}
