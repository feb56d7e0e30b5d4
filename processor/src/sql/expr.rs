//! sqlparser expressions -> compiled `Expr`, in an input scope (record columns, the unnest
//! alias) or a group scope (group-by values, aggregates, window bounds).

use std::sync::Arc;

use sqlparser::ast::{
    self, BinaryOperator, DataType, DuplicateTreatment, FunctionArg, FunctionArgExpr,
    FunctionArguments, Spanned, UnaryOperator,
};
use sqlparser::tokenizer::Location;

use crate::aggregate::{AggKind, AggSpec};
use crate::error::ProcessorError;
use crate::expr::{BinOp, CastType, Column, Expr, LikePattern};
use crate::functions::{parse_json_path, Func};
use crate::sql::header::err;
use crate::value::Value;

/// Group scope: what a post-aggregation expression may name.
#[derive(Default)]
pub struct GroupScope {
    /// Group-by keys: (display of the resolved expression, name).
    pub keys: Vec<(String, String)>,
    /// Select items: (name, expression), for aliases in HAVING and ORDER BY.
    pub select: Vec<(String, ast::Expr)>,
    /// Aggregates found so far: (display, spec).
    pub aggs: Vec<(String, AggSpec)>,
    pub windowed: bool,
    /// Select aliases being expanded (cycle guard).
    expanding: Vec<String>,
}

pub struct Compiler {
    /// The `unnest(...) AS x` alias, if any.
    pub item_alias: Option<String>,
    /// Set while compiling post-aggregation expressions.
    pub group: Option<GroupScope>,
}

pub fn pos(e: &impl Spanned) -> Location {
    e.span().start
}

pub fn unsupported(at: Location, construct: impl Into<String>) -> ProcessorError {
    ProcessorError::Unsupported {
        line: at.line.max(1),
        column: at.column.max(1),
        construct: construct.into(),
    }
}

fn ident_name(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Identifier(i) => Some(i.value.to_lowercase()),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
        _ => None,
    }
}

pub fn input_column(name: &str) -> Option<Column> {
    Some(match name {
        "key" => Column::Key,
        "value" => Column::Value,
        "timestamp" => Column::Timestamp,
        "partition" => Column::Partition,
        "offset" => Column::Offset,
        "headers" => Column::Headers,
        _ => return None,
    })
}

pub fn function_name(f: &ast::Function) -> String {
    f.name.to_string().to_lowercase()
}

pub fn agg_kind(name: &str) -> Option<AggKind> {
    Some(match name {
        "count" => AggKind::Count,
        "sum" => AggKind::Sum,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "avg" => AggKind::Avg,
        _ => return None,
    })
}

/// Function arguments as plain expressions (`*` becomes `None`).
pub fn function_args(f: &ast::Function) -> Result<(Vec<Option<&ast::Expr>>, bool), ProcessorError> {
    let at = pos(f);
    let list = match &f.args {
        FunctionArguments::None => return Ok((Vec::new(), false)),
        FunctionArguments::Subquery(_) => {
            return Err(unsupported(at, "a subquery as a function argument"))
        }
        FunctionArguments::List(l) => l,
    };
    if !list.clauses.is_empty() {
        return Err(unsupported(at, "clauses inside function arguments"));
    }
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let mut args = Vec::new();
    for a in &list.args {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(Some(e)),
            FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => args.push(None),
            _ => return Err(unsupported(at, "named or qualified function arguments")),
        }
    }
    Ok((args, distinct))
}

fn literal_string(e: &ast::Expr) -> Option<String> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                Some(s.clone())
            }
            _ => None,
        },
        ast::Expr::Nested(e) => literal_string(e),
        _ => None,
    }
}

