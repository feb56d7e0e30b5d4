//! Start-up and shutdown of one node: data directory, metadata, partitions,
//! listeners and background tasks.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metadata::{Controller, ControllerConfig};
use crate::replica::ReplicaManager;
use crate::{server, tasks, Broker, ServerConfig};

/// A node whose listeners are bound and whose data is open.
pub struct Node {
    pub broker: Arc<Broker>,
    /// Stops the controller's Raft server and tasks when the node stops.
    controller_shutdown: CancellationToken,
    listeners: Vec<TcpListener>,
    _lock: File,
}

impl Node {
    /// Opens the data directory and binds the listeners.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Node> {
        let dir = config.log_dir.clone();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create log.dirs {}", dir.display()))?;
        let lock = lock_dir(&dir)?;
        let controller_shutdown = CancellationToken::new();
        let controller = start_controller(&config, controller_shutdown.clone()).await?;
        write_meta_properties(&dir, config.node_id, &controller.image().cluster_id)?;
        let config = Arc::new(config);
        let replicas = ReplicaManager::new(config.clone());
        let image = controller.image();
        replicas.sync(&image);
        for stray in replicas.stray_dirs(&image) {
            if stray.to_string_lossy().ends_with("-delete") {
                let _ = std::fs::remove_dir_all(&stray);
            } else {
                tracing::warn!(path = %stray.display(), "directory in log.dirs belongs to no topic; leaving it alone");
            }
        }
        let mut listeners = Vec::new();
        for addr in config.bind_addrs() {
            let l = TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            listeners.push(l);
        }
        tracing::info!(
            node_id = config.node_id,
            cluster_id = %image.cluster_id,
            topics = image.topics.len(),
            log_dir = %dir.display(),
            "node started"
        );
        let groups = crate::group::GroupCoordinator::new(&config);
        let broker = Arc::new(Broker {
            config,
            controller,
            replicas,
            groups,
            job_status: Default::default(),
        });
        broker
            .groups
            .load(&broker)
            .await
            .context("cannot load consumer groups")?;
        if let Some((dir, _)) = broker.config.get("processor.jobs.dir") {
            if !dir.trim().is_empty() {
                broker.load_jobs_dir(Path::new(dir.trim())).await;
            }
        }
        Ok(Node {
            broker,
            controller_shutdown,
            listeners,
            _lock: lock,
        })
    }

    /// The bound addresses (useful when a port was 0).
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until `shutdown` is cancelled, then drains connections and closes logs.
    pub async fn run(self, stop: CancellationToken) {
        // Controlled shutdown (KIP-631): when asked to stop, this broker is
        // first fenced, so its leaderships move while it still serves the
        // fetches that let followers catch up and the requests of clients
        // that have not yet learned the new leaders; then everything stops.
        let shutdown = CancellationToken::new();
        {
            let broker = self.broker.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                broker.controller.shutdown_broker().await;
                shutdown.cancel();
            });
        }
        let tracker = TaskTracker::new();
        tasks::spawn(&self.broker, &tracker, &shutdown);
        for (l, addr) in self
            .listeners
            .into_iter()
            .zip(self.broker.config.bind_addrs())
        {
            tracing::info!(%addr, advertised = ?self.broker.config.advertised(), "listening for Kafka clients");
            tracker.spawn(server::serve(self.broker.clone(), l, shutdown.clone()));
        }
        tracker.spawn(crate::http::serve(self.broker.clone(), shutdown.clone()));
        tracker.spawn(crate::replica::fetcher::run(
            self.broker.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(crate::group::partitions::run(
            self.broker.clone(),
            shutdown.clone(),
        ));
        if self.broker.config.processor_enabled {
            tracker.spawn(crate::jobs::JobRuntime::new(self.broker.clone()).run(shutdown.clone()));
        }
        tracker.close();
        tracker.wait().await;
        self.broker.controller.close().await;
        self.controller_shutdown.cancel();
        let broker = self.broker.clone();
        let _ = tokio::task::spawn_blocking(move || broker.replicas.close_all()).await;
        tracing::info!("node stopped");
    }
}

