//! [`Cluster`]: several broker nodes (all `broker,controller`, all voters of
//! one metadata quorum) as child processes, each with its own ports, data dir
//! and log file; plus raw, non-panicking Metadata and Produce calls aimed at
//! one node, so a test can ask exactly that node what it believes.
//!
//! Two network modes:
//! - loopback (default): every node on 127.0.0.1 with its own free ports;
//! - network namespaces ([`Cluster::start_in_netns`], needs root and `ip`):
//!   node k runs in its own namespace at 10.231.S.k on a veth pair joined by a
//!   bridge in the test's namespace, so [`Cluster::isolate`] can cut a node
//!   off from its peers (blackhole routes both ways) while the test's clients
//!   still reach every node.
//!
//! Every wait here is bounded. Clusters within one test process run one at a
//! time (a process-wide lock held by the [`Cluster`]), since three brokers per
//! test are already plenty for a small machine. On a panic the dir with every
//! node's data and log is kept and its paths printed.

use crate::broker::free_port;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    MetadataRequest, MetadataResponse, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tempfile::TempDir;

use crate::broker::broker_bin;
use crate::wire::read_frame;

/// How long a node may take until its client port accepts connections.
const START_WAIT_MAX: Duration = Duration::from_secs(30);
/// How long a SIGTERM shutdown may take until the process exits.
const STOP_WAIT_MAX: Duration = Duration::from_secs(20);
/// Read/write timeout of one raw request.
const RAW_IO_TIMEOUT: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

/// One node of a [`Cluster`].
struct Node {
    id: i32,
    host: String,
    port: u16,
    cport: u16,
    dir: PathBuf,
    netns: Option<String>,
    child: Option<Child>,
}

impl Node {
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    fn log_path(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host.parse().expect("node host is an IP"), self.port)
    }
}

