//! `group list|describe|delete|reset-offsets`, like `kafka-consumer-groups`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};

use crate::cli::common::{print_table, BootstrapArgs};
use crate::cli::datetime::parse_datetime_ms;
use crate::group::{GroupDescription, Offsets};
use crate::{Client, OffsetSpec};

#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[command(subcommand)]
    pub action: GroupAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum GroupAction {
    /// List groups with their state and protocol type.
    List {
        /// Only groups in this state (e.g. Stable, Empty); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
    },
    /// Show a group's state, members and assignment, and per partition the
    /// committed offset, log end offset and lag.
    Describe { group: String },
    /// Delete a group without members, with its committed offsets.
    Delete { group: String },
    /// Change a group's committed offsets (only while it has no members).
    ResetOffsets(ResetArgs),
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    pub group: String,
    /// Topic to reset, "TOPIC" for all partitions or "TOPIC:0,2"; repeatable.
    #[arg(long, required = true)]
    pub topic: Vec<String>,
    #[command(flatten)]
    pub target: ResetTarget,
    /// Apply the change (without it, only print the plan).
    #[arg(long)]
    pub execute: bool,
    /// Only print the plan (the default; for scripts that want to say so).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
}

/// Exactly one of Kafka's reset scenarios.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ResetTarget {
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (clamped into the log).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// To the first offset at or after this time, e.g. 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime_ms)]
    pub to_datetime: Option<i64>,
    /// Move the committed offset by N (may be negative; clamped into the log).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let client = args.bootstrap.connect().await?;
    match args.action {
        GroupAction::List { states } => {
            let rows: Vec<Vec<String>> = client
                .list_groups(&states)
                .await?
                .into_iter()
                .map(|g| vec![g.group_id, dash(g.state), dash(g.protocol_type)])
                .collect();
            print_table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows);
        }
        GroupAction::Describe { group } => describe(&client, &group).await?,
        GroupAction::Delete { group } => {
            client
                .delete_groups(&[&group])
                .await
                .with_context(|| format!("deletion of consumer group '{group}' failed"))?;
            say!("Deletion of requested consumer groups ('{group}') was successful.");
        }
        GroupAction::ResetOffsets(args) => reset_offsets(&client, args).await?,
    }
    Ok(())
}

fn dash(s: String) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s
    }
}

/// "t(0,1),u(3)": an assignment as Kafka's `--members --verbose` prints it.
fn assignment_text(partitions: &BTreeMap<String, Vec<i32>>) -> String {
    let text: Vec<String> = partitions
        .iter()
        .map(|(t, ps)| {
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}({})", ps.join(","))
        })
        .collect();
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.join(",")
    }
}

async fn describe(client: &Client, group: &str) -> anyhow::Result<()> {
    let desc = client.describe_group(group).await?;
    let committed = client.committed_offsets(group, None).await?;
    if desc.state == "Dead" && committed.is_empty() {
        bail!("consumer group '{group}' does not exist");
    }
    let c = &desc.coordinator;
    print_table(
        &[
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS",
        ],
        &[vec![
            group.to_owned(),
            format!("{}:{} ({})", c.host, c.port, c.node_id),
            dash(desc.protocol.clone()),
            desc.state.clone(),
            desc.members.len().to_string(),
        ]],
    );
    say!("");
    if desc.members.is_empty() {
        say!("Consumer group '{group}' has no active members.");
    } else {
        let rows: Vec<Vec<String>> = desc
            .members
            .iter()
            .map(|m| {
                let parts = m
                    .assignment
                    .as_ref()
                    .map(|a| a.partitions.clone())
                    .unwrap_or_default();
                vec![
                    group.to_owned(),
                    m.member_id.clone(),
                    dash(m.group_instance_id.clone().unwrap_or_default()),
                    m.client_host.clone(),
                    m.client_id.clone(),
                    parts.values().map(Vec::len).sum::<usize>().to_string(),
                    assignment_text(&parts),
                ]
            })
            .collect();
        print_table(
            &[
                "GROUP",
                "CONSUMER-ID",
                "GROUP-INSTANCE-ID",
                "HOST",
                "CLIENT-ID",
                "#PARTITIONS",
                "ASSIGNMENT",
            ],
            &rows,
        );
    }
    say!("");
    let rows = offset_rows(client, &desc, &committed).await;
    print_table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    );
    Ok(())
}

