//! Compiled expressions and their evaluation over an input row or a group row.

use std::cell::OnceCell;
use std::fmt;
use std::sync::Arc;

use crate::error::RecordError;
use crate::functions::Func;
use crate::record::Record;
use crate::value::Value;

/// A column an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Key,
    Value,
    Timestamp,
    Partition,
    Offset,
    Headers,
    /// The current element of a flat_map / `unnest(...) AS x`.
    Item,
    /// Group-by value `i` (after aggregation).
    Group(usize),
    /// Aggregate `i` (after aggregation).
    Agg(usize),
    WindowStart,
    WindowEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
    /// Postgres `->`: JSON field or element, as JSON.
    Arrow,
    /// Postgres `->>`: JSON field or element, as text.
    LongArrow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CastType {
    Int,
    Float,
    Text,
    Bool,
}

/// A native (Rust builder) function of its argument values.
pub type NativeFn = Arc<dyn Fn(&[Value]) -> Result<Value, RecordError> + Send + Sync>;

/// A compiled expression.
#[derive(Clone)]
pub enum Expr {
    Lit(Value),
    Col(Column),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    InList(Box<Expr>, Vec<Expr>, bool),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `expr [NOT] LIKE/ILIKE pattern`, the pattern compiled once.
    Like(Box<Expr>, Arc<LikePattern>, bool),
    Case(Option<Box<Expr>>, Vec<(Expr, Expr)>, Option<Box<Expr>>),
    Cast(Box<Expr>, CastType),
    Func(Func, Vec<Expr>),
    Native(NativeFn, Vec<Expr>),
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Lit(v) => write!(f, "Lit({v:?})"),
            Expr::Col(c) => write!(f, "Col({c:?})"),
            Expr::Not(e) => write!(f, "Not({e:?})"),
            Expr::Neg(e) => write!(f, "Neg({e:?})"),
            Expr::Bin(op, a, b) => write!(f, "{op:?}({a:?}, {b:?})"),
            Expr::IsNull(e, n) => write!(f, "IsNull({e:?}, negated={n})"),
            Expr::InList(e, l, n) => write!(f, "In({e:?}, {l:?}, negated={n})"),
            Expr::Between(e, a, b, n) => write!(f, "Between({e:?}, {a:?}, {b:?}, {n})"),
            Expr::Like(e, r, n) => write!(f, "Like({e:?}, {}, negated={n})", r.re.as_str()),
            Expr::Case(o, w, e) => write!(f, "Case({o:?}, {w:?}, {e:?})"),
            Expr::Cast(e, t) => write!(f, "Cast({e:?}, {t:?})"),
            Expr::Func(func, args) => write!(f, "{func:?}({args:?})"),
            Expr::Native(_, args) => write!(f, "Native({args:?})"),
        }
    }
}

/// Translate a SQL LIKE pattern into an anchored regex.
pub fn like_regex(pattern: &str, case_insensitive: bool) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from(if case_insensitive { "(?is)^" } else { "(?s)^" });
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            '\\' => {
                if let Some(n) = chars.next() {
                    re.push_str(&regex::escape(&n.to_string()));
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re)
}

/// A compiled LIKE pattern. Patterns made of one literal with `%` only at its ends (the common
/// `'%word%'`) are tested with a substring search, cheaper than the regex; the anchored regex
/// of [`like_regex`] decides every other pattern.
#[derive(Debug)]
pub struct LikePattern {
    re: regex::Regex,
    plain: Option<Plain>,
}

#[derive(Debug)]
enum Plain {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl LikePattern {
    pub fn new(pattern: &str, case_insensitive: bool) -> Result<LikePattern, regex::Error> {
        let re = like_regex(pattern, case_insensitive)?;
        let plain = if case_insensitive {
            None
        } else {
            plain_like(pattern)
        };
        Ok(LikePattern { re, plain })
    }