/// The namespaces, veths and bridge of a netns cluster (removed on drop).
struct Netns {
    bridge: String,
    namespaces: Vec<String>,
    /// The test-side ends of the veth pairs.
    veths: Vec<String>,
    /// Blackhole routes in place: (namespace, destination ip).
    cuts: Vec<(String, String)>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for v in &self.veths {
            let _ = ip(&["link", "del", v]);
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// What one node says about one partition (raw Metadata to that node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    pub error: i16,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A node's answer to Metadata for one topic.
#[derive(Debug, Clone)]
pub struct NodeMetadata {
    pub brokers: Vec<i32>,
    pub controller: i32,
    pub topic_error: i16,
    pub partitions: Vec<PartitionInfo>,
}

/// A multi-node cluster of broker processes.
pub struct Cluster {
    nodes: Vec<Node>,
    net: Option<Netns>,
    root: Option<TempDir>,
    _serial: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts `n` nodes (ids 1..=n, all voters) on loopback with
    /// `extra_overrides` (`"key=value"`) on every node, and waits until each
    /// client port accepts connections (not that the quorum formed: see
    /// [`Cluster::wait_ready`]).
    pub fn start(n: usize, extra_overrides: &[&str]) -> Cluster {
        let mut c = Cluster::prepare(n);
        for node in &mut c.nodes {
            node.port = free_port();
            node.cport = free_port();
        }
        c.launch(extra_overrides);
        c
    }

    /// Like [`Cluster::start`], with node k in its own network namespace.
    /// `None` (after printing why) when namespaces cannot be made here.
    pub fn start_in_netns(n: usize, extra_overrides: &[&str]) -> Option<Cluster> {
        if let Err(e) = ip(&["netns", "add", &format!("mr-probe-{}", std::process::id())]) {
            eprintln!(
                "SKIP: network namespaces are not available here ({e}); needs root and iproute2"
            );
            return None;
        }
        let _ = ip(&["netns", "del", &format!("mr-probe-{}", std::process::id())]);
        let mut c = Cluster::prepare(n);
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = (std::process::id() % 1000) * 10 + NEXT.fetch_add(1, Ordering::Relaxed) % 10;
        let subnet = format!(
            "10.231.{}",
            (std::process::id() + NEXT.load(Ordering::Relaxed)) % 250
        );
        let mut net = Netns {
            bridge: format!("mrb{tag}"),
            namespaces: Vec::new(),
            veths: Vec::new(),
            cuts: Vec::new(),
        };
        let setup = ip(&["link", "add", &net.bridge, "type", "bridge"])
            .and_then(|()| ip(&["link", "set", &net.bridge, "up"]))
            .and_then(|()| {
                ip(&[
                    "addr",
                    "add",
                    &format!("{subnet}.254/24"),
                    "dev",
                    &net.bridge,
                ])
            });
        if let Err(e) = setup {
            eprintln!("SKIP: cannot make a bridge for the netns cluster: {e}");
            return None;
        }
        for node in &mut c.nodes {
            let ns = format!("mr{tag}n{}", node.id);
            let host_end = format!("mr{tag}h{}", node.id);
            let ns_end = format!("mr{tag}v{}", node.id);
            let addr = format!("{subnet}.{}", node.id);
            let steps: Vec<Vec<String>> = vec![
                vec!["netns".into(), "add".into(), ns.clone()],
                vec![
                    "link".into(),
                    "add".into(),
                    host_end.clone(),
                    "type".into(),
                    "veth".into(),
                    "peer".into(),
                    "name".into(),
                    ns_end.clone(),
                ],
                vec![
                    "link".into(),
                    "set".into(),
                    ns_end.clone(),
                    "netns".into(),
                    ns.clone(),
                ],
                vec![
                    "link".into(),
                    "set".into(),
                    host_end.clone(),
                    "master".into(),
                    net.bridge.clone(),
                ],
                vec!["link".into(), "set".into(), host_end.clone(), "up".into()],
                ns_cmd(&ns, &["addr", "add", &format!("{addr}/24"), "dev", &ns_end]),
                ns_cmd(&ns, &["link", "set", &ns_end, "up"]),
                ns_cmd(&ns, &["link", "set", "lo", "up"]),
            ];
            net.namespaces.push(ns.clone());
            net.veths.push(host_end.clone());
            for s in steps {
                let args: Vec<&str> = s.iter().map(String::as_str).collect();
                if let Err(e) = ip(&args) {
                    eprintln!("SKIP: cannot set up the namespace of node {}: {e}", node.id);
                    return None;
                }
            }
            node.host = addr;
            node.netns = Some(ns);
            node.port = 19092;
            node.cport = 19093;
        }
        c.net = Some(net);
        c.launch(extra_overrides);
        Some(c)
    }

    fn prepare(n: usize) -> Cluster {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let root = tempfile::Builder::new()
            .prefix("millrace-cluster-")
            .tempdir()
            .expect("create a temp dir");
        let nodes = (1..=n as i32)
            .map(|id| {
                let dir = root.path().join(format!("node-{id}"));
                std::fs::create_dir_all(&dir).expect("create the node dir");
                Node {
                    id,
                    host: "127.0.0.1".into(),
                    port: 0,
                    cport: 0,
                    dir,
                    netns: None,
                    child: None,
                }
            })
            .collect();
        Cluster {
            nodes,
            net: None,
            root: Some(root),
            _serial: serial,
        }
    }

    fn launch(&mut self, extra_overrides: &[&str]) {
        let voters = self
            .nodes
            .iter()
            .map(|n| format!("{}@{}:{}", n.id, n.host, n.cport))
            .collect::<Vec<_>>()
            .join(",");
        let overrides: Vec<String> = extra_overrides.iter().map(|s| s.to_string()).collect();
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            let mut args = vec![
                format!("node.id={}", n.id),
                "process.roles=broker,controller".to_string(),
                format!(
                    "listeners=PLAINTEXT://{h}:{p},CONTROLLER://{h}:{c}",
                    h = n.host,
                    p = n.port,
                    c = n.cport
                ),
                "controller.listener.names=CONTROLLER".to_string(),
                format!("controller.quorum.voters={voters}"),
                format!("log.dirs={}", n.data_dir().display()),
                "admin.listener=".to_string(),
                "num.partitions=3".to_string(),
            ];
            args.extend(overrides.iter().cloned());
            let file = self.nodes[i].dir.join("overrides");
            std::fs::write(&file, args.join("\n")).expect("write the overrides");
        }
        for i in 0..self.nodes.len() {
            self.spawn(i);
        }
        for i in 0..self.nodes.len() {
            if let Err(e) = self.wait_port(i) {
                panic!("{e}");
            }
        }
    }

    fn index(&self, id: i32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        assert!(node.child.is_none(), "node {} is running", node.id);
        let args = std::fs::read_to_string(node.dir.join("overrides")).expect("overrides");
        let log = File::options()
            .create(true)
            .append(true)
            .open(node.log_path())
            .expect("open the node log");
        let bin = broker_bin();
        let mut cmd = match &node.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        for a in args.lines() {
            cmd.arg("--override").arg(a);
        }
        let child = cmd
            .env("NO_COLOR", "1")
            // The broker reads MILLRACE_* variables as configuration.
            .env_remove("MILLRACE_BROKER_BIN")
            .env_remove("MILLRACE_SEED")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.nodes[i].child = Some(child);
    }

    fn wait_port(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT_MAX;
        let addr = self.nodes[i].addr();
        let id = self.nodes[i].id;
        loop {
            let child = self.nodes[i].child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.nodes[i].child = None;
                return Err(format!("node {id} exited at start with {status}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {id}: {addr} did not accept within {START_WAIT_MAX:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Node ids, 1..=n.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Ids of the nodes whose process is alive.
    pub fn running(&mut self) -> Vec<i32> {
        self.nodes
            .iter_mut()
            .filter_map(|n| {
                let alive = n
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
                alive.then_some(n.id)
            })
            .collect()
    }

    /// `bootstrap.servers` listing every node.
    pub fn bootstrap(&self) -> String {
        self.bootstrap_of(&self.ids())
    }

    /// `bootstrap.servers` listing only `ids`.
    pub fn bootstrap_of(&self, ids: &[i32]) -> String {
        ids.iter()
            .map(|id| self.addr(*id).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A node's client address.
    pub fn addr(&self, id: i32) -> SocketAddr {
        self.nodes[self.index(id)].addr()
    }

    /// A node's `log.dirs`.
    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.nodes[self.index(id)].data_dir()
    }

    /// A node's stdout+stderr log file (all its starts appended).
    pub fn log_path(&self, id: i32) -> PathBuf {
        self.nodes[self.index(id)].log_path()
    }

    /// Every node's log path and the tail of its log, for failure messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.log_path()).unwrap_or_default();
            s.push_str(&format!(
                "--- node {} ({}, controller port {}) log {} (last 40 lines) ---\n{}\n",
                n.id,
                n.addr(),
                n.cport,
                n.log_path().display(),
                tail(&log, 40)
            ));
        }
        s
    }

    /// Waits until every running node answers Metadata listing all n brokers.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let n = self.nodes.len();
        let running = self.running();
        self.wait_until(
            &format!("{n} brokers in every node's Metadata"),
            timeout,
            |c| {
                running.iter().all(|id| {
                    c.metadata_from(*id, None)
                        .is_ok_and(|m| m.brokers.len() == n)
                })
            },
        );
    }

    /// Polls `cond` every 100 ms; panics (with every node's log) after `timeout`.
    /// Returns how long it took.
    /// Panics at once if a node the test did not stop has exited.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Cluster) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            self.check_alive(what);
            if cond(self) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Panics if a node that should be running has exited.
    pub fn check_alive(&mut self, what: &str) {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    n.child = None;
                    panic!(
                        "node {} exited unexpectedly ({status}) while waiting for {what}",
                        n.id
                    );
                }
            }
        }
    }

