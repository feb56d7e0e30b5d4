//! `job create|list|describe|pause|resume|delete`: stream processing jobs over
//! the broker's admin HTTP API. The admin address comes from `--admin-url`,
//! else from the broker's `admin.listener` config (DescribeConfigs), else
//! `http://localhost:9644`.

use std::io::Read;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::common::{print_table, BootstrapArgs};
use crate::ConfigResource;

const DEFAULT_ADMIN_URL: &str = "http://localhost:9644";

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    /// The broker's admin API, "http://host:port" (default: the broker's admin.listener).
    #[arg(long, global = true)]
    pub admin_url: Option<String>,
    #[command(subcommand)]
    pub action: JobAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum JobAction {
    /// Submit a job: `CREATE JOB name [WITH (...)] AS INSERT INTO ... SELECT ...`.
    Create {
        /// File holding the statement; without it, read from stdin.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// List jobs with their state and counters.
    List,
    /// Show one job's status and SQL.
    Describe {
        name: String,
    },
    /// Stop consuming until resumed.
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Stop the job and remove it.
    Delete {
        name: String,
    },
}

pub async fn run(args: JobArgs) -> anyhow::Result<()> {
    let url = match &args.admin_url {
        Some(u) => u.clone(),
        None => discover_admin_url(&args.bootstrap).await,
    };
    let (host_port, prefix) = parse_url(&url)?;
    let call = |method: &'static str, path: String, body: String| {
        let host_port = host_port.clone();
        let path = format!("{prefix}{path}");
        async move { request(&host_port, method, &path, &body).await }
    };
    let (status, body) = match &args.action {
        JobAction::Create { file } => {
            let sql = match file {
                Some(f) => std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s
                }
            };
            call("POST", "/v1/jobs".into(), sql).await?
        }
        JobAction::List => call("GET", "/v1/jobs".into(), String::new()).await?,
        JobAction::Describe { name } => {
            call("GET", format!("/v1/jobs/{name}"), String::new()).await?
        }
        JobAction::Pause { name } => {
            call("POST", format!("/v1/jobs/{name}/pause"), String::new()).await?
        }
        JobAction::Resume { name } => {
            call("POST", format!("/v1/jobs/{name}/resume"), String::new()).await?
        }
        JobAction::Delete { name } => {
            call("DELETE", format!("/v1/jobs/{name}"), String::new()).await?
        }
    };
    let value: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&status) {
        let msg = value["error"].as_str().map(str::to_string).unwrap_or(body);
        bail!("{msg}");
    }
    match &args.action {
        JobAction::List => {
            let rows: Vec<Vec<String>> = value
                .as_array()
                .map(|a| a.iter().map(row).collect())
                .unwrap_or_default();
            print_table(
                &[
                    "NAME",
                    "STATE",
                    "INPUT",
                    "OUTPUT",
                    "RECORDS-IN",
                    "RECORDS-OUT",
                    "LATE-DROPPED",
                    "WATERMARK",
                    "LAG",
                ],
                &rows,
            );
        }
        JobAction::Create { .. } => say!("Created job {}.", value["name"].as_str().unwrap_or("?")),
        JobAction::Delete { name } => say!("Deleted job {name}."),
        JobAction::Pause { name } => say!("Paused job {name}."),
        JobAction::Resume { name } => say!("Resumed job {name}."),
        JobAction::Describe { name } => {
            describe(&value);
            members(&args.bootstrap, name).await;
            say!(
                "sql:\n{}",
                value["sql"].as_str().unwrap_or_default().trim_end()
            );
        }
    }
    Ok(())
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn row(j: &serde_json::Value) -> Vec<String> {
    [
        "name",
        "state",
        "source",
        "sink",
        "records_in",
        "records_out",
        "late_dropped",
        "watermark",
        "lag",
    ]
    .iter()
    .map(|k| text(&j[*k]))
    .collect()
}

