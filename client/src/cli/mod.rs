//! Command-line tools the `broker` binary embeds as subcommands, shaped like
//! Kafka's own (`kafka-topics`, `kafka-console-producer`,
//! `kafka-console-consumer`, `kafka-producer-perf-test`,
//! `kafka-consumer-groups`).
//!
//! The binary parses a [`Command`] and calls [`run`]; on `Err` it should print
//! [`error_line`] to stderr and exit with status 1.
//!
//! Modules: [`topic`], [`produce`], [`consume`], [`perf`], [`group`], [`job`],
//! [`cluster`], [`common`], [`datetime`].

/// `println!` that ignores a closed stdout (e.g. piped into `head`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod cluster;
pub mod common;
pub mod consume;
pub mod datetime;
pub mod group;
pub mod job;
pub mod perf;
pub mod produce;
pub mod topic;

pub use consume::ConsumeArgs;
pub use group::GroupArgs;
pub use job::JobArgs;
pub use perf::PerfArgs;
pub use produce::ProduceArgs;
pub use topic::TopicArgs;

/// The client subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create, list, describe, delete topics and alter their configs.
    Topic(TopicArgs),
    /// Produce lines from stdin to a topic.
    Produce(ProduceArgs),
    /// Print records of a topic to stdout.
    Consume(ConsumeArgs),
    /// Load tests: producer and consumer throughput and latency.
    Perf(PerfArgs),
    /// List, describe and delete consumer groups; reset their offsets.
    Group(GroupArgs),
    /// Create, list, describe, pause, resume and delete stream processing jobs.
    Job(JobArgs),
    /// The controller quorum and the brokers.
    Cluster(cluster::ClusterArgs),
}

/// Runs one command to completion.
pub async fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Topic(args) => topic::run(args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Perf(args) => perf::run(args).await,
        Command::Group(args) => group::run(args).await,
        Command::Job(args) => job::run(args).await,
        Command::Cluster(args) => cluster::run(args).await,
    }
}

/// The one-line message to print for a failed command, e.g.
/// `error: topic 'x' does not exist (UNKNOWN_TOPIC_OR_PARTITION)`.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = format!("error: {err}");
    // Add the cause only when it says something the top line does not.
    if let Some(cause) = err.chain().nth(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Command,
    }

    #[test]
    fn command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_kafka_style_arguments() {
        let cli = Cli::try_parse_from([
            "x",
            "topic",
            "create",
            "t1",
            "--partitions",
            "3",
            "--config",
            "retention.ms=1000",
            "--bootstrap-server",
            "h:1",
        ])
        .unwrap();
        let Command::Topic(t) = cli.cmd else {
            panic!("not topic")
        };
        assert_eq!(t.bootstrap.bootstrap_server, "h:1");

        let cli = Cli::try_parse_from([
            "x",
            "consume",
            "t",
            "--from-beginning",
            "--max-messages",
            "5",
        ])
        .unwrap();
        let Command::Consume(c) = cli.cmd else {
            panic!("not consume")
        };
        assert!(c.from_beginning);
        assert_eq!(c.bootstrap.bootstrap_server, "localhost:9092");

        let cli = Cli::try_parse_from([
            "x",
            "perf",
            "produce",
            "--topic",
            "t",
            "--num-records",
            "10",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--compression",
            "zstd",
        ])
        .unwrap();
        assert!(matches!(cli.cmd, Command::Perf(_)));
        assert!(Cli::try_parse_from(["x", "produce", "t", "--acks", "2"]).is_err());
    }

    #[test]
    fn parses_job_commands() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["x", "job"], args].concat());
        let Command::Job(j) = parse(&["create", "--file", "j.sql"]).unwrap().cmd else {
            panic!("not job")
        };
        assert!(matches!(j.action, job::JobAction::Create { file: Some(_) }));
        assert_eq!(j.admin_url, None);
        assert_eq!(j.bootstrap.bootstrap_server, "localhost:9092");
        let Command::Job(j) = parse(&["describe", "wc", "--admin-url", "http://h:1"])
            .unwrap()
            .cmd
        else {
            panic!("not job")
        };
        assert_eq!(j.admin_url.as_deref(), Some("http://h:1"));
        for args in [
            &["list"][..],
            &["pause", "a"],
            &["resume", "a"],
            &["delete", "a"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        assert!(parse(&["pause"]).is_err());
    }

    #[test]
    fn parses_group_commands() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["x", "group"], args].concat());
        assert!(parse(&["list", "--state", "Stable"]).is_ok());
        assert!(parse(&["describe", "g"]).is_ok());
        let ok = parse(&["reset-offsets", "g", "--topic", "t:0,1", "--shift-by", "-2"]).unwrap();
        let Command::Group(g) = ok.cmd else {
            panic!("not group")
        };
        let group::GroupAction::ResetOffsets(r) = g.action else {
            panic!("not reset")
        };
        assert_eq!(r.target.shift_by, Some(-2));
        assert!(!r.execute);
        // Exactly one target; --execute and --dry-run exclude each other.
        assert!(parse(&["reset-offsets", "g", "--topic", "t"]).is_err());
        assert!(parse(&[
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest"
        ])
        .is_err());
        assert!(parse(&[
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-latest",
            "--execute",
            "--dry-run"
        ])
        .is_err());
        assert!(parse(&[
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-datetime",
            "soon"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["x", "consume", "t", "--group", "g", "--partition", "0"]).is_err()
        );
    }

    #[test]
    fn error_line_is_one_line() {
        let e = anyhow::Error::new(crate::ClientError::UnknownTopic("x".into()));
        assert_eq!(
            error_line(&e),
            "error: topic 'x' does not exist (UNKNOWN_TOPIC_OR_PARTITION)"
        );
    }
}
