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
