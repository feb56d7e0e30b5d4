//! `config/server.properties` documents every key and loads as it stands.

use millrace_broker::config::keys::{Effect, KEYS};
use millrace_broker::ServerConfig;

#[test]
fn sample_documents_every_key_and_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/server.properties");
    let text = std::fs::read_to_string(path).unwrap();
    for k in KEYS {
        let listed = match k.effect {
            Effect::Used => format!("#{}=", k.name),
            Effect::Ignored => format!("#   {}", k.name),
        };
        assert!(
            text.contains(&listed),
            "config/server.properties does not document {}",
            k.name
        );
    }
    // Uncommented, the documented defaults must be a valid configuration too.
    let dir = tempfile::tempdir().unwrap();
    let uncommented: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.contains('=') && !l.trim_end().ends_with('=') && !l.starts_with(' '))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = dir.path().join("all.properties");
    std::fs::write(&file, uncommented).unwrap();
    ServerConfig::load(Some(&file), &[], Vec::new()).unwrap();
    ServerConfig::load(Some(std::path::Path::new(path)), &[], Vec::new()).unwrap();
}
