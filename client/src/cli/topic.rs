//! `topic create|list|describe|delete|alter-config`, like `kafka-topics` and `kafka-configs`.

use crate::cli::common::{parse_key_value, BootstrapArgs};
use crate::{AlterConfigOp, Client, ConfigResource, OffsetSpec};

#[derive(Debug, clap::Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[command(subcommand)]
    pub action: TopicAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum TopicAction {
    /// Create a topic.
    Create {
        name: String,
        /// Partition count; the broker's num.partitions if not given.
        #[arg(long)]
        partitions: Option<i32>,
        /// Replicas per partition; the broker's default.replication.factor if not given.
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config override, key=value; repeatable.
        #[arg(long = "config", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topic names.
    List,
    /// Show partitions, leaders, replicas, ISR, offsets and config overrides.
    Describe { name: String },
    /// Delete a topic.
    Delete { name: String },
    /// Set or remove topic config overrides.
    AlterConfig {
        name: String,
        /// key=value to set; repeatable.
        #[arg(long = "set", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Key to remove (back to the broker default); repeatable.
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
    /// Move a partition onto other brokers (`--replicas 4,2,3`, preferred
    /// leader first), cancel a move (`--cancel`), or list the moves in progress.
    Reassign {
        name: Option<String>,
        #[arg(long, requires = "name")]
        partition: Option<i32>,
        /// Target broker ids, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            requires = "partition",
            conflicts_with = "cancel"
        )]
        replicas: Vec<i32>,
        /// Cancel the move of this partition.
        #[arg(long, requires = "partition")]
        cancel: bool,
    },
}

pub async fn run(args: TopicArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    match args.action {
        TopicAction::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let partitions = partitions.unwrap_or(-1);
            let rf = replication_factor.unwrap_or(-1);
            client.create_topic(&name, partitions, rf, &configs).await?;
            say!("Created topic {name}.");
        }
        TopicAction::List => {
            for name in client.list_topics().await? {
                say!("{name}");
            }
        }
        TopicAction::Describe { name } => describe(&client, &name).await?,
        TopicAction::Delete { name } => {
            client.delete_topic(&name).await?;
            say!("Deleted topic {name}.");
        }
        TopicAction::Reassign {
            name,
            partition,
            replicas,
            cancel,
        } => reassign(&client, name, partition, replicas, cancel).await?,
        TopicAction::AlterConfig { name, set, delete } => {
            if set.is_empty() && delete.is_empty() {
                anyhow::bail!("nothing to change: give --set key=value or --delete key");
            }
            client.describe_topic(&name).await?;
            let ops: Vec<AlterConfigOp> = set
                .into_iter()
                .map(|(k, v)| AlterConfigOp::Set(k, v))
                .chain(delete.into_iter().map(AlterConfigOp::Delete))
                .collect();
            client
                .incremental_alter_configs(&ConfigResource::Topic(name.clone()), &ops)
                .await?;
            say!("Updated configs of topic {name}.");
        }
    }
    Ok(())
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

async fn describe(client: &Client, name: &str) -> anyhow::Result<()> {
    let topic = client.describe_topic(name).await?;
    let overrides: Vec<String> = client
        .describe_configs(&ConfigResource::Topic(name.to_owned()))
        .await?
        .into_iter()
        .filter(|c| c.is_topic_override())
        .map(|c| {
            let value = if c.is_sensitive {
                "<sensitive>".to_owned()
            } else {
                c.value.unwrap_or_default()
            };
            format!("{}={value}", c.name)
        })
        .collect();
    say!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        topic.name,
        topic.topic_id,
        topic.partitions.len(),
        topic.partitions.first().map_or(0, |p| p.replicas.len()),
        overrides.join(",")
    );
    for p in &topic.partitions {
        let earliest = client
            .list_offsets(name, p.partition, OffsetSpec::Earliest)
            .await;
        let latest = client
            .list_offsets(name, p.partition, OffsetSpec::Latest)
            .await;
        let show = |r: &Result<crate::ListedOffset, crate::ClientError>| match r {
            Ok(o) => o.offset.to_string(),
            Err(_) => "?".to_owned(),
        };
        say!(
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tEarliest: {}\tLatest: {}",
            topic.name,
            p.partition,
            if p.leader < 0 { "none".to_owned() } else { p.leader.to_string() },
            ids(&p.replicas),
            ids(&p.isr),
            show(&earliest),
            show(&latest),
        );
    }
    Ok(())
}

async fn reassign(
    client: &Client,
    name: Option<String>,
    partition: Option<i32>,
    replicas: Vec<i32>,
    cancel: bool,
) -> anyhow::Result<()> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let metadata = client.refresh_metadata().await?;
    let conn = match client.broker_connection(metadata.controller_id).await {
        Ok(c) => c,
        Err(_) => client.any_connection().await?,
    };
    let (Some(name), Some(partition)) = (name, partition) else {
        let listed = conn
            .send(ListPartitionReassignmentsRequest::default())
            .await?;
        let rows: Vec<Vec<String>> = listed
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let ids = |v: &[BrokerId]| {
                        v.iter()
                            .map(|b| b.0.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    vec![
                        t.name.to_string(),
                        p.partition_index.to_string(),
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ]
                })
            })
            .collect();
        if rows.is_empty() {
            say!("No reassignments in progress.");
        } else {
            crate::cli::common::print_table(
                &["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
                &rows,
            );
        }
        return Ok(());
    };
    if !cancel && replicas.is_empty() {
        anyhow::bail!("give --replicas ID,ID,... or --cancel");
    }
    let target = (!cancel).then(|| replicas.iter().map(|r| BrokerId(*r)).collect());
    let request = AlterPartitionReassignmentsRequest::default()
        .with_allow_replication_factor_change(true)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.clone())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(target)])]);
    let response = conn.send(request).await?;
    for t in &response.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                let err = kafka_protocol::ResponseError::try_from_code(p.error_code)
                    .map(crate::error::kafka_error_name)
                    .unwrap_or_else(|| p.error_code.to_string());
                anyhow::bail!(
                    "{name}-{partition}: {} ({err})",
                    p.error_message.as_deref().unwrap_or("refused")
                );
            }
        }
    }
    if cancel {
        say!("Cancelled the reassignment of {name}-{partition}.");
    } else {
        say!("Reassigning {name}-{partition} to {replicas:?}; `topic reassign` lists moves in progress.");
    }
    Ok(())
}