/// How long a cluster node waits at start for the quorum to give it a
/// cluster id (the other voters may be starting too).
const CLUSTER_ID_WAIT: Duration = Duration::from_secs(120);

/// Starts the metadata controller and waits until the metadata has a cluster
/// id. The cluster id is the configured one, else the one in
/// meta.properties, so a data directory never changes cluster.
async fn start_controller(
    config: &ServerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<Controller>> {
    let dir = &config.log_dir;
    let stored = stored_cluster_id(dir);
    if let (Some(want), Some(have)) = (&config.cluster_id, &stored) {
        if want != have {
            bail!(
                "cluster.id is {want} but {} belongs to cluster {have}",
                dir.display()
            );
        }
    }
    let listener = match &config.controller_listener {
        Some(l) => Some(
            TcpListener::bind(l.bind_addr())
                .await
                .with_context(|| format!("cannot listen on {} (controller)", l.bind_addr()))?,
        ),
        None => None,
    };
    let advertised_addr = match (&config.controller_listener, &listener) {
        (Some(l), Some(bound)) => {
            let port = bound.local_addr().map(|a| a.port()).unwrap_or(l.port);
            let host = if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                config.advertised().host.clone()
            } else {
                l.host.clone()
            };
            Some(format!("{host}:{port}"))
        }
        _ => None,
    };
    let advertised = config.advertised();
    let cfg = ControllerConfig {
        node_id: config.node_id,
        metadata_dir: dir.join("__cluster_metadata-0"),
        voters: config.voters.clone(),
        listener,
        advertised_addr,
        cluster_id: config.cluster_id.clone().or(stored.clone()),
        host: advertised.host.clone(),
        port: advertised.port,
        rack: config.rack.clone(),
        heartbeat_interval: Duration::from_millis(config.broker_heartbeat_interval_ms),
        session_timeout: Duration::from_millis(config.broker_session_timeout_ms),
    };
    let controller = Controller::start(cfg, shutdown)
        .await
        .context("cannot start the metadata controller")?;
    let mut images = controller.subscribe();
    if images.borrow().cluster_id.is_empty() {
        tracing::info!("waiting for the metadata quorum (controller.quorum.voters)");
    }
    let waited = tokio::time::timeout(CLUSTER_ID_WAIT, async {
        while images.borrow_and_update().cluster_id.is_empty() {
            if images.changed().await.is_err() {
                break;
            }
        }
    })
    .await;
    let cluster_id = controller.image().cluster_id.clone();
    if waited.is_err() || cluster_id.is_empty() {
        bail!(
            "no metadata quorum within {CLUSTER_ID_WAIT:?}; are the controller.quorum.voters up?"
        );
    }
    if let Some(have) = stored {
        if have != cluster_id {
            bail!(
                "{} belongs to cluster {have}, but the quorum's cluster is {cluster_id}",
                dir.display()
            );
        }
    }
    Ok(controller)
}

/// The cluster id in meta.properties, if there is one.
fn stored_cluster_id(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("meta.properties")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// One process per data directory: a second broker on the same data would corrupt it.
fn lock_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if file.try_lock().is_err() {
        bail!("{} is in use by another broker process", dir.display());
    }
    Ok(file)
}

/// Kafka's meta.properties: ties a data directory to one node and cluster.
fn write_meta_properties(dir: &Path, node_id: i32, cluster_id: &str) -> anyhow::Result<()> {
    let path = dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let stored = text
            .lines()
            .find_map(|l| l.strip_prefix("node.id="))
            .and_then(|v| v.trim().parse::<i32>().ok());
        if let Some(stored) = stored {
            if stored != node_id {
                bail!(
                    "{} belongs to node {stored}, but node.id is {node_id}; use that id or another log.dirs",
                    dir.display()
                );
            }
            return Ok(());
        }
    }
    let text =
        format!("# written by millrace\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
