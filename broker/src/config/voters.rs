//! `controller.quorum.voters`: the Raft voters as `id@host:port,...`.

use super::ConfigError;

/// One controller voter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    /// The voter's controller address, `host:port` (IPv6 hosts bracketed).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses and validates the voters list: ids unique and >= 0, hosts given,
/// ports 1–65535.
pub fn parse(key: &str, value: &str) -> Result<Vec<Voter>, ConfigError> {
    let mut voters: Vec<Voter> = Vec::new();
    for item in super::parse::list(value) {
        let bad = |reason: &str| ConfigError::Malformed {
            key: key.to_string(),
            value: item.clone(),
            reason: reason.to_string(),
        };
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| bad("expected id@host:port"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| bad("the id is not a number"))?;
        if id < 0 {
            return Err(bad("ids must be >= 0"));
        }
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected id@host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number in 1-65535"))?;
        if port == 0 {
            return Err(bad("the port must be in 1-65535"));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(bad("the id appears twice"));
        }
        voters.push(Voter {
            id,
            host: host.to_string(),
            port,
        });
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let v = parse("k", "1@a:9093, 2@[::1]:9094").unwrap();
        assert_eq!(
            v[0],
            Voter {
                id: 1,
                host: "a".into(),
                port: 9093
            }
        );
        assert_eq!(v[1].addr(), "[::1]:9094");
        for bad in [
            "1@a:9093,1@b:9093",
            "-1@a:1",
            "x@a:1",
            "1@a",
            "1@a:0",
            "1@:5",
            "1@a:70000",
        ] {
            let e = parse("controller.quorum.voters", bad).unwrap_err();
            assert!(e.to_string().contains("controller.quorum.voters"), "{e}");
        }
        assert!(parse("k", "").unwrap().is_empty());
    }
}
