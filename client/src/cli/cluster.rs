//! `cluster status`: the metadata quorum (leader, epoch, voters and how far
//! each has replicated) and, per broker, how many partitions it leads and hosts.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cli::common::{print_table, BootstrapArgs};

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[command(subcommand)]
    pub action: ClusterAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterAction {
    /// Show the controller quorum and the brokers with their partition counts.
    Status,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    match args.action {
        ClusterAction::Status => {
            let metadata = client.refresh_metadata().await?;
            // Only the quorum leader (Metadata's controller id) knows how far
            // each voter has replicated.
            let conn = match client.broker_connection(metadata.controller_id).await {
                Ok(c) => c,
                Err(_) => client.any_connection().await?,
            };
            let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
            let response = conn.send(request).await.context("DescribeQuorum failed")?;
            if response.error_code != 0 {
                bail!(
                    "DescribeQuorum failed with error code {}",
                    response.error_code
                );
            }
            let Some(q) = response.topics.first().and_then(|t| t.partitions.first()) else {
                bail!("DescribeQuorum answered without the metadata partition");
            };
            say!(
                "cluster {}  quorum leader {}  epoch {}  high watermark {}",
                metadata.cluster_id.as_deref().unwrap_or("?"),
                q.leader_id.0,
                q.leader_epoch,
                q.high_watermark
            );
            let mut rows = Vec::new();
            for (role, list) in [("voter", &q.current_voters), ("observer", &q.observers)] {
                for r in list {
                    let (end, lag) = if r.log_end_offset < 0 {
                        ("?".to_string(), "?".to_string())
                    } else {
                        let lag = (q.high_watermark - r.log_end_offset).max(0);
                        (r.log_end_offset.to_string(), lag.to_string())
                    };
                    rows.push(vec![r.replica_id.0.to_string(), role.to_string(), end, lag]);
                }
            }
            print_table(&["NODE", "ROLE", "LOG-END", "LAG"], &rows);
            say!("");
            let mut counts: BTreeMap<i32, (usize, usize)> =
                metadata.brokers.keys().map(|id| (*id, (0, 0))).collect();
            for t in metadata.topics.values() {
                for p in &t.partitions {
                    if let Some(c) = counts.get_mut(&p.leader) {
                        c.0 += 1;
                    }
                    for r in &p.replicas {
                        counts.entry(*r).or_default().1 += 1;
                    }
                }
            }
            let rows: Vec<Vec<String>> = counts
                .iter()
                .map(|(id, (leaders, replicas))| {
                    let b = metadata.brokers.get(id);
                    vec![
                        id.to_string(),
                        b.map_or("(not live)".to_string(), |b| b.addr()),
                        b.and_then(|b| b.rack.clone()).unwrap_or_default(),
                        leaders.to_string(),
                        replicas.to_string(),
                    ]
                })
                .collect();
            print_table(&["BROKER", "ADDRESS", "RACK", "LEADERS", "REPLICAS"], &rows);
        }
    }
    Ok(())
}