impl Compiler {
    pub fn compile(&mut self, e: &ast::Expr) -> Result<Expr, ProcessorError> {
        if let Some(g) = &self.group {
            let text = e.to_string();
            if let Some(i) = g.keys.iter().position(|(d, _)| *d == text) {
                return Ok(Expr::Col(Column::Group(i)));
            }
        }
        let at = pos(e);
        let b = |x: Expr| Box::new(x);
        Ok(match e {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                let name = ident_name(e).unwrap_or_default();
                self.ident(&name, at)?
            }
            ast::Expr::Value(v) => Expr::Lit(literal(&v.value, at)?),
            ast::Expr::Nested(inner) => self.compile(inner)?,
            ast::Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Not => Expr::Not(b(self.compile(expr)?)),
                UnaryOperator::Minus => Expr::Neg(b(self.compile(expr)?)),
                UnaryOperator::Plus => self.compile(expr)?,
                other => return Err(unsupported(at, format!("operator {other}"))),
            },
            ast::Expr::BinaryOp { left, op, right } => {
                let op = match op {
                    BinaryOperator::Plus => BinOp::Add,
                    BinaryOperator::Minus => BinOp::Sub,
                    BinaryOperator::Multiply => BinOp::Mul,
                    BinaryOperator::Divide => BinOp::Div,
                    BinaryOperator::Modulo => BinOp::Mod,
                    BinaryOperator::Eq => BinOp::Eq,
                    BinaryOperator::NotEq => BinOp::NotEq,
                    BinaryOperator::Lt => BinOp::Lt,
                    BinaryOperator::LtEq => BinOp::LtEq,
                    BinaryOperator::Gt => BinOp::Gt,
                    BinaryOperator::GtEq => BinOp::GtEq,
                    BinaryOperator::And => BinOp::And,
                    BinaryOperator::Or => BinOp::Or,
                    BinaryOperator::StringConcat => BinOp::Concat,
                    BinaryOperator::Arrow => BinOp::Arrow,
                    BinaryOperator::LongArrow => BinOp::LongArrow,
                    other => return Err(unsupported(at, format!("operator {other}"))),
                };
                Expr::Bin(op, b(self.compile(left)?), b(self.compile(right)?))
            }
            ast::Expr::IsNull(x) => Expr::IsNull(b(self.compile(x)?), false),
            ast::Expr::IsNotNull(x) => Expr::IsNull(b(self.compile(x)?), true),
            ast::Expr::InList {
                expr,
                list,
                negated,
            } => {
                let list = list
                    .iter()
                    .map(|x| self.compile(x))
                    .collect::<Result<_, _>>()?;
                Expr::InList(b(self.compile(expr)?), list, *negated)
            }
            ast::Expr::Between {
                expr,
                negated,
                low,
                high,
            } => Expr::Between(
                b(self.compile(expr)?),
                b(self.compile(low)?),
                b(self.compile(high)?),
                *negated,
            ),
            ast::Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, false)?,
            ast::Expr::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char: None,
            } => self.like(expr, pattern, *negated, true)?,
            ast::Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand
                    .as_ref()
                    .map(|o| self.compile(o))
                    .transpose()?
                    .map(Box::new);
                let mut whens = Vec::with_capacity(conditions.len());
                for c in conditions {
                    whens.push((self.compile(&c.condition)?, self.compile(&c.result)?));
                }
                let else_ = else_result
                    .as_ref()
                    .map(|x| self.compile(x))
                    .transpose()?
                    .map(Box::new);
                Expr::Case(operand, whens, else_)
            }
            ast::Expr::Cast {
                expr,
                data_type,
                format: None,
                ..
            } => Expr::Cast(b(self.compile(expr)?), cast_type(data_type, at)?),
            ast::Expr::Trim {
                expr,
                trim_where: None,
                trim_what: None,
                trim_characters: None,
            } => Expr::Func(Func::Trim, vec![self.compile(expr)?]),
            ast::Expr::Position { expr, r#in } => {
                Expr::Func(Func::Strpos, vec![self.compile(r#in)?, self.compile(expr)?])
            }
            ast::Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.compile(expr)?];
                args.push(match substring_from {
                    Some(f) => self.compile(f)?,
                    None => Expr::Lit(Value::Int(1)),
                });
                if let Some(f) = substring_for {
                    args.push(self.compile(f)?);
                }
                Expr::Func(Func::Substr, args)
            }
            ast::Expr::Function(f) => self.function(f)?,
            ast::Expr::Subquery(_) | ast::Expr::Exists { .. } | ast::Expr::InSubquery { .. } => {
                return Err(unsupported(at, "a subquery"))
            }
            ast::Expr::Interval(_) => {
                return Err(err(at, "an interval is only allowed in tumble/hop/session"))
            }
            other => {
                let text = other.to_string();
                let short: String = text.chars().take(40).collect();
                return Err(unsupported(at, format!("the expression `{short}`")));
            }
        })
    }

    fn like(
        &mut self,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        negated: bool,
        ci: bool,
    ) -> Result<Expr, ProcessorError> {
        let at = pos(pattern);
        let p = literal_string(pattern)
            .ok_or_else(|| unsupported(at, "a LIKE pattern that is not a string literal"))?;
        let re = LikePattern::new(&p, ci).map_err(|e| err(at, format!("bad LIKE pattern: {e}")))?;
        Ok(Expr::Like(
            Box::new(self.compile(expr)?),
            Arc::new(re),
            negated,
        ))
    }

    fn ident(&mut self, name: &str, at: Location) -> Result<Expr, ProcessorError> {
        let Some(g) = &mut self.group else {
            if self.item_alias.as_deref() == Some(name) {
                return Ok(Expr::Col(Column::Item));
            }
            return input_column(name)
                .map(Expr::Col)
                .ok_or_else(|| err(at, format!("unknown column {name}")));
        };
        match name {
            "window_start" if g.windowed => return Ok(Expr::Col(Column::WindowStart)),
            "window_end" if g.windowed => return Ok(Expr::Col(Column::WindowEnd)),
            "window_start" | "window_end" => {
                return Err(err(
                    at,
                    format!("{name} needs a window (tumble, hop or session) in GROUP BY"),
                ))
            }
            _ => {}
        }
        if let Some(i) = g.keys.iter().position(|(_, n)| n == name) {
            return Ok(Expr::Col(Column::Group(i)));
        }
        if !g.expanding.iter().any(|n| n == name) {
            if let Some((_, e)) = g.select.iter().find(|(n, _)| n == name).cloned() {
                if let Some(g) = &mut self.group {
                    g.expanding.push(name.to_owned());
                }
                let r = self.compile(&e);
                if let Some(g) = &mut self.group {
                    g.expanding.pop();
                }
                return r;
            }
        }
        Err(err(
            at,
            format!("column {name} must appear in GROUP BY or be used in an aggregate function"),
        ))
    }

    fn function(&mut self, f: &ast::Function) -> Result<Expr, ProcessorError> {
        let at = pos(f);
        let name = function_name(f);
        if f.over.is_some() {
            return Err(unsupported(at, "window function OVER"));
        }
        if f.filter.is_some() {
            return Err(unsupported(at, "FILTER on an aggregate"));
        }
        let (args, distinct) = function_args(f)?;
        if let Some(kind) = agg_kind(&name) {
            return self.aggregate(f, kind, args, distinct);
        }
        match name.as_str() {
            "tumble" | "hop" | "session" => {
                return Err(err(at, format!("{name}(...) is only allowed in GROUP BY")))
            }
            "unnest" => {
                return Err(unsupported(
                    at,
                    "unnest in SELECT (use FROM topic, unnest(...) AS x)",
                ))
            }
            _ => {}
        }
        let exprs: Vec<&ast::Expr> = args
            .iter()
            .map(|a| a.ok_or_else(|| err(at, format!("{name}(*) is not valid"))))
            .collect::<Result<_, _>>()?;
        let arity = |lo: usize, hi: usize| -> Result<(), ProcessorError> {
            if exprs.len() < lo || exprs.len() > hi {
                return Err(err(
                    at,
                    format!(
                        "{name} takes {lo}{} arguments, got {}",
                        if hi > lo { "+" } else { "" },
                        exprs.len()
                    ),
                ));
            }
            Ok(())
        };
        let func = match name.as_str() {
            "json_value" => {
                arity(2, 2)?;
                let p = literal_string(exprs[1]).ok_or_else(|| {
                    err(
                        pos(exprs[1]),
                        "json_value needs a literal path like '$.a.b'",
                    )
                })?;
                let steps = parse_json_path(&p)
                    .ok_or_else(|| err(pos(exprs[1]), format!("bad JSON path {p:?}")))?;
                Func::JsonValue(Arc::new(steps))
            }
            "regexp_match" | "regexp_matches" => {
                arity(2, 2)?;
                let p = literal_string(exprs[1])
                    .ok_or_else(|| err(pos(exprs[1]), "regexp_match needs a literal pattern"))?;
                let re = regex::Regex::new(&p)
                    .map_err(|e| err(pos(exprs[1]), format!("bad regex: {e}")))?;
                Func::RegexpMatch(Arc::new(re))
            }
            other => {
                let Some((func, lo, hi)) = Func::simple(other) else {
                    return Err(err(at, format!("unknown function {other}")));
                };
                arity(lo, hi)?;
                func
            }
        };
        if distinct {
            return Err(err(
                at,
                format!("DISTINCT is only allowed in aggregates, not {name}"),
            ));
        }
        let args = exprs
            .into_iter()
            .map(|e| self.compile(e))
            .collect::<Result<_, _>>()?;
        Ok(Expr::Func(func, args))
    }

    fn aggregate(
        &mut self,
        f: &ast::Function,
        kind: AggKind,
        args: Vec<Option<&ast::Expr>>,
        distinct: bool,
    ) -> Result<Expr, ProcessorError> {
        let at = pos(f);
        let name = function_name(f);
        if self.group.is_none() {
            return Err(err(
                at,
                format!(
                    "aggregate {name} is not allowed here (only in SELECT, HAVING and ORDER BY)"
                ),
            ));
        }
        let (kind, arg) = match (kind, args.as_slice(), distinct) {
            (AggKind::Count, [None], false) => (AggKind::CountStar, None),
            (AggKind::Count, [Some(e)], true) => (AggKind::CountDistinct, Some(*e)),
            (k, [Some(e)], false) => (k, Some(*e)),
            (_, _, true) => return Err(unsupported(at, format!("{name}(DISTINCT ...)"))),
            _ => return Err(err(at, format!("{name} takes one argument"))),
        };
        let text = f.to_string();
        if let Some(i) = self
            .group
            .as_ref()
            .and_then(|g| g.aggs.iter().position(|(d, _)| *d == text))
        {
            return Ok(Expr::Col(Column::Agg(i)));
        }
        // The argument is evaluated per input row.
        let saved = self.group.take();
        let arg = arg.map(|a| self.compile(a)).transpose();
        self.group = saved;
        let spec = AggSpec { kind, arg: arg? };
        let Some(g) = &mut self.group else {
            return Err(err(at, "aggregate outside a group scope"));
        };
        g.aggs.push((text, spec));
        Ok(Expr::Col(Column::Agg(g.aggs.len() - 1)))
    }
}

