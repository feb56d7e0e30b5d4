//! Result encoding: output keys (group-by values) and JSON object values.

use crate::error::RecordError;
use crate::expr::{Column, Expr, GroupRow};
use crate::value::{write_json_str, Value};

/// The output key of a group: the plain string for one text column, JSON otherwise (a scalar
/// for one column, an array for several), empty when there is no group-by column.
pub fn encode_key(group: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key_into(group, &mut out);
    out
}

/// [`encode_key`], appended to `out`.
pub fn encode_key_into(group: &[Value], out: &mut Vec<u8>) {
    match group {
        [] => {}
        [Value::String(s)] => out.extend_from_slice(s.as_bytes()),
        [Value::Bytes(b)] => out.extend_from_slice(b),
        [v] => out.extend_from_slice(v.to_json_string().as_bytes()),
        many => {
            // The JSON of `Value::Array(many)`, without copying the values into one.
            let mut s = String::from("[");
            for (i, v) in many.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                v.write_json(&mut s);
            }
            s.push(']');
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// The JSON object of a result row's selected columns: what [`encode_object`] gives for the
/// evaluated columns, with plain column references written without copying their values.
pub fn encode_select(
    select: &[(String, Expr)],
    row: &GroupRow<'_>,
) -> Result<Vec<u8>, RecordError> {
    let mut s = String::with_capacity(16 + 24 * select.len());
    s.push('{');
    for (i, (name, e)) in select.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write_json_str(name, &mut s);
        s.push(':');
        let by_ref = match e {
            Expr::Col(Column::Group(i)) => Some(row.group.get(*i)),
            Expr::Col(Column::Agg(i)) => Some(row.aggs.get(*i)),
            _ => None,
        };
        match by_ref {
            Some(Some(v)) => v.write_json(&mut s),
            Some(None) => Value::Null.write_json(&mut s),
            None => e.eval_group(row)?.write_json(&mut s),
        }
    }
    s.push('}');
    Ok(s.into_bytes())
}

/// A JSON object of named values, in the given order.
pub fn encode_object<'a>(fields: impl IntoIterator<Item = (&'a str, Value)>) -> Vec<u8> {
    let mut s = String::with_capacity(64);
    s.push('{');
    for (i, (name, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        write_json_str(name, &mut s);
        s.push(':');
        v.write_json(&mut s);
    }
    s.push('}');
    s.into_bytes()
}

/// FNV-1a: a stable hash of a key, for splitting keys among job instances.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_objects() {
        assert_eq!(encode_key(&[Value::String("rm".into())]), b"rm");
        assert_eq!(
            encode_key(&[Value::String("a".into()), Value::Int(1)]),
            br#"["a",1]"#
        );
        assert_eq!(
            encode_object([("n", Value::Int(2)), ("w", Value::String("x".into()))]),
            br#"{"n":2,"w":"x"}"#
        );
    }
}