    pub fn is_match(&self, s: &str) -> bool {
        match &self.plain {
            Some(Plain::Exact(l)) => s == l,
            Some(Plain::Prefix(l)) => s.starts_with(l.as_str()),
            Some(Plain::Suffix(l)) => s.ends_with(l.as_str()),
            Some(Plain::Contains(l)) => s.contains(l.as_str()),
            None => self.re.is_match(s),
        }
    }
}

/// `%`* literal `%`* (no `_`, no `%` inside) as a plain test, with `\` escapes as in
/// [`like_regex`].
fn plain_like(pattern: &str) -> Option<Plain> {
    // Tokens: Some(c) a literal char, None a `%`.
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => tokens.push(None),
            '_' => return None,
            '\\' => {
                if let Some(n) = chars.next() {
                    tokens.push(Some(n));
                }
            }
            c => tokens.push(Some(c)),
        }
    }
    let lead = tokens.iter().take_while(|t| t.is_none()).count();
    let body = &tokens[lead..];
    let trail = body.iter().rev().take_while(|t| t.is_none()).count();
    let body = &body[..body.len() - trail];
    let lit: Option<String> = body.iter().copied().collect();
    let lit = lit?;
    Some(match (lead > 0, trail > 0) {
        (false, false) => Plain::Exact(lit),
        (false, true) => Plain::Prefix(lit),
        (true, false) => Plain::Suffix(lit),
        (true, true) => Plain::Contains(lit),
    })
}

/// The row an input-side expression reads: one record, the current flat_map element, and the
/// record value parsed as JSON at most once.
pub struct InputRow<'a> {
    pub record: &'a Record,
    pub item: Option<&'a Value>,
    json: OnceCell<Result<serde_json::Value, RecordError>>,
}

