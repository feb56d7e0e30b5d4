//! Arguments and helpers shared by the commands.

use std::sync::Arc;

use anyhow::Context;
use kafka_protocol::records::Compression;

use crate::{Acks, Client};

/// `--bootstrap-server`, accepted by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct BootstrapArgs {
    /// Broker(s) to bootstrap from, "host:port[,host:port...]".
    #[arg(long, default_value = "localhost:9092", global = true)]
    pub bootstrap_server: String,
}

impl BootstrapArgs {
    pub async fn connect(&self) -> anyhow::Result<Arc<Client>> {
        let client = Client::connect(&self.bootstrap_server)
            .await
            .with_context(|| format!("cannot connect to {}", self.bootstrap_server))?;
        Ok(Arc::new(client))
    }
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// Parses `--acks` (0, 1, -1 or all).
pub fn parse_acks(s: &str) -> Result<Acks, String> {
    Acks::parse(s).ok_or_else(|| format!("'{s}' is not one of 0, 1, -1, all"))
}

/// Parses a `key=value` argument.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not key=value")),
    }
}

/// Prints rows under a header, columns left-aligned and padded to the
/// widest cell (the layout of `kafka-consumer-groups`).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    for line in table_lines(header, rows) {
        say!("{line}");
    }
}

fn table_lines(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            out.push_str(&format!("{cell:<width$}  "));
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(&mut header.iter().copied())];
    for row in rows {
        out.push(line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns() {
        let rows = vec![vec!["group-a".to_owned(), "Stable".to_owned()]];
        assert_eq!(
            table_lines(&["GROUP", "STATE"], &rows),
            vec!["GROUP    STATE", "group-a  Stable"]
        );
    }
}