fn describe(j: &serde_json::Value) {
    for k in [
        "name",
        "state",
        "last_error",
        "source",
        "sink",
        "records_in",
        "records_out",
        "records_in_per_sec",
        "records_out_per_sec",
        "late_dropped",
        "errors",
        "watermark",
        "partitions",
        "lag",
    ] {
        let label = match k {
            "records_in_per_sec" => "in/sec".to_string(),
            "records_out_per_sec" => "out/sec".to_string(),
            k => k.replace('_', "-"),
        };
        say!("{:<14}{}", format!("{label}:"), text(&j[k]));
    }
}

/// The members of the job's consumer group `_job.NAME`, if the broker answers.
async fn members(bootstrap: &BootstrapArgs, name: &str) {
    let group = format!("_job.{name}");
    let described = async {
        let client = bootstrap.connect().await.ok()?;
        client.describe_group(&group).await.ok()
    };
    let Some(d) = described.await else {
        return;
    };
    say!("group:        {group} ({})", d.state);
    let rows: Vec<Vec<String>> = d
        .members
        .iter()
        .map(|m| {
            let parts = m
                .assignment
                .as_ref()
                .map(|a| {
                    a.iter()
                        .map(|(t, p)| format!("{t}-{p}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                m.member_id.clone(),
                m.group_instance_id.clone().unwrap_or_else(|| "-".into()),
                m.client_host.clone(),
                parts,
            ]
        })
        .collect();
    if !rows.is_empty() {
        print_table(&["MEMBER", "INSTANCE", "HOST", "PARTITIONS"], &rows);
    }
}

/// The broker's `admin.listener` as a URL; the default when it cannot be asked.
async fn discover_admin_url(bootstrap: &BootstrapArgs) -> String {
    let found = async {
        let client = bootstrap.connect().await.ok()?;
        let md = client.refresh_metadata().await.ok()?;
        let (id, b) = md.brokers.iter().next()?;
        let entries = client
            .describe_configs(&ConfigResource::Broker(*id))
            .await
            .ok()?;
        let value = entries
            .into_iter()
            .find(|e| e.name == "admin.listener")?
            .value?;
        admin_url_from_listener(&value, &b.host)
    };
    found.await.unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// `host:port` of `admin.listener` as a URL; a wildcard host becomes the broker's host.
pub fn admin_url_from_listener(listener: &str, broker_host: &str) -> Option<String> {
    let listener = listener.trim();
    let (host, port) = listener.rsplit_once(':')?;
    let host = if host.is_empty() || host == "0.0.0.0" || host == "::" || host == "[::]" {
        broker_host
    } else {
        host
    };
    Some(format!("http://{host}:{port}"))
}

/// `http://host:port[/prefix]` -> ("host:port", "/prefix").
pub fn parse_url(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("admin URL '{url}' must start with http://");
    };
    let (host_port, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{}", p.trim_end_matches('/'))),
        None => (rest, String::new()),
    };
    if host_port.is_empty() {
        bail!("admin URL '{url}' has no host");
    }
    let path = if path == "/" { String::new() } else { path };
    Ok((host_port.to_string(), path))
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and body.
async fn request(
    host_port: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(host_port)
        .await
        .with_context(|| format!("cannot connect to the admin API at {host_port}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let out = String::from_utf8_lossy(&out);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP response from {host_port}"))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://localhost:9644").unwrap(),
            ("localhost:9644".to_string(), String::new())
        );
        assert_eq!(
            parse_url("http://h:1/admin/").unwrap(),
            ("h:1".to_string(), "/admin".to_string())
        );
        assert!(parse_url("https://h:1").is_err());
        assert_eq!(
            admin_url_from_listener("0.0.0.0:9644", "b1").as_deref(),
            Some("http://b1:9644")
        );
        assert_eq!(
            admin_url_from_listener("localhost:9644", "b1").as_deref(),
            Some("http://localhost:9644")
        );
        assert_eq!(admin_url_from_listener("", "b1"), None);
    }
}
