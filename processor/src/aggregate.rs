//! Aggregate functions and their mergeable, serializable accumulators.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    Avg,
}

/// One aggregate of a job: its function and its argument (input-side expression).
#[derive(Debug, Clone)]
pub struct AggSpec {
    pub kind: AggKind,
    pub arg: Option<Expr>,
}

/// Accumulator state. Every kind merges (pane combination, session merging) and serializes
/// (changelog).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    Count(i64),
    Sum {
        int: i64,
        float: f64,
        is_float: bool,
        n: i64,
    },
    Min(Value),
    Max(Value),
    Avg {
        sum: f64,
        n: i64,
    },
    Distinct(BTreeSet<String>),
}

impl Acc {
    pub fn new(kind: AggKind) -> Acc {
        match kind {
            AggKind::CountStar | AggKind::Count => Acc::Count(0),
            AggKind::CountDistinct => Acc::Distinct(BTreeSet::new()),
            AggKind::Sum => Acc::Sum {
                int: 0,
                float: 0.0,
                is_float: false,
                n: 0,
            },
            AggKind::Min => Acc::Min(Value::Null),
            AggKind::Max => Acc::Max(Value::Null),
            AggKind::Avg => Acc::Avg { sum: 0.0, n: 0 },
        }
    }

    /// Add one input value (`Value::Bool(true)` stands for a row of `count(*)`).
    pub fn update(&mut self, v: &Value) {
        if v.is_null() {
            return;
        }
        match self {
            Acc::Count(c) => *c += 1,
            Acc::Distinct(set) => {
                set.insert(v.to_json_string());
            }
            Acc::Sum {
                int,
                float,
                is_float,
                n,
            } => {
                *n += 1;
                match v {
                    Value::Int(i) if !*is_float => match int.checked_add(*i) {
                        Some(s) => *int = s,
                        None => {
                            *is_float = true;
                            *float = *int as f64 + *i as f64;
                        }
                    },
                    other => {
                        if !*is_float {
                            *is_float = true;
                            *float = *int as f64;
                        }
                        *float += other.as_f64().unwrap_or(0.0);
                    }
                }
            }
            Acc::Min(m) => {
                if m.is_null() || v.sql_cmp(m) == Some(std::cmp::Ordering::Less) {
                    *m = v.clone();
                }
            }
            Acc::Max(m) => {
                if m.is_null() || v.sql_cmp(m) == Some(std::cmp::Ordering::Greater) {
                    *m = v.clone();
                }
            }
            Acc::Avg { sum, n } => {
                if let Some(f) = v.as_f64() {
                    *sum += f;
                    *n += 1;
                }
            }
        }
    }

    /// Combine another accumulator of the same kind into this one.
    pub fn merge(&mut self, other: &Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Distinct(a), Acc::Distinct(b)) => a.extend(b.iter().cloned()),
            (
                Acc::Sum {
                    int,
                    float,
                    is_float,
                    n,
                },
                Acc::Sum {
                    int: i2,
                    float: f2,
                    is_float: fl2,
                    n: n2,
                },
            ) => {
                *n += n2;
                if !*is_float && !fl2 {
                    if let Some(s) = int.checked_add(*i2) {
                        *int = s;
                        return;
                    }
                }
                let mine = if *is_float { *float } else { *int as f64 };
                let theirs = if *fl2 { *f2 } else { *i2 as f64 };
                *is_float = true;
                *float = mine + theirs;
            }
            (a @ Acc::Min(_), Acc::Min(v)) | (a @ Acc::Max(_), Acc::Max(v)) => a.update(v),
            (Acc::Avg { sum, n }, Acc::Avg { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            _ => {}
        }
    }

    /// Take `other` back out of this accumulator, which it was merged into. Only counts are
    /// exact under subtraction; `sliding::invertible` admits no other kind.
    pub fn unmerge(&mut self, other: &Acc) {
        if let (Acc::Count(a), Acc::Count(b)) = (self, other) {
            *a -= b;
        }
    }

    /// The SQL result.
    pub fn result(&self) -> Value {
        match self {
            Acc::Count(c) => Value::Int(*c),
            Acc::Distinct(s) => Value::Int(s.len() as i64),
            Acc::Sum { n: 0, .. } => Value::Null,
            Acc::Sum {
                int,
                float,
                is_float,
                ..
            } => {
                if *is_float {
                    Value::Float(*float)
                } else {
                    Value::Int(*int)
                }
            }
            Acc::Min(v) | Acc::Max(v) => v.clone(),
            Acc::Avg { n: 0, .. } => Value::Null,
            Acc::Avg { sum, n } => Value::Float(sum / *n as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulators_merge_like_one() {
        let vals = [
            Value::Int(3),
            Value::Int(1),
            Value::Null,
            Value::Float(2.5),
            Value::Int(3),
        ];
        for kind in [
            AggKind::Count,
            AggKind::CountDistinct,
            AggKind::Sum,
            AggKind::Min,
            AggKind::Max,
            AggKind::Avg,
        ] {
            let mut one = Acc::new(kind);
            vals.iter().for_each(|v| one.update(v));
            let (mut a, mut b) = (Acc::new(kind), Acc::new(kind));
            vals[..2].iter().for_each(|v| a.update(v));
            vals[2..].iter().for_each(|v| b.update(v));
            a.merge(&b);
            assert_eq!(a.result(), one.result(), "{kind:?}");
        }
    }
}
