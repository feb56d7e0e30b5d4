//! Scalar functions: string, regex, JSON and array functions.

use std::sync::Arc;

use crate::error::RecordError;
use crate::expr::{Column, Expr, Row};
use crate::value::Value;

/// One step of a `json_value` path (`$.a.b[0]`).
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Field(String),
    Index(usize),
}

/// A scalar function, with constant arguments (regex, JSON path) compiled once.
#[derive(Debug, Clone)]
pub enum Func {
    Lower,
    Upper,
    Length,
    Trim,
    Ltrim,
    Rtrim,
    SplitPart,
    StartsWith,
    EndsWith,
    Contains,
    Strpos,
    Concat,
    Replace,
    Substr,
    Coalesce,
    Abs,
    Split,
    RegexpMatch(Arc<regex::Regex>),
    JsonValue(Arc<Vec<PathStep>>),
}

impl Func {
    /// The function for a (lower-case) SQL name and its argument count, without the ones that
    /// need constant arguments (`regexp_match`, `json_value`).
    pub fn simple(name: &str) -> Option<(Func, usize, usize)> {
        Some(match name {
            "lower" => (Func::Lower, 1, 1),
            "upper" => (Func::Upper, 1, 1),
            "length" | "char_length" => (Func::Length, 1, 1),
            "trim" | "btrim" => (Func::Trim, 1, 1),
            "ltrim" => (Func::Ltrim, 1, 1),
            "rtrim" => (Func::Rtrim, 1, 1),
            "split_part" => (Func::SplitPart, 3, 3),
            "starts_with" => (Func::StartsWith, 2, 2),
            "ends_with" => (Func::EndsWith, 2, 2),
            "contains" => (Func::Contains, 2, 2),
            "strpos" => (Func::Strpos, 2, 2),
            "concat" => (Func::Concat, 1, usize::MAX),
            "replace" => (Func::Replace, 3, 3),
            "substr" | "substring" => (Func::Substr, 2, 3),
            "coalesce" => (Func::Coalesce, 1, usize::MAX),
            "abs" => (Func::Abs, 1, 1),
            "split" | "string_to_array" => (Func::Split, 2, 2),
            _ => return None,
        })
    }
}

/// Parse `$.a.b[0]` into steps.
pub fn parse_json_path(path: &str) -> Option<Vec<PathStep>> {
    let rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                if name.is_empty() {
                    return None;
                }
                steps.push(PathStep::Field(name));
            }
            '[' => {
                let mut inner = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    inner.push(n);
                }
                let inner = inner.trim();
                if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                    steps.push(PathStep::Field(q.to_owned()));
                } else if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    steps.push(PathStep::Field(q.to_owned()));
                } else {
                    steps.push(PathStep::Index(inner.parse().ok()?));
                }
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn walk<'j>(mut j: &'j serde_json::Value, steps: &[PathStep]) -> Option<&'j serde_json::Value> {
    for s in steps {
        j = match s {
            PathStep::Field(f) => j.get(f)?,
            PathStep::Index(i) => j.get(i)?,
        };
    }
    Some(j)
}

/// Text of a value for a function that needs text; non-UTF-8 bytes are a record error.
pub fn text_arg(v: Value, func: &str) -> Result<String, RecordError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Bytes(_) => Err(RecordError::new(format!("{func}: value is not UTF-8 text"))),
        Value::Json(serde_json::Value::String(s)) => Ok(s),
        other => Ok(other.to_text().unwrap_or_default()),
    }
}

fn int_arg(v: &Value, func: &str) -> Result<i64, RecordError> {
    v.as_i64().ok_or_else(|| {
        RecordError::new(format!(
            "{func}: expected an integer, got {}",
            v.type_name()
        ))
    })
}

