//! `processor.jobs.dir`: jobs declared as `*.sql` files, loaded at start
//! (GitOps-style). A file whose job already exists with the same SQL is a
//! no-op; with different SQL it is reported and the running job kept (delete
//! it first to replace it). Bad files are reported, never fatal.

use std::path::Path;

use super::JobAdminError;
use crate::Broker;

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Created(String),
    Unchanged(String),
    /// A job of that name exists with other SQL.
    Differs(String),
    Failed(String),
}

impl Broker {
    /// Creates the jobs of every `*.sql` file under `dir`, in name order.
    pub async fn load_jobs_dir(&self, dir: &Path) -> Vec<(String, Loaded)> {
        let mut files: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect(),
            Err(e) => {
                let msg = format!("cannot read {}: {e}", dir.display());
                return vec![(dir.display().to_string(), Loaded::Failed(msg))];
            }
        };
        files.sort();
        let mut out = Vec::new();
        for path in files {
            let file = path.display().to_string();
            let result = match std::fs::read_to_string(&path) {
                Ok(sql) => self.load_job_sql(&sql).await,
                Err(e) => Loaded::Failed(format!("cannot read: {e}")),
            };
            match &result {
                Loaded::Created(n) => tracing::info!(%file, job = %n, "job loaded"),
                Loaded::Unchanged(_) => {}
                Loaded::Differs(n) => {
                    tracing::warn!(%file, job = %n, "job exists with other SQL; keeping it (delete it to replace)")
                }
                Loaded::Failed(e) => tracing::error!(%file, error = %e, "job file not loaded"),
            }
            out.push((file, result));
        }
        out
    }

    async fn load_job_sql(&self, sql: &str) -> Loaded {
        let name = match millrace_processor::compile(sql) {
            Ok(p) => p.name,
            Err(e) => return Loaded::Failed(JobAdminError::from(e).to_string()),
        };
        if let Some(j) = self.controller.image().job(&name) {
            return if j.sql.trim() == sql.trim() {
                Loaded::Unchanged(name)
            } else {
                Loaded::Differs(name)
            };
        }
        match self.create_job(sql).await {
            Ok(_) => Loaded::Created(name),
            Err(e) => Loaded::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::admin::tests::{broker, WORDCOUNT};

    #[tokio::test]
    async fn loads_sql_files_once() {
        let data = tempfile::tempdir().unwrap();
        let jobs = tempfile::tempdir().unwrap();
        std::fs::write(jobs.path().join("a.sql"), WORDCOUNT).unwrap();
        std::fs::write(jobs.path().join("b.sql"), "CREATE JOB b AS nonsense").unwrap();
        std::fs::write(jobs.path().join("notes.txt"), "not a job").unwrap();
        let b = broker(data.path()).await;
        let r = b.load_jobs_dir(jobs.path()).await;
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1, Loaded::Created("wordcount".into()));
        assert!(
            matches!(&r[1].1, Loaded::Failed(e) if e.contains("line 1")),
            "{r:?}"
        );
        let r = b.load_jobs_dir(jobs.path()).await;
        assert_eq!(r[0].1, Loaded::Unchanged("wordcount".into()));
        std::fs::write(
            jobs.path().join("a.sql"),
            WORDCOUNT.replace("10 seconds", "20 seconds"),
        )
        .unwrap();
        let r = b.load_jobs_dir(jobs.path()).await;
        assert_eq!(r[0].1, Loaded::Differs("wordcount".into()));
        assert_eq!(b.jobs().len(), 1);
        let r = b.load_jobs_dir(&jobs.path().join("missing")).await;
        assert!(matches!(r[0].1, Loaded::Failed(_)));
    }
}
