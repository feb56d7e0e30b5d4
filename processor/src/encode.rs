//! Result encoding: output keys (group-by values) and JSON object values.

use crate::value::{write_json_str, Value};

/// The output key of a group: the plain string for one text column, JSON otherwise (a scalar
/// for one column, an array for several), empty when there is no group-by column.
pub fn encode_key(group: &[Value]) -> Vec<u8> {
    match group {
        [] => Vec::new(),
        [Value::String(s)] => s.as_bytes().to_vec(),
        [Value::Bytes(b)] => b.clone(),
        [v] => v.to_json_string().into_bytes(),
        many => Value::Array(many.to_vec()).to_json_string().into_bytes(),
    }
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