    /// Raw Metadata (v9) asked of node `id`; `topic` None asks for no topics.
    pub fn metadata_from(&self, id: i32, topic: Option<&str>) -> Result<NodeMetadata, String> {
        let topics = topic.map(|t| {
            vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))]
        });
        let req = MetadataRequest::default()
            .with_topics(Some(topics.unwrap_or_default()))
            .with_allow_auto_topic_creation(false);
        let resp: MetadataResponse = raw_call(self.addr(id), 9, &req)?;
        let mut out = NodeMetadata {
            brokers: resp.brokers.iter().map(|b| b.node_id.0).collect(),
            controller: resp.controller_id.0,
            topic_error: 0,
            partitions: Vec::new(),
        };
        if let Some(t) = resp.topics.first() {
            out.topic_error = t.error_code;
            out.partitions = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    error: p.error_code,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                })
                .collect();
            out.partitions.sort_by_key(|p| p.partition);
        }
        Ok(out)
    }

    /// The partition's state as the first running node (other than `except`)
    /// that answers reports it.
    pub fn partition_info(
        &mut self,
        topic: &str,
        partition: i32,
        except: &[i32],
    ) -> Option<PartitionInfo> {
        for id in self.running() {
            if except.contains(&id) {
                continue;
            }
            if let Ok(m) = self.metadata_from(id, Some(topic)) {
                if let Some(p) = m.partitions.into_iter().find(|p| p.partition == partition) {
                    return Some(p);
                }
            }
        }
        None
    }

    /// The leader of a partition per metadata, if it names a running node.
    pub fn leader_of(&mut self, topic: &str, partition: i32) -> Option<i32> {
        let running = self.running();
        self.partition_info(topic, partition, &[])
            .map(|p| p.leader)
            .filter(|l| running.contains(l))
    }

    /// Waits until every running node reports a leader for `partition` that
    /// is a running node, the same one everywhere, and `accept(leader)` holds.
    pub fn wait_leader(
        &mut self,
        topic: &str,
        partition: i32,
        timeout: Duration,
        accept: impl Fn(i32) -> bool,
    ) -> i32 {
        let running = self.running();
        let mut found = -1;
        self.wait_until(
            &format!("an agreed leader of {topic}-{partition} among nodes {running:?}"),
            timeout,
            |c| {
                let leaders: Vec<i32> = running
                    .iter()
                    .map(|id| {
                        c.metadata_from(*id, Some(topic))
                            .ok()
                            .and_then(|m| {
                                m.partitions.into_iter().find(|p| p.partition == partition)
                            })
                            .map_or(-1, |p| p.leader)
                    })
                    .collect();
                let l = leaders[0];
                if l >= 0 && running.contains(&l) && leaders.iter().all(|x| *x == l) && accept(l) {
                    found = l;
                    true
                } else {
                    false
                }
            },
        );
        found
    }

    /// Waits until every node reports every partition of `topic` with all
    /// its replicas in the ISR.
    pub fn wait_full_isr(&mut self, topic: &str, partitions: i32, timeout: Duration) -> Duration {
        let ids = self.ids();
        self.wait_until(
            &format!("full ISR on every partition of {topic}"),
            timeout,
            |c| {
                ids.iter().all(|id| {
                    c.metadata_from(*id, Some(topic)).is_ok_and(|m| {
                        m.partitions.len() == partitions as usize
                            && m.partitions.iter().all(|p| {
                                p.leader >= 0 && !p.replicas.is_empty() && {
                                    let mut a = p.replicas.clone();
                                    let mut b = p.isr.clone();
                                    a.sort_unstable();
                                    b.sort_unstable();
                                    a == b
                                }
                            })
                    })
                })
            },
        )
    }

    /// SIGKILL a node and reap it.
    pub fn kill9(&mut self, id: i32) {
        let i = self.index(id);
        let mut child = self.nodes[i].child.take().expect("node is running");
        child.kill().expect("SIGKILL the node");
        child.wait().expect("reap the node");
    }

    /// SIGTERM a node and wait (bounded) for its exit.
    pub fn stop(&mut self, id: i32) -> ExitStatus {
        let i = self.index(id);
        let mut child = self.nodes[i].child.take().expect("node is running");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + STOP_WAIT_MAX;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the node") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} did not exit within {STOP_WAIT_MAX:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a stopped or killed node again, same ports and data; waits for its port.
    pub fn restart(&mut self, id: i32) {
        let i = self.index(id);
        self.spawn(i);
        if let Err(e) = self.wait_port(i) {
            panic!("{e}");
        }
    }

    /// The `.log` segment files of `<topic>-<partition>` on node `id`,
    /// concatenated in base-offset order.
    pub fn partition_log_bytes(&self, id: i32, topic: &str, partition: i32) -> Vec<u8> {
        let dir = self.data_dir(id).join(format!("{topic}-{partition}"));
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter_map(|p| {
                        let base = p
                            .file_name()?
                            .to_str()?
                            .strip_suffix(".log")?
                            .parse::<u64>()
                            .ok()?;
                        Some((base, p))
                    })
                    .collect()
            })
            .unwrap_or_default();
        segments.sort();
        let mut out = Vec::new();
        for (_, p) in segments {
            out.extend(std::fs::read(&p).unwrap_or_default());
        }
        out
    }

    /// Cuts node `id` off from every other node (blackhole routes both ways);
    /// clients in the test's namespace still reach all nodes. Netns clusters only.
    pub fn isolate(&mut self, id: i32) {
        let hosts: Vec<(String, String, i32)> = self
            .nodes
            .iter()
            .map(|n| {
                (
                    n.netns.clone().expect("netns cluster"),
                    n.host.clone(),
                    n.id,
                )
            })
            .collect();
        let (my_ns, my_host, _) = hosts.iter().find(|h| h.2 == id).cloned().expect("node");
        let net = self.net.as_mut().expect("isolate needs a netns cluster");
        for (ns, host, other) in &hosts {
            if *other == id {
                continue;
            }
            for (in_ns, dst) in [(&my_ns, host), (ns, &my_host)] {
                ip(
                    &ns_cmd(in_ns, &["route", "add", "blackhole", &format!("{dst}/32")])
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )
                .expect("add a blackhole route");
                net.cuts.push((in_ns.clone(), dst.clone()));
            }
        }
    }

    /// Removes every cut made by [`Cluster::isolate`].
    pub fn heal(&mut self) {
        let net = self.net.as_mut().expect("heal needs a netns cluster");
        for (ns, dst) in net.cuts.drain(..) {
            ip(
                &ns_cmd(&ns, &["route", "del", "blackhole", &format!("{dst}/32")])
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
            .expect("delete a blackhole route");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.describe());
            if let Some(root) = self.root.take() {
                let kept = root.keep();
                eprintln!("cluster data and logs kept in {}", kept.display());
            }
        }
        self.net.take();
    }
}

