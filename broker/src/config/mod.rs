//! Server configuration: Kafka's `server.properties` key names, with
//! `--override key=value` and `MILLRACE_*` environment variables on top.
//!
//! Precedence, lowest first: built-in defaults, the file, `--override`, the
//! environment (so a container's env wins over the baked-in file).

pub mod keys;
pub mod parse;
pub mod topic;
pub mod voters;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use keys::Effect;
pub use voters::Voter;

/// Where a value came from (mirrors DescribeConfigs' config_source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Override,
    Env,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key '{key}' ({origin})")]
    Unknown { key: String, origin: String },
    #[error("bad value '{value}' for '{key}': {reason}")]
    Malformed {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One listener, e.g. `PLAINTEXT://localhost:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    fn parse(key: &str, s: &str) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::Malformed {
            key: key.to_string(),
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let (name, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let port = port.parse().map_err(|_| bad("port is not a number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        })
    }

    /// The address to bind (an empty host binds every interface, like Kafka).
    pub fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The validated server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    values: BTreeMap<String, (String, Source)>,
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised: Vec<Listener>,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    /// Whether this node runs stream jobs (`processor.enabled`).
    pub processor_enabled: bool,
    pub delete_topic_enable: bool,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    pub socket_request_bytes_max: usize,
    pub connections_max: usize,
    pub connection_idle_ms_max: u64,
    pub rack: Option<String>,
    pub cluster_id: Option<String>,
    /// `controller.quorum.voters`; empty for a single node.
    pub voters: Vec<Voter>,
    /// This node's listener for the controller protocol (a listener named in
    /// `controller.listener.names`); never offered to clients.
    pub controller_listener: Option<Listener>,
    pub broker_heartbeat_interval_ms: u64,
    pub broker_session_timeout_ms: u64,
}

impl ServerConfig {
    /// Builds the configuration from a file, `--override` pairs and the environment.
    pub fn load(
        file: Option<&Path>,
        overrides: &[String],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut values = BTreeMap::new();
        let mut warnings = Vec::new();
        for k in keys::KEYS {
            if let Some(d) = k.default {
                values.insert(k.name.to_string(), (d.to_string(), Source::Default));
            }
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            for (line, k, v) in parse::properties(&text)? {
                let origin = format!("{} line {line}", path.display());
                set(&mut values, &k, v, Source::File, origin)?;
            }
        }
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::Malformed {
                key: o.clone(),
                value: String::new(),
                reason: "--override takes key=value".into(),
            })?;
            set(
                &mut values,
                k.trim(),
                v.trim().to_string(),
                Source::Override,
                "--override".into(),
            )?;
        }
        for (name, v) in env {
            let Some(rest) = name.strip_prefix("MILLRACE_") else {
                continue;
            };
            let k = rest.to_ascii_lowercase().replace('_', ".");
            if keys::find(&k).is_none() {
                // The environment carries unrelated MILLRACE_* variables too
                // (test harnesses, tooling); say so rather than refuse to start.
                warnings.push(format!(
                    "environment variable {name} names no configuration key; ignored"
                ));
                continue;
            }
            set(
                &mut values,
                &k,
                v,
                Source::Env,
                format!("environment {name}"),
            )?;
        }
        for k in keys::KEYS {
            if k.effect == Effect::Ignored && values.contains_key(k.name) {
                warnings.push(format!(
                    "{} is accepted for compatibility but has no effect yet",
                    k.name
                ));
            }
        }
        let config = Self::from_values(values)?;
        Ok((config, warnings))
    }

    fn from_values(values: BTreeMap<String, (String, Source)>) -> Result<Self, ConfigError> {
        let get = |k: &str| values.get(k).map(|(v, _)| v.as_str());
        let int = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        let bool_of = |k: &str| get(k) == Some("true");
        let controller_names = parse::list(get("controller.listener.names").unwrap_or_default());
        let is_controller = |l: &Listener| controller_names.contains(&l.name);
        let all = parse_listeners("listeners", get("listeners").unwrap_or_default())?;
        let (controller, listeners): (Vec<Listener>, Vec<Listener>) =
            all.into_iter().partition(|l| is_controller(l));
        if listeners.is_empty() {
            return Err(malformed(
                "listeners",
                get("listeners").unwrap_or_default(),
                "at least one client (non-controller) listener is needed",
            ));
        }
        if controller.len() > 1 {
            return Err(malformed(
                "listeners",
                get("listeners").unwrap_or_default(),
                "at most one controller listener (controller.listener.names) is supported",
            ));
        }
        let controller_listener = controller.into_iter().next();
        let advertised = match get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?
                .into_iter()
                .filter(|l| !is_controller(l))
                .collect(),
            None => listeners.clone(),
        };
        let advertised: Vec<Listener> = advertised;
        if advertised.is_empty() {
            return Err(malformed(
                "advertised.listeners",
                get("advertised.listeners").unwrap_or_default(),
                "at least one client (non-controller) listener is needed",
            ));
        }
        let advertised = advertised
            .into_iter()
            .map(|mut l| {
                if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                    l.host = hostname();
                }
                l
            })
            .collect();
        let dirs = match get("log.dir") {
            Some(d)
                if !values
                    .get("log.dirs")
                    .is_some_and(|(_, s)| *s != Source::Default) =>
            {
                vec![d.to_string()]
            }
            _ => parse::list(get("log.dirs").unwrap_or_default()),
        };
        let log_dir = match dirs.as_slice() {
            [one] => PathBuf::from(one),
            [] => return Err(malformed("log.dirs", "", "no directory given")),
            _ => {
                return Err(malformed(
                    "log.dirs",
                    &dirs.join(","),
                    "several log directories are not supported yet; give one",
                ))
            }
        };
        let node_id = int("broker.id").or(int("node.id")).unwrap_or(1);
        let node_id =
            i32::try_from(node_id).map_err(|_| malformed("node.id", "", "out of range"))?;
        if node_id < 0 {
            return Err(malformed("node.id", &node_id.to_string(), "must be >= 0"));
        }
        let positive = |k: &str| -> Result<i64, ConfigError> {
            match int(k) {
                Some(n) if n > 0 => Ok(n),
                _ => Err(malformed(
                    k,
                    get(k).unwrap_or(""),
                    "must be a positive number",
                )),
            }
        };
        let roles = parse::list(get("process.roles").unwrap_or_default());
        for r in &roles {
            if !matches!(r.as_str(), "broker" | "controller") {
                return Err(malformed(
                    "process.roles",
                    r,
                    "roles are broker and controller",
                ));
            }
        }
        let voters = voters::parse(
            "controller.quorum.voters",
            get("controller.quorum.voters").unwrap_or_default(),
        )?;
        if !voters.is_empty()
            && !voters.iter().any(|v| v.id == node_id)
            && controller_listener.is_none()
        {
            return Err(malformed(
                "controller.listener.names",
                get("controller.listener.names").unwrap_or_default(),
                &format!("node {node_id} is not in controller.quorum.voters, so listeners needs a listener with one of these names to receive the metadata log"),
            ));
        }
        let heartbeat_ms = positive("broker.heartbeat.interval.ms")?;
        let session_ms = positive("broker.session.timeout.ms")?;
        if session_ms < 2 * heartbeat_ms {
            // One late heartbeat must not fence a healthy broker.
            return Err(malformed(
                "broker.session.timeout.ms",
                &session_ms.to_string(),
                "must be at least twice broker.heartbeat.interval.ms",
            ));
        }
        let num_partitions = positive("num.partitions")? as i32;
        let default_replication_factor = positive("default.replication.factor")? as i16;
        let level = get("log.level").unwrap_or("info");
        if !matches!(level, "error" | "warn" | "info" | "debug" | "trace") {
            return Err(malformed(
                "log.level",
                level,
                "one of error, warn, info, debug, trace",
            ));
        }
        let policy = get("group.consumer.migration.policy").unwrap_or("bidirectional");
        if crate::group::mixed::MigrationPolicy::parse(policy).is_none() {
            return Err(malformed(
                "group.consumer.migration.policy",
                policy,
                "one of disabled, upgrade, downgrade, bidirectional",
            ));
        }
        topic::check_broker_defaults(&values)?;
        Ok(ServerConfig {
            node_id,
            listeners,
            advertised,
            log_dir,
            num_partitions,
            default_replication_factor,
            auto_create_topics: bool_of("auto.create.topics.enable"),
            processor_enabled: bool_of("processor.enabled"),
            delete_topic_enable: bool_of("delete.topic.enable"),
            retention_check_interval_ms: positive("log.retention.check.interval.ms")? as u64,
            flush_scheduler_interval_ms: positive("log.flush.scheduler.interval.ms")? as u64,
            cleaner_enable: bool_of("log.cleaner.enable"),
            cleaner_backoff_ms: positive("log.cleaner.backoff.ms")? as u64,
            socket_request_bytes_max: positive("socket.request.max.bytes")? as usize,
            connections_max: positive("max.connections")? as usize,
            connection_idle_ms_max: positive("connections.max.idle.ms")? as u64,
            rack: get("broker.rack").map(str::to_string),
            cluster_id: get("cluster.id").map(str::to_string),
            voters,
            controller_listener,
            broker_heartbeat_interval_ms: heartbeat_ms as u64,
            broker_session_timeout_ms: session_ms as u64,
            values,
        })
    }

    /// A value and its source, for DescribeConfigs on the broker resource.
    pub fn get(&self, key: &str) -> Option<(&str, Source)> {
        self.values.get(key).map(|(v, s)| (v.as_str(), *s))
    }

    /// A numeric key's value; every numeric key with a default was checked at load.
    pub fn long(&self, key: &str) -> i64 {
        self.get(key).and_then(|(v, _)| v.parse().ok()).unwrap_or(0)
    }

    /// Every set key with its value and source.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Source)> {
        self.values
            .iter()
            .map(|(k, (v, s))| (k.as_str(), v.as_str(), *s))
    }

    /// The level for the log filter when RUST_LOG is unset.
    pub fn log_level(&self) -> &str {
        self.get("log.level").map(|(v, _)| v).unwrap_or("info")
    }

    /// The first listener's bind address.
    pub fn bind_addrs(&self) -> Vec<String> {
        self.listeners.iter().map(Listener::bind_addr).collect()
    }

    /// The address clients are told to use.
    pub fn advertised(&self) -> &Listener {
        &self.advertised[0]
    }

    /// Parses a bound address back (for tests that bind port 0).
    pub fn parse_addr(s: &str) -> Option<SocketAddr> {
        s.parse().ok()
    }
}

fn set(
    values: &mut BTreeMap<String, (String, Source)>,
    k: &str,
    v: String,
    source: Source,
    origin: String,
) -> Result<(), ConfigError> {
    let key = keys::find(k).ok_or_else(|| ConfigError::Unknown {
        key: k.to_string(),
        origin,
    })?;
    parse::check(key, &v)?;
    values.insert(k.to_string(), (v, source));
    Ok(())
}

fn parse_listeners(key: &str, v: &str) -> Result<Vec<Listener>, ConfigError> {
    parse::list(v)
        .iter()
        .map(|s| Listener::parse(key, s))
        .collect()
}

fn malformed(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Malformed {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(
        file: &str,
        overrides: &[&str],
        env: &[(&str, &str)],
    ) -> Result<ServerConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(&path, file).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        ServerConfig::load(Some(&path), &overrides, env).map(|(c, _)| c)
    }

    #[test]
    fn defaults_give_a_single_local_node() {
        let (c, warnings) = ServerConfig::load(None, &[], Vec::new()).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.node_id, 1);
        assert_eq!(c.bind_addrs(), vec!["localhost:9092"]);
        assert_eq!(c.log_dir, PathBuf::from("./data"));
        assert_eq!(c.num_partitions, 1);
    }

    #[test]
    fn file_then_override_then_env() {
        let c = load(
            "num.partitions=2\nlog.dirs=/a\nnode.id=3\n",
            &["num.partitions=5", "log.dirs=/b"],
            &[("MILLRACE_LOG_DIRS", "/c"), ("PATH", "/bin")],
        )
        .unwrap();
        assert_eq!(c.num_partitions, 5);
        assert_eq!(c.log_dir, PathBuf::from("/c"));
        assert_eq!(c.node_id, 3);
        assert_eq!(c.get("num.partitions"), Some(("5", Source::Override)));
    }

    #[test]
    fn unknown_and_malformed_keys_are_named() {
        let e = load("log.retention.hourz=1\n", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("log.retention.hourz"), "{e}");
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = load("num.partitions=many\n", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("num.partitions"), "{e}");
        let e = load("", &["listeners=localhost"], &[]).unwrap_err();
        assert!(e.to_string().contains("listeners"), "{e}");
        let e = load("num.partitions=0\n", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("num.partitions"), "{e}");
    }

    #[test]
    fn controller_listener_is_not_a_client_listener() {
        let c = load(
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\nnode.id=4\ncontroller.quorum.voters=1@a:9093,2@b:9093\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(c.bind_addrs(), vec!["0.0.0.0:9092"]);
        assert_eq!(c.controller_listener.as_ref().unwrap().port, 9093);
        assert_eq!(c.voters.len(), 2);
        assert!(c.advertised.iter().all(|l| l.name != "CONTROLLER"));
        // A broker-only node without a controller listener cannot start.
        let e = load("node.id=4\ncontroller.quorum.voters=1@a:9093\n", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("controller.listener.names"), "{e}");
        let e = load("controller.quorum.voters=1@a:9093,1@b:9093\n", &[], &[]).unwrap_err();
        assert!(e.to_string().contains("controller.quorum.voters"), "{e}");
    }

    #[test]
    fn empty_host_binds_all_and_advertises_hostname() {
        let c = load("listeners=PLAINTEXT://:9093\n", &[], &[]).unwrap();
        assert_eq!(c.bind_addrs(), vec!["0.0.0.0:9093"]);
        assert!(!c.advertised().host.is_empty());
        assert_eq!(c.advertised().port, 9093);
    }
}