/// Evaluate a function call; nulls in make the result null unless the function says otherwise.
pub fn call(f: &Func, args: &[Expr], row: &Row<'_, '_>) -> Result<Value, RecordError> {
    if let Func::JsonValue(path) = f {
        return json_value(path, args, row);
    }
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(a.eval(row)?);
    }
    match f {
        Func::Concat => {
            let mut s = String::new();
            for v in vals {
                if !v.is_null() {
                    s.push_str(&text_arg(v, "concat")?);
                }
            }
            return Ok(Value::String(s));
        }
        Func::Coalesce => {
            return Ok(vals
                .into_iter()
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null))
        }
        _ => {}
    }
    if vals.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let mut it = vals.into_iter();
    let mut next = || it.next().unwrap_or(Value::Null);
    let name = || format!("{f:?}").to_lowercase();
    Ok(match f {
        Func::Lower => Value::String(text_arg(next(), "lower")?.to_lowercase()),
        Func::Upper => Value::String(text_arg(next(), "upper")?.to_uppercase()),
        Func::Length => match next() {
            Value::Array(a) => Value::Int(a.len() as i64),
            Value::Bytes(b) => Value::Int(b.len() as i64),
            v => Value::Int(text_arg(v, "length")?.chars().count() as i64),
        },
        Func::Trim => Value::String(text_arg(next(), "trim")?.trim().to_owned()),
        Func::Ltrim => Value::String(text_arg(next(), "ltrim")?.trim_start().to_owned()),
        Func::Rtrim => Value::String(text_arg(next(), "rtrim")?.trim_end().to_owned()),
        Func::SplitPart => {
            let (s, sep, n) = (
                text_arg(next(), "split_part")?,
                text_arg(next(), "split_part")?,
                next(),
            );
            let n = int_arg(&n, "split_part")?;
            if n < 1 {
                return Err(RecordError::new(
                    "split_part: field position must be greater than zero",
                ));
            }
            let part = if sep.is_empty() {
                (n == 1).then_some(s.as_str())
            } else {
                s.split(sep.as_str()).nth((n - 1) as usize)
            };
            Value::String(part.unwrap_or("").to_owned())
        }
        Func::StartsWith => {
            let (s, p) = (
                text_arg(next(), "starts_with")?,
                text_arg(next(), "starts_with")?,
            );
            Value::Bool(s.starts_with(&p))
        }
        Func::EndsWith => {
            let (s, p) = (
                text_arg(next(), "ends_with")?,
                text_arg(next(), "ends_with")?,
            );
            Value::Bool(s.ends_with(&p))
        }
        Func::Contains => match next() {
            Value::Array(items) => {
                let needle = next();
                Value::Bool(
                    items
                        .iter()
                        .any(|i| i.sql_cmp(&needle) == Some(std::cmp::Ordering::Equal)),
                )
            }
            v => {
                let (s, p) = (text_arg(v, "contains")?, text_arg(next(), "contains")?);
                Value::Bool(s.contains(&p))
            }
        },
        Func::Strpos => {
            let (s, p) = (text_arg(next(), "strpos")?, text_arg(next(), "strpos")?);
            Value::Int(s.find(&p).map_or(0, |i| s[..i].chars().count() as i64 + 1))
        }
        Func::Replace => {
            let (s, from, to) = (
                text_arg(next(), "replace")?,
                text_arg(next(), "replace")?,
                text_arg(next(), "replace")?,
            );
            Value::String(if from.is_empty() {
                s
            } else {
                s.replace(&from, &to)
            })
        }
        Func::Substr => {
            let s = text_arg(next(), "substr")?;
            let start = int_arg(&next(), "substr")?;
            let len = match next() {
                Value::Null => None,
                v => Some(int_arg(&v, "substr")?),
            };
            let skip = (start - 1).max(0) as usize;
            let take = len.map_or(usize::MAX, |l| (l + (start - 1).min(0)).max(0) as usize);
            Value::String(s.chars().skip(skip).take(take).collect())
        }
        Func::Abs => match next() {
            Value::Int(i) => Value::Int(i.wrapping_abs()),
            v => Value::Float(
                v.as_f64()
                    .ok_or_else(|| RecordError::new("abs: expected a number"))?
                    .abs(),
            ),
        },
        Func::Split => {
            let (s, sep) = (text_arg(next(), "split")?, text_arg(next(), "split")?);
            if sep.is_empty() {
                Value::Array(vec![Value::String(s)])
            } else {
                Value::Array(
                    s.split(sep.as_str())
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                )
            }
        }
        Func::RegexpMatch(re) => {
            let s = text_arg(next(), "regexp_match")?;
            match re.captures(&s) {
                None => Value::Null,
                Some(c) if c.len() == 1 => Value::Array(vec![Value::String(c[0].to_owned())]),
                Some(c) => Value::Array(
                    c.iter()
                        .skip(1)
                        .map(|m| m.map_or(Value::Null, |m| Value::String(m.as_str().to_owned())))
                        .collect(),
                ),
            }
        }
        Func::Concat | Func::Coalesce | Func::JsonValue(_) => {
            return Err(RecordError::new(format!(
                "{} evaluated out of place",
                name()
            )))
        }
    })
}

