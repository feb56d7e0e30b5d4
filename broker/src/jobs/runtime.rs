//! [`JobRuntime`]: keeps one [`JobTask`] running per unpaused job of the
//! metadata image, following `controller.subscribe()`. A job whose task
//! fails or panics is marked failed; other jobs and the broker go on.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::status::JobState;
use super::task::JobTask;
use crate::metadata::JobImage;
use crate::Broker;

/// How long shutdown waits for each job task.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

struct Running {
    job: Arc<JobImage>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// The supervisor of job tasks on this node.
pub struct JobRuntime {
    broker: Arc<Broker>,
    running: HashMap<String, Running>,
}

impl JobRuntime {
    pub fn new(broker: Arc<Broker>) -> Self {
        JobRuntime {
            broker,
            running: HashMap::new(),
        }
    }

    /// Follows the metadata until `shutdown`, then stops every task.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut images = self.broker.controller.subscribe();
        loop {
            let image = images.borrow_and_update().clone();
            self.reconcile(&image.jobs, &shutdown);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = images.changed() => if r.is_err() { break },
            }
        }
        for (name, r) in self.running.drain() {
            r.cancel.cancel();
            if tokio::time::timeout(STOP_WAIT, r.handle).await.is_err() {
                tracing::warn!(job = %name, "job task did not stop in time");
            }
        }
    }

    fn reconcile(
        &mut self,
        jobs: &std::collections::BTreeMap<String, Arc<JobImage>>,
        shutdown: &CancellationToken,
    ) {
        let status = &self.broker.job_status;
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| {
                jobs.get(*name)
                    .is_none_or(|j| j.paused || j.sql != r.job.sql)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(r) = self.running.remove(&name) {
                r.cancel.cancel();
                tracing::info!(job = %name, "stopping job task");
            }
        }
        for s in status.all() {
            if !jobs.contains_key(&s.name) {
                status.remove(&s.name);
            }
        }
        for (name, job) in jobs {
            if job.paused {
                status.update(name, &job.sql, |s| s.state = JobState::Paused);
                continue;
            }
            if self.running.contains_key(name) {
                continue;
            }
            let cancel = shutdown.child_token();
            let task = JobTask {
                broker: self.broker.clone(),
                status: self.broker.job_status.clone(),
                name: name.clone(),
                sql: job.sql.clone(),
                cancel: cancel.clone(),
                shutdown: shutdown.clone(),
            };
            let (board, n, sql) = (self.broker.clone(), name.clone(), job.sql.clone());
            let handle = tokio::spawn(async move {
                if let Err(e) = tokio::spawn(task.run()).await {
                    tracing::error!(job = %n, error = %e, "job task panicked");
                    board.job_status.update(&n, &sql, |s| {
                        s.state = JobState::Failed;
                        s.last_error = Some(format!("job task panicked: {e}"));
                    });
                }
            });
            tracing::info!(job = %name, "started job task");
            self.running.insert(
                name.clone(),
                Running {
                    job: job.clone(),
                    cancel,
                    handle,
                },
            );
        }
    }
}