/// Sends one request to `addr` on a fresh connection and decodes the answer;
/// errors (refused, timed out, closed) come back as `Err`, never a panic.
pub fn raw_call<R: Request>(
    addr: SocketAddr,
    version: i16,
    req: &R,
) -> Result<R::Response, String> {
    use std::io::Write;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(RAW_IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(RAW_IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("millrace-it-cluster")));
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| e.to_string())?;
    req.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let size = i32::try_from(buf.len() - 4).expect("frame size fits i32");
    buf[..4].copy_from_slice(&size.to_be_bytes());
    s.write_all(&buf)
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let frame = read_frame(&mut s).map_err(|e| format!("read from {addr}: {e}"))?;
    let mut body = Bytes::from(frame);
    let h = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| e.to_string())?;
    if h.correlation_id != 7 {
        return Err(format!("correlation id {}", h.correlation_id));
    }
    R::Response::decode(&mut body, version).map_err(|e| e.to_string())
}

/// A raw Produce (v9) of one record to node `addr`: `Ok((error_code,
/// base_offset))` when the node answered, `Err` when it did not.
pub fn raw_produce(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    acks: i16,
    timeout_ms: i32,
    value: &[u8],
) -> Result<(i16, i64), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    };
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| e.to_string())?;
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])]);
    let resp = raw_call(addr, 9, &req)?;
    let p = resp
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or("empty Produce response")?;
    Ok((p.error_code, p.base_offset))
}

fn ns_cmd(ns: &str, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["netns".into(), "exec".into(), ns.into(), "ip".into()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Runs `ip args`; Err with its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
