//! Parsing of Java-style `.properties` text and of single values.

use super::keys::{Key, Kind};
use super::ConfigError;

/// Parses `.properties` text: `key=value`, `key: value` or `key value`;
/// `#`/`!` comments; a trailing backslash continues the line.
pub fn properties(text: &str) -> Result<Vec<(usize, String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut pending = String::new();
    let mut start_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if pending.is_empty() {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            start_line = i + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':', ' ', '\t']);
        let (k, v) = match split {
            Some(at) => (&entry[..at], &entry[at + 1..]),
            None => (entry.as_str(), ""),
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(ConfigError::Malformed {
                key: String::new(),
                value: entry.clone(),
                reason: format!("line {start_line} has no key"),
            });
        }
        let v = v.trim_start_matches(['=', ':', ' ', '\t']).trim();
        out.push((start_line, k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Checks that `value` parses as the key's kind.
pub fn check(key: &Key, value: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Malformed {
        key: key.name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    match key.kind {
        Kind::Int => value
            .parse::<i32>()
            .map(|_| ())
            .map_err(|_| bad("expected a 32-bit integer")),
        Kind::Long => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| bad("expected a 64-bit integer")),
        Kind::Double => value
            .parse::<f64>()
            .map(|_| ())
            .map_err(|_| bad("expected a number")),
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(bad("expected true or false")),
        },
        Kind::Str | Kind::List => Ok(()),
    }
}

/// Splits a comma-separated list, dropping empty items.
pub fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_separators_comments_and_continuations() {
        let text = "# c\n! c\na=1\nb: 2\nc 3\nd = x,\\\n  y\n\ne=\n";
        let got: Vec<_> = properties(text)
            .unwrap()
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect();
        let want = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "x,y"), ("e", "")];
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }
}