/// One row per partition that is assigned or has a committed offset.
async fn offset_rows(
    client: &Client,
    desc: &GroupDescription,
    committed: &Offsets,
) -> Vec<Vec<String>> {
    let mut owner = BTreeMap::new();
    for m in &desc.members {
        for (t, p) in m.assignment.iter().flat_map(|a| a.iter()) {
            owner.insert((t.to_owned(), p), m);
        }
    }
    let partitions: BTreeSet<(String, i32)> = owner
        .keys()
        .cloned()
        .chain(committed.keys().cloned())
        .collect();
    let mut rows = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let current = committed.get(&(topic.clone(), partition)).copied();
        let end = client
            .list_offsets(&topic, partition, OffsetSpec::Latest)
            .await
            .ok()
            .map(|o| o.offset);
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => "-".to_owned(),
        };
        let show = |o: Option<i64>| o.map_or("-".to_owned(), |o| o.to_string());
        let m = owner.get(&(topic.clone(), partition));
        rows.push(vec![
            desc.group_id.clone(),
            topic,
            partition.to_string(),
            show(current),
            show(end),
            lag,
            m.map_or("-".to_owned(), |m| m.member_id.clone()),
            m.map_or("-".to_owned(), |m| m.client_host.clone()),
            m.map_or("-".to_owned(), |m| m.client_id.clone()),
        ]);
    }
    rows
}

/// "t" -> every partition of t; "t:0,2" -> those.
async fn expand_topics(client: &Client, specs: &[String]) -> anyhow::Result<Vec<(String, i32)>> {
    let mut out = BTreeSet::new();
    for spec in specs {
        let (topic, list) = match spec.split_once(':') {
            Some((t, l)) => (t, Some(l)),
            None => (spec.as_str(), None),
        };
        let meta = client.topic_metadata(topic).await?;
        match list {
            None => out.extend(
                meta.partitions
                    .iter()
                    .map(|p| (topic.to_owned(), p.partition)),
            ),
            Some(list) => {
                for p in list.split(',') {
                    let p: i32 = p
                        .trim()
                        .parse()
                        .with_context(|| format!("bad partition list in '{spec}'"))?;
                    meta.partition(p)?;
                    out.insert((topic.to_owned(), p));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

async fn reset_offsets(client: &Client, args: ResetArgs) -> anyhow::Result<()> {
    let group = args.group.as_str();
    let desc = client.describe_group(group).await?;
    if !desc.is_inactive() {
        bail!(
            "assignments can only be reset if the group '{group}' is inactive, but the current state is {} ({} members)",
            desc.state,
            desc.members.len()
        );
    }
    let partitions = expand_topics(client, &args.topic).await?;
    let committed = client.committed_offsets(group, None).await?;
    let mut plan = Offsets::new();
    for (topic, partition) in partitions {
        let offset = target_offset(client, &args.target, &committed, &topic, partition).await?;
        plan.insert((topic, partition), offset);
    }
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|((t, p), o)| vec![group.to_owned(), t.clone(), p.to_string(), o.to_string()])
        .collect();
    if args.execute {
        client.alter_committed_offsets(group, &plan).await?;
    } else if !args.dry_run {
        eprintln!(
            "WARN: no action will be performed as the --execute option is missing (dry run)."
        );
    }
    say!("");
    print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
    Ok(())
}

async fn target_offset(
    client: &Client,
    target: &ResetTarget,
    committed: &Offsets,
    topic: &str,
    partition: i32,
) -> anyhow::Result<i64> {
    let list =
        |spec| async move { anyhow::Ok(client.list_offsets(topic, partition, spec).await?.offset) };
    let clamp = |o: i64| async move {
        let (start, end) = (
            list(OffsetSpec::Earliest).await?,
            list(OffsetSpec::Latest).await?,
        );
        if o < start || o > end {
            eprintln!("WARN: offset {o} of {topic}-{partition} is outside [{start}, {end}]; using the nearest end.");
        }
        anyhow::Ok(o.clamp(start, end))
    };
    if target.to_earliest {
        return list(OffsetSpec::Earliest).await;
    }
    if target.to_latest {
        return list(OffsetSpec::Latest).await;
    }
    if let Some(o) = target.to_offset {
        return clamp(o).await;
    }
    if let Some(ts) = target.to_datetime {
        return match list(OffsetSpec::Timestamp(ts)).await? {
            o if o >= 0 => Ok(o),
            _ => list(OffsetSpec::Latest).await,
        };
    }
    if let Some(n) = target.shift_by {
        let Some(&current) = committed.get(&(topic.to_owned(), partition)) else {
            bail!("group has no committed offset for {topic}-{partition} to shift from");
        };
        return clamp(current.saturating_add(n)).await;
    }
    bail!("give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by")
}
