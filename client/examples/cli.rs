//! Runs the client commands standalone, the way the `broker` binary embeds
//! them: `cargo run -p millrace-client --example cli -- topic list`.

use std::process::ExitCode;

use clap::Parser;
use millrace_client::cli::{error_line, run, Command};

#[derive(Debug, Parser)]
#[command(name = "millrace-cli", about = "Millrace client tools")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::from(1)
        }
    }
}