impl<'a> InputRow<'a> {
    pub fn new(record: &'a Record, item: Option<&'a Value>) -> InputRow<'a> {
        InputRow {
            record,
            item,
            json: OnceCell::new(),
        }
    }

    /// The record value parsed as JSON (cached for the row).
    pub fn value_json(&self) -> Result<&serde_json::Value, RecordError> {
        self.json
            .get_or_init(|| match self.record.value.as_deref() {
                None => Err(RecordError::new("value is null, expected JSON")),
                Some(b) => serde_json::from_slice(b)
                    .map_err(|e| RecordError::new(format!("value is not valid JSON: {e}"))),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The row a post-aggregation expression reads.
pub struct GroupRow<'a> {
    pub group: &'a [Value],
    pub aggs: &'a [Value],
    pub window: Option<(i64, i64)>,
}

/// Where column values come from.
pub enum Row<'a, 'b> {
    Input(&'b InputRow<'a>),
    Group(&'b GroupRow<'a>),
}

impl Row<'_, '_> {
    /// The record's key or value as borrowed text when `e` reads exactly that column and it is
    /// UTF-8 (`Some(None)`: the field is null); `None` when `e` must be evaluated.
    fn text_field(&self, e: &Expr) -> Option<Option<&str>> {
        let (Row::Input(r), Expr::Col(c)) = (self, e) else {
            return None;
        };
        let field = match c {
            Column::Key => r.record.key.as_deref(),
            Column::Value => r.record.value.as_deref(),
            _ => return None,
        };
        match field {
            None => Some(None),
            Some(b) => std::str::from_utf8(b).ok().map(Some),
        }
    }

    fn column(&self, c: Column) -> Result<Value, RecordError> {
        match (self, c) {
            (Row::Input(r), Column::Key) => Ok(Value::from_field(r.record.key.as_deref())),
            (Row::Input(r), Column::Value) => Ok(Value::from_field(r.record.value.as_deref())),
            (Row::Input(r), Column::Timestamp) => Ok(Value::Int(r.record.timestamp)),
            (Row::Input(r), Column::Partition) => Ok(Value::Int(i64::from(r.record.partition))),
            (Row::Input(r), Column::Offset) => Ok(Value::Int(r.record.offset)),
            (Row::Input(r), Column::Headers) => {
                let mut m = serde_json::Map::new();
                for (k, v) in &r.record.headers {
                    let v = v
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                    m.insert(k.clone(), v.map_or(serde_json::Value::Null, Into::into));
                }
                Ok(Value::Json(serde_json::Value::Object(m)))
            }
            (Row::Input(r), Column::Item) => Ok(r.item.cloned().unwrap_or(Value::Null)),
            (Row::Group(g), Column::Group(i)) => Ok(g.group.get(i).cloned().unwrap_or(Value::Null)),
            (Row::Group(g), Column::Agg(i)) => Ok(g.aggs.get(i).cloned().unwrap_or(Value::Null)),
            (Row::Group(g), Column::WindowStart) => {
                Ok(g.window.map_or(Value::Null, |w| Value::Int(w.0)))
            }
            (Row::Group(g), Column::WindowEnd) => {
                Ok(g.window.map_or(Value::Null, |w| Value::Int(w.1)))
            }
            (_, c) => Err(RecordError::new(format!(
                "column {c:?} is not available here"
            ))),
        }
    }
}

impl Expr {
    pub fn eval_input(&self, row: &InputRow<'_>) -> Result<Value, RecordError> {
        self.eval(&Row::Input(row))
    }

    pub fn eval_group(&self, row: &GroupRow<'_>) -> Result<Value, RecordError> {
        self.eval(&Row::Group(row))
    }

    pub fn eval(&self, row: &Row<'_, '_>) -> Result<Value, RecordError> {
        match self {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Col(c) => row.column(*c),
            Expr::Not(e) => Ok(match e.eval(row)? {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            }),
            Expr::Neg(e) => match e.eval(row)? {
                Value::Int(i) => Ok(Value::Int(i.wrapping_neg())),
                Value::Float(f) => Ok(Value::Float(-f)),
                Value::Null => Ok(Value::Null),
                v => Err(RecordError::new(format!("cannot negate {}", v.type_name()))),
            },
            Expr::Bin(op, a, b) => eval_bin(*op, a, b, row),
            Expr::IsNull(e, negated) => Ok(Value::Bool(e.eval(row)?.is_null() != *negated)),
            Expr::InList(e, list, negated) => {
                let v = e.eval(row)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                for item in list {
                    if v.sql_cmp(&item.eval(row)?) == Some(std::cmp::Ordering::Equal) {
                        return Ok(Value::Bool(!negated));
                    }
                }
                Ok(Value::Bool(*negated))
            }
            Expr::Between(e, lo, hi, negated) => {
                let v = e.eval(row)?;
                let (lo, hi) = (lo.eval(row)?, hi.eval(row)?);
                match (v.sql_cmp(&lo), v.sql_cmp(&hi)) {
                    (Some(a), Some(b)) => Ok(Value::Bool((a.is_ge() && b.is_le()) != *negated)),
                    _ => Ok(Value::Null),
                }
            }
            Expr::Like(e, re, negated) => {
                if let Some(field) = row.text_field(e) {
                    return Ok(
                        field.map_or(Value::Null, |s| Value::Bool(re.is_match(s) != *negated))
                    );
                }
                match e.eval(row)? {
                    Value::Null => Ok(Value::Null),
                    Value::String(s) => Ok(Value::Bool(re.is_match(&s) != *negated)),
                    v => {
                        let text = crate::functions::text_arg(v, "LIKE")?;
                        Ok(Value::Bool(re.is_match(&text) != *negated))
                    }
                }
            }
            Expr::Case(operand, whens, else_) => {
                let op = operand.as_ref().map(|o| o.eval(row)).transpose()?;
                for (cond, result) in whens {
                    let c = cond.eval(row)?;
                    let hit = match &op {
                        Some(o) => o.sql_cmp(&c) == Some(std::cmp::Ordering::Equal),
                        None => c.is_true(),
                    };
                    if hit {
                        return result.eval(row);
                    }
                }
                else_.as_ref().map_or(Ok(Value::Null), |e| e.eval(row))
            }
            Expr::Cast(e, t) => cast(e.eval(row)?, *t),
            Expr::Func(f, args) => crate::functions::call(f, args, row),
            Expr::Native(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(row))
                    .collect::<Result<Vec<_>, _>>()?;
                f(&vals)
            }
        }
    }
}

fn eval_bin(op: BinOp, a: &Expr, b: &Expr, row: &Row<'_, '_>) -> Result<Value, RecordError> {
    use std::cmp::Ordering::*;
    // Three-valued AND/OR with short-circuit.
    if op == BinOp::And || op == BinOp::Or {
        let l = a.eval(row)?;
        let stop = Value::Bool(op == BinOp::Or);
        if l == stop {
            return Ok(stop);
        }
        let r = b.eval(row)?;
        return Ok(match (l, r) {
            (_, r) if r == stop => stop,
            (Value::Bool(_), Value::Bool(_)) => Value::Bool(op == BinOp::And),
            _ => Value::Null,
        });
    }
    if op == BinOp::Arrow || op == BinOp::LongArrow {
        return crate::functions::json_arrow(a, b, row, op == BinOp::LongArrow);
    }
    let l = a.eval(row)?;
    let r = b.eval(row)?;
    let cmp = |f: fn(std::cmp::Ordering) -> bool| {
        Ok(l.sql_cmp(&r).map_or(Value::Null, |o| Value::Bool(f(o))))
    };
    match op {
        BinOp::Eq => cmp(|o| o == Equal),
        BinOp::NotEq => cmp(|o| o != Equal),
        BinOp::Lt => cmp(|o| o == Less),
        BinOp::LtEq => cmp(|o| o != Greater),
        BinOp::Gt => cmp(|o| o == Greater),
        BinOp::GtEq => cmp(|o| o != Less),
        BinOp::Concat => match (l.to_text(), r.to_text()) {
            (Some(x), Some(y)) => Ok(Value::String(x + &y)),
            _ => Ok(Value::Null),
        },
        _ => arith(op, l, r),
    }
}

fn arith(op: BinOp, l: Value, r: Value) -> Result<Value, RecordError> {
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    if let (Value::Int(x), Value::Int(y)) = (&l, &r) {
        let (x, y) = (*x, *y);
        return match op {
            BinOp::Add => Ok(Value::Int(x.wrapping_add(y))),
            BinOp::Sub => Ok(Value::Int(x.wrapping_sub(y))),
            BinOp::Mul => Ok(Value::Int(x.wrapping_mul(y))),
            BinOp::Div if y == 0 => Err(RecordError::new("division by zero")),
            BinOp::Div => Ok(Value::Int(x.wrapping_div(y))),
            BinOp::Mod if y == 0 => Err(RecordError::new("division by zero")),
            BinOp::Mod => Ok(Value::Int(x.wrapping_rem(y))),
            _ => Err(RecordError::new(format!("bad operator {op:?}"))),
        };
    }
    let (Some(x), Some(y)) = (l.as_f64(), r.as_f64()) else {
        return Err(RecordError::new(format!(
            "cannot apply {op:?} to {} and {}",
            l.type_name(),
            r.type_name()
        )));
    };
    Ok(Value::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Mod => x % y,
        _ => return Err(RecordError::new(format!("bad operator {op:?}"))),
    }))
}

