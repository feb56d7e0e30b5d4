//! Start-up and shutdown of one node: data directory, metadata, partitions,
//! listeners and background tasks.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metadata::{Controller, MetadataRecord};
use crate::replica::ReplicaManager;
use crate::{server, tasks, Broker, ServerConfig};

/// A node whose listeners are bound and whose data is open.
pub struct Node {
    pub broker: Arc<Broker>,
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
        let controller = Controller::open(
            &dir.join("__cluster_metadata-0"),
            config.node_id,
            config.cluster_id.as_deref(),
        )
        .context("cannot open the metadata log")?;
        write_meta_properties(&dir, config.node_id, &controller.image().cluster_id)?;
        // A single voter registers and unfences itself; with a quorum the
        // controller's heartbeats do this.
        let adv = config.advertised().clone();
        for record in [
            MetadataRecord::RegisterBroker {
                id: config.node_id,
                incarnation: uuid::Uuid::new_v4(),
                host: adv.host.clone(),
                port: adv.port,
                rack: config.rack.clone(),
            },
            MetadataRecord::UnfenceBroker { id: config.node_id },
        ] {
            controller
                .propose(record)
                .await
                .context("cannot register this broker")?;
        }
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
    pub async fn run(self, shutdown: CancellationToken) {
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
        tracker.spawn(crate::jobs::JobRuntime::new(self.broker.clone()).run(shutdown.clone()));
        tracker.close();
        tracker.wait().await;
        let broker = self.broker.clone();
        let _ = tokio::task::spawn_blocking(move || broker.replicas.close_all()).await;
        tracing::info!("node stopped");
    }
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
