//! Job lifecycle over the controller: create (compile first), delete, pause, resume.

use std::sync::Arc;

use millrace_processor::Plan;

use super::JobAdminError;
use crate::metadata::{JobImage, MetadataRecord};
use crate::Broker;

impl Broker {
    /// Compiles `sql` and records the job; its name comes from `CREATE JOB name`.
    pub async fn create_job(&self, sql: &str) -> Result<(Arc<JobImage>, Plan), JobAdminError> {
        let plan = millrace_processor::compile(sql)?;
        let name = plan.name.clone();
        let image = self
            .controller
            .propose(MetadataRecord::CreateJob {
                name: name.clone(),
                sql: sql.to_string(),
            })
            .await?;
        let job = image
            .job(&name)
            .cloned()
            .ok_or_else(|| JobAdminError::Unknown(name.clone()))?;
        tracing::info!(job = %name, source = %plan.source, sink = %plan.sink, "job created");
        Ok((job, plan))
    }

    /// Removes a job; its runtime task stops and leaves its group.
    pub async fn delete_job(&self, name: &str) -> Result<(), JobAdminError> {
        self.controller
            .propose(MetadataRecord::DeleteJob {
                name: name.to_string(),
            })
            .await?;
        tracing::info!(job = %name, "job deleted");
        Ok(())
    }

    /// Pauses (stops consuming) or resumes a job.
    pub async fn set_job_paused(&self, name: &str, paused: bool) -> Result<(), JobAdminError> {
        self.controller
            .propose(MetadataRecord::SetJobPaused {
                name: name.to_string(),
                paused,
            })
            .await?;
        tracing::info!(job = %name, paused, "job paused state changed");
        Ok(())
    }

    /// All jobs in the current metadata image.
    pub fn jobs(&self) -> Vec<Arc<JobImage>> {
        self.controller.image().jobs.values().cloned().collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::ServerConfig;
    use crate::metadata::{Controller, ControllerConfig};

    pub(crate) const WORDCOUNT: &str =
        "CREATE JOB wordcount WITH (emit = 'final', grace = '0 seconds') AS
INSERT INTO wordcount_10s
SELECT word, window_start, window_end, count(*) AS n
FROM lines, unnest(split(lower(value), ' ')) AS word
GROUP BY word, tumble(interval '10 seconds');";

    pub(crate) async fn broker(dir: &std::path::Path) -> Broker {
        let (config, _) =
            ServerConfig::load(None, &[format!("log.dirs={}", dir.display())], Vec::new()).unwrap();
        let cfg = ControllerConfig::single(1, dir.join("__cluster_metadata-0"));
        let controller = Controller::start(cfg, Default::default()).await.unwrap();
        let groups = crate::group::GroupCoordinator::new(&config);
        let config = Arc::new(config);
        Broker {
            replicas: crate::replica::ReplicaManager::new(config.clone()),
            config,
            controller,
            groups,
            job_status: Default::default(),
        }
    }

    #[tokio::test]
    async fn create_pause_delete_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = broker(dir.path()).await;
            let (job, plan) = b.create_job(WORDCOUNT).await.unwrap();
            assert_eq!(job.name, "wordcount");
            assert_eq!(
                (plan.source.as_str(), plan.sink.as_str()),
                ("lines", "wordcount_10s")
            );
            assert!(matches!(
                b.create_job(WORDCOUNT).await,
                Err(JobAdminError::Exists(n)) if n == "wordcount"
            ));
            b.set_job_paused("wordcount", true).await.unwrap();
            assert!(matches!(
                b.set_job_paused("nope", true).await,
                Err(JobAdminError::Unknown(_))
            ));
            b.controller.close().await;
        }
        let b = broker(dir.path()).await;
        let jobs = b.jobs();
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].paused && jobs[0].sql == WORDCOUNT);
        b.set_job_paused("wordcount", false).await.unwrap();
        b.delete_job("wordcount").await.unwrap();
        assert!(b.jobs().is_empty());
        assert!(matches!(
            b.delete_job("wordcount").await,
            Err(JobAdminError::Unknown(_))
        ));
    }

    #[tokio::test]
    async fn bad_sql_is_refused_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path()).await;
        let e = b
            .create_job("CREATE JOB x AS INSERT INTO y SELECT value FROM t WHERE (value")
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, JobAdminError::Sql(_)), "{msg}");
        assert!(msg.contains("line 1, column"), "{msg}");
        assert!(b.jobs().is_empty());
    }
}
