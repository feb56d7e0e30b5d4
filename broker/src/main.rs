//! The `broker` binary: runs a node, or one of the command-line tools.

use std::path::PathBuf;

use clap::Parser;
use millrace_broker::node::Node;
use millrace_broker::ServerConfig;
use tokio_util::sync::CancellationToken;

/// Millrace: a Kafka-compatible broker with built-in stream processing.
///
/// Without a subcommand, runs a node. With one, runs a client tool against a
/// running cluster (like Kafka's kafka-topics, console producer/consumer and
/// perf-test tools).
#[derive(Parser)]
#[command(name = "broker", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    tool: Option<millrace_client::cli::Command>,
    /// A server.properties file (Kafka's key names).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides one key of the file (repeatable): --override log.dirs=/data
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(tool) = cli.tool {
        return run_tool(tool);
    }
    let (config, warnings) =
        match ServerConfig::load(cli.config.as_deref(), &cli.overrides, std::env::vars()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        };
    init_logging(config.log_level());
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_tool(tool: millrace_client::cli::Command) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(millrace_client::cli::run(tool)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", millrace_client::cli::error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM that arrives while the node starts (or right
    // after its port opens) must still mean a clean shutdown, not death.
    let shutdown = CancellationToken::new();
    let signals = Signals::install()?;
    let signal = shutdown.clone();
    tokio::spawn(async move {
        signals.wait().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    let node = Node::start(config).await?;
    node.run(shutdown).await;
    Ok(())
}

/// SIGTERM and SIGINT, registered up front.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn init_logging(level: &str) {
    // openraft warns about every stale vote during an ordinary election;
    // its errors still show. RUST_LOG overrides all of this.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=error")));
    // Colours only on a terminal: redirected to a file or a container log,
    // escape codes would garble every line.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .init();
}