pub fn cast(v: Value, t: CastType) -> Result<Value, RecordError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let fail = |v: &Value| {
        RecordError::new(format!(
            "cannot cast {} {} to {t:?}",
            v.type_name(),
            v.to_json_string()
        ))
    };
    match t {
        CastType::Text => Ok(v.to_text().map_or(Value::Null, Value::String)),
        CastType::Int => match &v {
            Value::Bool(b) => Ok(Value::Int(i64::from(*b))),
            Value::Float(f) => Ok(Value::Int(f.trunc() as i64)),
            _ => v.as_i64().map(Value::Int).ok_or_else(|| fail(&v)),
        },
        CastType::Float => match &v {
            Value::String(s) => s.trim().parse().map(Value::Float).map_err(|_| fail(&v)),
            _ => v.as_f64().map(Value::Float).ok_or_else(|| fail(&v)),
        },
        CastType::Bool => match &v {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::Int(i) => Ok(Value::Bool(*i != 0)),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" => Ok(Value::Bool(true)),
                "false" | "f" | "0" | "no" => Ok(Value::Bool(false)),
                _ => Err(fail(&v)),
            },
            _ => Err(fail(&v)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_translates_wildcards() {
        let re = like_regex("%#messi%", false).expect("regex");
        assert!(re.is_match("go #messi go"));
        assert!(!re.is_match("#mess"));
        let re = like_regex("a_c", true).expect("regex");
        assert!(re.is_match("AbC"));
    }

    #[test]
    fn plain_like_patterns_agree_with_the_regex() {
        let patterns = [
            "%user-1%", "user%", "%ok", "exact", "%", "%%", "", "a%b", "%a\\%b%", "%\\_x%", "a_c",
            "%\\", "%.*%",
        ];
        let texts = [
            "",
            "user-1",
            "event 3 from user-17 status=ok",
            "exact",
            "exactly",
            "a%b",
            "xa%by",
            "ab",
            "a_x",
            "\\",
            ".*",
            "line\nbreak user-1",
        ];
        for p in patterns {
            let like = LikePattern::new(p, false).expect("pattern");
            let re = like_regex(p, false).expect("regex");
            for t in texts {
                assert_eq!(like.is_match(t), re.is_match(t), "{p:?} on {t:?}");
            }
        }
    }
}
