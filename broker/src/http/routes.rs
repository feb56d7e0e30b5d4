//! The admin API's routes: request in, response out, no I/O of its own.

use std::fmt::Write;

use super::{Request, Response};
use crate::jobs::{JobAdminError, JobState, JobStatus};
use crate::Broker;

/// Answers one admin request.
pub async fn handle(broker: &Broker, req: &Request) -> Response {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["healthz"]) => Response::text(200, "ok\n"),
        ("GET", ["metrics"]) => Response::text(200, metrics(broker)),
        ("GET", ["v1", "jobs"]) => Response::json(200, &job_list(broker)),
        ("POST", ["v1", "jobs"]) => {
            let Ok(sql) = std::str::from_utf8(&req.body) else {
                return Response::error(400, "the body must be the job's SQL as UTF-8 text");
            };
            match broker.create_job(sql).await {
                Ok((job, _)) => {
                    Response::json(201, &status_of(broker, &job.name, &job.sql, job.paused))
                }
                Err(e) => admin_error(e),
            }
        }
        ("GET", ["v1", "jobs", name]) => match broker.controller.image().job(name) {
            Some(j) => Response::json(200, &status_of(broker, &j.name, &j.sql, j.paused)),
            None => Response::error(404, format!("job '{name}' does not exist")),
        },
        ("DELETE", ["v1", "jobs", name]) => match broker.delete_job(name).await {
            Ok(()) => Response::json(200, &serde_json::json!({ "deleted": name })),
            Err(e) => admin_error(e),
        },
        ("POST", ["v1", "jobs", name, action @ ("pause" | "resume")]) => {
            match broker.set_job_paused(name, *action == "pause").await {
                Ok(()) => {
                    let j = broker.controller.image().job(name).cloned();
                    match j {
                        Some(j) => {
                            Response::json(200, &status_of(broker, &j.name, &j.sql, j.paused))
                        }
                        None => Response::error(404, format!("job '{name}' does not exist")),
                    }
                }
                Err(e) => admin_error(e),
            }
        }
        (_, ["healthz" | "metrics"]) | (_, ["v1", "jobs", ..]) => Response::error(
            405,
            format!("{} is not allowed on {}", req.method, req.path),
        ),
        _ => Response::error(404, format!("no route for {}", req.path)),
    }
}

fn admin_error(e: JobAdminError) -> Response {
    let status = match &e {
        JobAdminError::Sql(_) => 400,
        JobAdminError::Exists(_) => 409,
        JobAdminError::Unknown(_) => 404,
        JobAdminError::Metadata(_) => 500,
    };
    Response::error(status, e.to_string())
}

/// The runtime's status of a job, or a fresh one when its task has not reported yet.
fn status_of(broker: &Broker, name: &str, sql: &str, paused: bool) -> JobStatus {
    let mut s = broker
        .job_status
        .get(name)
        .unwrap_or_else(|| JobStatus::new(name, sql));
    if paused {
        s.state = JobState::Paused;
    }
    s
}

fn job_list(broker: &Broker) -> Vec<JobStatus> {
    broker
        .controller
        .image()
        .jobs
        .values()
        .map(|j| status_of(broker, &j.name, &j.sql, j.paused))
        .collect()
}