/// `json_value(doc, '$.path')`: the scalar at the path. The document must be valid JSON and the
/// path must exist (a missing field is a record error, handled by `on_error`).
fn json_value(path: &[PathStep], args: &[Expr], row: &Row<'_, '_>) -> Result<Value, RecordError> {
    let Some(doc) = args.first() else {
        return Err(RecordError::new("json_value: missing argument"));
    };
    let owned;
    let json: &serde_json::Value = match (doc, row) {
        (Expr::Col(Column::Value), Row::Input(r)) => r.value_json()?,
        _ => {
            owned = to_json_doc(doc.eval(row)?)?;
            match &owned {
                Some(j) => j,
                None => return Ok(Value::Null),
            }
        }
    };
    match walk(json, path) {
        Some(serde_json::Value::Object(_)) | Some(serde_json::Value::Array(_)) => Ok(Value::Null),
        Some(j) => Ok(Value::from_json(j)),
        None => Err(RecordError::new(format!(
            "missing field {}",
            display_path(path)
        ))),
    }
}

fn display_path(path: &[PathStep]) -> String {
    let mut s = String::from("$");
    for p in path {
        match p {
            PathStep::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            PathStep::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn to_json_doc(v: Value) -> Result<Option<serde_json::Value>, RecordError> {
    match v {
        Value::Null => Ok(None),
        Value::Json(j) => Ok(Some(j)),
        Value::String(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| RecordError::new(format!("value is not valid JSON: {e}"))),
        Value::Bytes(_) => Err(RecordError::new("value is not UTF-8 text")),
        other => Ok(Some(
            serde_json::from_str(&other.to_json_string()).unwrap_or(serde_json::Value::Null),
        )),
    }
}

/// Postgres `->` / `->>`: a field (text operand) or element (integer operand); null when absent.
pub fn json_arrow(
    a: &Expr,
    b: &Expr,
    row: &Row<'_, '_>,
    as_text: bool,
) -> Result<Value, RecordError> {
    let sel = b.eval(row)?;
    let owned;
    let json: &serde_json::Value = match (a, row) {
        (Expr::Col(Column::Value), Row::Input(r)) => r.value_json()?,
        _ => {
            owned = to_json_doc(a.eval(row)?)?;
            match &owned {
                Some(j) => j,
                None => return Ok(Value::Null),
            }
        }
    };
    let found = match &sel {
        Value::Int(i) => usize::try_from(*i).ok().and_then(|i| json.get(i)),
        Value::String(s) => json.get(s.as_str()),
        Value::Null => None,
        v => {
            return Err(RecordError::new(format!(
                "-> expects text or integer, got {}",
                v.type_name()
            )))
        }
    };
    Ok(match found {
        None | Some(serde_json::Value::Null) => Value::Null,
        Some(serde_json::Value::String(s)) if as_text => Value::String(s.clone()),
        Some(j) if as_text => Value::String(j.to_string()),
        Some(j) => Value::Json(j.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_parse() {
        assert_eq!(
            parse_json_path("$.user.screen_name"),
            Some(vec![
                PathStep::Field("user".into()),
                PathStep::Field("screen_name".into())
            ])
        );
        assert_eq!(
            parse_json_path("$.a[2]"),
            Some(vec![PathStep::Field("a".into()), PathStep::Index(2)])
        );
        assert_eq!(parse_json_path("a.b"), None);
    }
}