fn literal(v: &ast::Value, at: Location) -> Result<Value, ProcessorError> {
    Ok(match v {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(n.parse().map_err(|_| err(at, format!("bad number {n}")))?),
        },
        ast::Value::SingleQuotedString(s) | ast::Value::EscapedStringLiteral(s) => {
            Value::String(s.clone())
        }
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        other => return Err(unsupported(at, format!("the literal {other}"))),
    })
}

fn cast_type(t: &DataType, at: Location) -> Result<CastType, ProcessorError> {
    let name = t.to_string().to_lowercase();
    let base = name.split('(').next().unwrap_or("").trim();
    Ok(match base {
        "int" | "integer" | "bigint" | "smallint" | "tinyint" | "int4" | "int8" | "int64" => {
            CastType::Int
        }
        "float" | "double" | "double precision" | "real" | "decimal" | "numeric" | "float8"
        | "float4" | "float64" => CastType::Float,
        "text" | "varchar" | "string" | "char" | "character varying" => CastType::Text,
        "boolean" | "bool" => CastType::Bool,
        _ => return Err(unsupported(at, format!("CAST to {name}"))),
    })
}

/// Milliseconds of `interval '5 seconds'`, `interval '5' second` or a plain number (ms).
pub fn interval_ms(e: &ast::Expr) -> Result<i64, ProcessorError> {
    let at = pos(e);
    match e {
        ast::Expr::Interval(iv) => {
            let text = literal_string(&iv.value)
                .or_else(|| match iv.value.as_ref() {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => Some(n.clone()),
                        _ => None,
                    },
                    _ => None,
                })
                .ok_or_else(|| err(at, "expected interval 'N unit'"))?;
            let text = match &iv.leading_field {
                Some(f) => format!("{text} {f}"),
                None => text,
            };
            duration_ms(&text).ok_or_else(|| err(at, format!("bad interval {text:?}")))
        }
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().map_err(|_| err(at, format!("bad duration {n}"))),
            ast::Value::SingleQuotedString(s) => {
                duration_ms(s).ok_or_else(|| err(at, format!("bad duration {s:?}")))
            }
            _ => Err(err(at, "expected an interval")),
        },
        _ => Err(err(
            at,
            "expected an interval such as interval '10 seconds'",
        )),
    }
}

/// Parse `5 seconds`, `100 ms`, `2 minutes`, `1h`, `250` (ms).
pub fn duration_ms(s: &str) -> Option<i64> {
    let s = s.trim().to_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.trim().parse().ok()?;
    let unit = unit.trim();
    let ms = match unit {
        "" | "ms" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        _ => return None,
    };
    Some((n * ms).round() as i64)
}