/// Prometheus text exposition.
pub fn metrics(broker: &Broker) -> String {
    let image = broker.controller.image();
    let partitions: u64 = image.topics.values().map(|t| t.partitions as u64).sum();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP millrace_partitions Partitions of all topics.");
    let _ = writeln!(out, "# TYPE millrace_partitions gauge");
    let _ = writeln!(out, "millrace_partitions {partitions}");
    let _ = writeln!(out, "# HELP millrace_topics Topics in the cluster.");
    let _ = writeln!(out, "# TYPE millrace_topics gauge");
    let _ = writeln!(out, "millrace_topics {}", image.topics.len());
    let jobs = job_list(broker);
    type Metric = (
        &'static str,
        &'static str,
        &'static str,
        fn(&JobStatus) -> Option<i64>,
    );
    let series: [Metric; 6] = [
        (
            "millrace_job_records_in_total",
            "counter",
            "Input records processed.",
            |s| Some(s.records_in as i64),
        ),
        (
            "millrace_job_records_out_total",
            "counter",
            "Results written.",
            |s| Some(s.records_out as i64),
        ),
        (
            "millrace_job_late_dropped_total",
            "counter",
            "Records too late for their window, dropped.",
            |s| Some(s.late_dropped as i64),
        ),
        (
            "millrace_job_errors_total",
            "counter",
            "Records that failed.",
            |s| Some(s.errors as i64),
        ),
        (
            "millrace_job_watermark_ms",
            "gauge",
            "Watermark up to which windows are closed (ms since the epoch).",
            |s| s.watermark,
        ),
        (
            "millrace_job_lag",
            "gauge",
            "Input records behind the job's position.",
            |s| Some(s.lag),
        ),
    ];
    for (name, kind, help, get) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in &jobs {
            if let Some(v) = get(s) {
                let _ = writeln!(out, "{name}{{job=\"{}\"}} {v}", escape(&s.name));
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP millrace_job_running Whether the job is running (1) or not (0)."
    );
    let _ = writeln!(out, "# TYPE millrace_job_running gauge");
    for s in &jobs {
        let up = u8::from(s.state == JobState::Running);
        let _ = writeln!(
            out,
            "millrace_job_running{{job=\"{}\"}} {up}",
            escape(&s.name)
        );
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::admin::tests::{broker, WORDCOUNT};

    fn req(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn json(r: &Response) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[tokio::test]
    async fn jobs_api() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path()).await;
        assert_eq!(handle(&b, &req("GET", "/healthz", "")).await.status, 200);
        let r = handle(&b, &req("POST", "/v1/jobs", WORDCOUNT)).await;
        assert_eq!(r.status, 201);
        assert_eq!(json(&r)["name"], "wordcount");
        assert_eq!(json(&r)["sink"], "wordcount_10s");
        assert_eq!(
            handle(&b, &req("POST", "/v1/jobs", WORDCOUNT)).await.status,
            409
        );
        let bad = handle(
            &b,
            &req(
                "POST",
                "/v1/jobs",
                "CREATE JOB x AS INSERT INTO y SELECT value FROM t WHERE (value",
            ),
        )
        .await;
        assert_eq!(bad.status, 400);
        assert!(json(&bad)["error"]
            .as_str()
            .unwrap()
            .contains("line 1, column"));
        let list = json(&handle(&b, &req("GET", "/v1/jobs", "")).await);
        assert_eq!(list.as_array().unwrap().len(), 1);
        let r = handle(&b, &req("POST", "/v1/jobs/wordcount/pause", "")).await;
        assert_eq!(json(&r)["state"], "paused");
        let r = handle(&b, &req("GET", "/v1/jobs/wordcount", "")).await;
        assert_eq!(json(&r)["state"], "paused");
        assert_eq!(
            handle(&b, &req("POST", "/v1/jobs/wordcount/resume", ""))
                .await
                .status,
            200
        );
        assert_eq!(
            handle(&b, &req("GET", "/v1/jobs/nope", "")).await.status,
            404
        );
        assert_eq!(
            handle(&b, &req("DELETE", "/v1/jobs/wordcount", ""))
                .await
                .status,
            200
        );
        assert_eq!(
            handle(&b, &req("DELETE", "/v1/jobs/wordcount", ""))
                .await
                .status,
            404
        );
        assert_eq!(handle(&b, &req("PUT", "/v1/jobs", "")).await.status, 405);
    }

    #[tokio::test]
    async fn metrics_page() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path()).await;
        b.create_job(WORDCOUNT).await.unwrap();
        b.job_status.update("wordcount", WORDCOUNT, |s| {
            s.records_in = 7;
            s.watermark = Some(10_000);
        });
        let m = metrics(&b);
        assert!(m.contains("millrace_partitions 0\n"), "{m}");
        assert!(
            m.contains("millrace_job_records_in_total{job=\"wordcount\"} 7\n"),
            "{m}"
        );
        assert!(
            m.contains("millrace_job_watermark_ms{job=\"wordcount\"} 10000\n"),
            "{m}"
        );
    }
}
