//! `Value`: what expressions evaluate to, with SQL-style comparison and JSON encoding.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// A value flowing through expressions, group keys and aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Json(serde_json::Value),
}

impl Value {
    /// A record field: text when it is UTF-8, bytes otherwise.
    pub fn from_field(bytes: Option<&[u8]>) -> Value {
        match bytes {
            None => Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::String(s.to_owned()),
                Err(_) => Value::Bytes(b.to_vec()),
            },
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// SQL truthiness: only `true` passes a filter.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true))
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "bigint",
            Value::Float(_) => "double",
            Value::String(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Json(_) => "json",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Json(serde_json::Value::Number(n)) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::String(s) => s.trim().parse().ok(),
            Value::Json(serde_json::Value::Number(n)) => n.as_i64(),
            _ => None,
        }
    }

    /// Compare two values the SQL way: `None` when either is null or the types do not compare.
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
            (Value::String(a), Value::Bytes(b)) => Some(a.as_bytes().cmp(b)),
            (Value::Bytes(a), Value::String(b)) => Some(a.as_slice().cmp(b.as_bytes())),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.sql_cmp(y)? {
                        Ordering::Equal => continue,
                        o => return Some(o),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            (Value::Json(a), Value::Json(b)) => Some(a.to_string().cmp(&b.to_string())),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    /// A total order for sorting rows (nulls first, then by type, then by value).
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        if let Some(o) = self.sql_cmp(other) {
            return o;
        }
        self.rank().cmp(&other.rank())
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::String(_) | Value::Bytes(_) => 3,
            Value::Array(_) => 4,
            Value::Json(_) => 5,
        }
    }

    /// Text form used by string functions and plain-string keys.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Json(serde_json::Value::String(s)) => Some(s.clone()),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            other => Some(other.to_json_string()),
        }
    }

    /// Append the JSON encoding of this value (bytes as lossy UTF-8 text).
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => out.push_str("null"),
            },
            Value::String(s) => write_json_str(s, out),
            Value::Bytes(b) => write_json_str(&String::from_utf8_lossy(b), out),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Value::Json(j) => {
                let _ = write!(out, "{j}");
            }
        }
    }

    pub fn to_json_string(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    /// A JSON scalar/structure read by `json_value` or `->` becomes a SQL value.
    pub fn from_json(j: &serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => n.as_f64().map(Value::Float).unwrap_or(Value::Null),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            other => Value::Json(other.clone()),
        }
    }
}

/// Append `s` as a quoted JSON string.
pub fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_encoding_escapes_and_orders() {
        let v = Value::Array(vec![
            Value::String("a\"b".into()),
            Value::Int(3),
            Value::Float(1.5),
            Value::Null,
        ]);
        assert_eq!(v.to_json_string(), r#"["a\"b",3,1.5,null]"#);
    }

    #[test]
    fn numeric_comparison_crosses_int_and_float() {
        assert_eq!(
            Value::Int(2).sql_cmp(&Value::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(Value::Null.sql_cmp(&Value::Int(1)), None);
    }
}
