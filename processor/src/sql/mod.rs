//! The SQL front end: `CREATE JOB name WITH (...) AS INSERT INTO out SELECT ...` -> `Plan`.
//!
//! `header.rs` reads the non-standard header; sqlparser (generic dialect) parses the rest;
//! `expr.rs` compiles expressions. Errors carry the 1-based line and column.

mod expr;
mod header;

use sqlparser::ast::{
    self, GroupByExpr, LimitClause, OrderByKind, SelectItem, SetExpr, Statement, TableFactor,
    TableObject,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Location;

use crate::error::ProcessorError;
use crate::plan::{
    AggregatePlan, EmitMode, JobOptions, OnError, Plan, Projection, RowOp, Stage, TimeMode,
};
use crate::window::Window;
use expr::{
    agg_kind, function_args, function_name, input_column, interval_ms, pos, unsupported, Compiler,
    GroupScope,
};
use header::{err, parse_header, JobOption};

pub use expr::duration_ms;

/// Compile one `CREATE JOB` statement.
pub fn compile(sql: &str) -> Result<Plan, ProcessorError> {
    let header = parse_header(sql)?;
    let stmt = parse_one(&header.body)?;
    let Statement::Insert(insert) = &stmt else {
        return Err(err(
            Location { line: 1, column: 1 },
            "expected INSERT INTO topic SELECT ... after AS",
        ));
    };
    let sink = match &insert.table {
        TableObject::TableName(n) => n.to_string(),
        TableObject::TableFunction(f) => return Err(unsupported(pos(f), "INSERT INTO a function")),
    };
    if !insert.columns.is_empty() {
        return Err(unsupported(
            insert.columns[0].span.start,
            "an INSERT column list (name columns with AS in SELECT)",
        ));
    }
    let query = insert.source.as_ref().ok_or_else(|| {
        err(
            Location { line: 1, column: 1 },
            "expected SELECT after INSERT INTO",
        )
    })?;
    let mut item_alias = None;
    let mut compiler = Compiler {
        item_alias: None,
        group: None,
    };
    let options = options(&header.options, &mut compiler)?;
    if let Some(w) = &query.with {
        return Err(unsupported(pos(w), "WITH (common table expressions)"));
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(unsupported(
            pos(query.body.as_ref()),
            "UNION, VALUES and other set operations",
        ));
    };
    check_select(select)?;
    // FROM topic [, unnest(expr) AS x]
    let mut from = select.from.iter();
    let first = from
        .next()
        .ok_or_else(|| err(pos(select.as_ref()), "expected FROM topic"))?;
    if let Some(j) = first.joins.first() {
        return Err(unsupported(pos(&j.relation), "JOIN"));
    }
    let source = match &first.relation {
        TableFactor::Table {
            name, args: None, ..
        } => name.to_string(),
        other => {
            return Err(unsupported(
                pos(other),
                "a FROM item other than a topic name",
            ))
        }
    };
    let mut ops = Vec::new();
    for t in from {
        match &t.relation {
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_offset: false,
                with_ordinality: false,
                ..
            } if array_exprs.len() == 1 && t.joins.is_empty() => {
                if ops.iter().any(|o| matches!(o, RowOp::FlatMap(_))) {
                    return Err(unsupported(pos(&t.relation), "more than one unnest"));
                }
                ops.push(RowOp::FlatMap(compiler.compile(&array_exprs[0])?));
                item_alias = Some(
                    alias
                        .as_ref()
                        .map_or("unnest".to_owned(), |a| a.name.value.to_lowercase()),
                );
            }
            other => {
                return Err(unsupported(
                    pos(other),
                    "a second FROM item other than unnest(expr) AS name",
                ))
            }
        }
    }
    compiler.item_alias = item_alias;
    if let Some(w) = &select.selection {
        ops.push(RowOp::Filter(compiler.compile(w)?));
    }
    let items = select_items(&select.projection)?;
    let group_exprs = match &select.group_by {
        GroupByExpr::Expressions(e, mods) if mods.is_empty() => e.clone(),
        GroupByExpr::Expressions(e, _) => {
            return Err(unsupported(
                e.first().map_or(pos(select.as_ref()), pos),
                "GROUP BY modifiers",
            ))
        }
        GroupByExpr::All(_) => return Err(unsupported(pos(select.as_ref()), "GROUP BY ALL")),
    };
    let has_agg = items
        .iter()
        .any(|(_, e)| e.as_ref().is_some_and(contains_aggregate))
        || select.having.is_some();
    let order_by = match &query.order_by {
        None => Vec::new(),
        Some(o) => match &o.kind {
            OrderByKind::Expressions(e) => e
                .iter()
                .map(|x| (x.expr.clone(), x.options.asc == Some(false)))
                .collect(),
            OrderByKind::All(_) => return Err(unsupported(pos(query.as_ref()), "ORDER BY ALL")),
        },
    };
    let limit = match &query.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: None,
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => None,
        Some(LimitClause::LimitOffset {
            limit: Some(e),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => Some(
            literal_usize(e)
                .ok_or_else(|| err(pos(e), "LIMIT needs a non-negative integer literal"))?,
        ),
        Some(_) => return Err(unsupported(pos(query.as_ref()), "OFFSET in LIMIT")),
    };
    let stage = if group_exprs.is_empty() && !has_agg {
        if let Some((e, _)) = order_by.first() {
            return Err(unsupported(
                pos(e),
                "ORDER BY in a stateless job (order is per window, on a windowed aggregate)",
            ));
        }
        if limit.is_some() {
            return Err(unsupported(pos(query.as_ref()), "LIMIT in a stateless job"));
        }
        Stage::Stateless(projection(&items, &mut compiler)?)
    } else {
        Stage::Aggregate(aggregate(
            &items,
            &group_exprs,
            select,
            order_by,
            limit,
            &mut compiler,
            &options,
        )?)
    };
    Ok(Plan {
        name: header.name,
        source,
        sink,
        options,
        ops,
        stage,
    })
}

fn parse_one(body: &str) -> Result<Statement, ProcessorError> {
    let mut stmts = Parser::new(&GenericDialect {})
        .try_with_sql(body)
        .and_then(|mut p| p.parse_statements())
        .map_err(parser_error)?;
    if stmts.len() != 1 {
        return Err(err(
            Location { line: 1, column: 1 },
            format!("expected one statement, found {}", stmts.len()),
        ));
    }
    stmts
        .pop()
        .ok_or_else(|| err(Location { line: 1, column: 1 }, "empty statement"))
}

/// sqlparser reports "... at Line: L, Column: C" in its message; lift the position out.
fn parser_error(e: sqlparser::parser::ParserError) -> ProcessorError {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("sql parser error: ")
        .unwrap_or(&msg)
        .to_owned();
    let re = regex::Regex::new(r"\s*at Line: (\d+), Column: (\d+)").ok();
    if let Some(c) = re.as_ref().and_then(|re| re.captures(&msg)) {
        let line = c[1].parse().unwrap_or(1);
        let column = c[2].parse().unwrap_or(1);
        let reason = msg.replace(&c[0], "");
        return ProcessorError::Sql {
            line,
            column,
            reason,
        };
    }
    ProcessorError::Sql {
        line: 1,
        column: 1,
        reason: msg,
    }
}

fn check_select(s: &ast::Select) -> Result<(), ProcessorError> {
    let at = pos(s);
    if s.distinct.is_some() {
        return Err(unsupported(at, "SELECT DISTINCT"));
    }
    if s.qualify.is_some() || !s.named_window.is_empty() {
        return Err(unsupported(at, "window function OVER"));
    }
    if !s.lateral_views.is_empty() || s.top.is_some() || s.into.is_some() {
        return Err(unsupported(at, "this SELECT form"));
    }
    Ok(())
}

/// (output name, expression or `None` for `*`).
fn select_items(items: &[SelectItem]) -> Result<Vec<(String, Option<ast::Expr>)>, ProcessorError> {
    items
        .iter()
        .map(|i| match i {
            SelectItem::UnnamedExpr(e) => Ok((default_name(e), Some(e.clone()))),
            SelectItem::ExprWithAlias { expr, alias } => {
                Ok((alias.value.clone(), Some(expr.clone())))
            }
            SelectItem::Wildcard(_) => Ok(("*".to_owned(), None)),
            SelectItem::QualifiedWildcard(..) => {
                Err(unsupported(Location { line: 1, column: 1 }, "qualified *"))
            }
        })
        .collect()
}

fn default_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => i.value.clone(),
        ast::Expr::CompoundIdentifier(p) => {
            p.last().map_or_else(|| e.to_string(), |i| i.value.clone())
        }
        ast::Expr::Function(f) => function_name(f),
        other => other.to_string(),
    }
}

fn contains_aggregate(e: &ast::Expr) -> bool {
    let mut found = false;
    let _ = ast::visit_expressions(e, |x| {
        if let ast::Expr::Function(f) = x {
            if agg_kind(&function_name(f)).is_some() && f.over.is_none() {
                found = true;
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    found
}

fn literal_usize(e: &ast::Expr) -> Option<usize> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn projection(
    items: &[(String, Option<ast::Expr>)],
    c: &mut Compiler,
) -> Result<Projection, ProcessorError> {
    let names: Vec<Option<String>> = items
        .iter()
        .map(|(n, e)| match e {
            None => Some("*".to_owned()),
            Some(ast::Expr::Identifier(i)) if i.value.eq_ignore_ascii_case(n) => {
                Some(i.value.to_lowercase())
            }
            _ => None,
        })
        .collect();
    let plain: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
    if plain.len() == names.len()
        && matches!(
            plain.as_slice(),
            ["*"] | ["value"] | ["key", "value"] | ["value", "key"]
        )
    {
        return Ok(Projection::Passthrough);
    }
    let mut cols = Vec::with_capacity(items.len());
    for (name, e) in items {
        let e = e.as_ref().ok_or_else(|| {
            unsupported(
                Location { line: 1, column: 1 },
                "* together with other columns",
            )
        })?;
        cols.push((name.clone(), c.compile(e)?));
    }
    Ok(Projection::Columns(cols))
}

fn aggregate(
    items: &[(String, Option<ast::Expr>)],
    group_exprs: &[ast::Expr],
    select: &ast::Select,
    order_by: Vec<(ast::Expr, bool)>,
    limit: Option<usize>,
    c: &mut Compiler,
    options: &JobOptions,
) -> Result<AggregatePlan, ProcessorError> {
    let mut window = None;
    let mut keys = Vec::new();
    let mut scope = GroupScope::default();
    for g in group_exprs {
        if let ast::Expr::Function(f) = g {
            let name = function_name(f);
            if matches!(name.as_str(), "tumble" | "hop" | "session") {
                if window.is_some() {
                    return Err(unsupported(pos(g), "more than one window in GROUP BY"));
                }
                window = Some(window_of(f, &name)?);
                continue;
            }
        }
        // A select alias that is not an input column names the select expression.
        let mut resolved = g.clone();
        let mut name = default_name(g);
        if let ast::Expr::Identifier(id) = g {
            let n = id.value.to_lowercase();
            let is_input =
                input_column(&n).is_some() || c.item_alias.as_deref() == Some(n.as_str());
            if !is_input {
                match items
                    .iter()
                    .find(|(alias, e)| alias.to_lowercase() == n && e.is_some())
                {
                    Some((alias, Some(e))) => {
                        resolved = e.clone();
                        name = alias.clone();
                    }
                    _ => return Err(err(pos(g), format!("unknown column {n} in GROUP BY"))),
                }
            }
        }
        if contains_aggregate(&resolved) {
            return Err(err(pos(g), "aggregates are not allowed in GROUP BY"));
        }
        keys.push((name.clone(), c.compile(&resolved)?));
        scope.keys.push((resolved.to_string(), name.to_lowercase()));
    }
    scope.windowed = window.is_some();
    scope.select = items
        .iter()
        .filter_map(|(n, e)| e.as_ref().map(|e| (n.to_lowercase(), e.clone())))
        .collect();
    c.group = Some(scope);
    let mut select_cols = Vec::with_capacity(items.len());
    for (name, e) in items {
        let e = e
            .as_ref()
            .ok_or_else(|| unsupported(pos(select), "SELECT * with GROUP BY"))?;
        select_cols.push((name.clone(), c.compile(e)?));
    }
    let having = select.having.as_ref().map(|h| c.compile(h)).transpose()?;
    let mut order = Vec::with_capacity(order_by.len());
    for (e, desc) in &order_by {
        order.push((c.compile(e)?, *desc));
    }
    let scope = c.group.take().unwrap_or_default();
    if (!order.is_empty() || limit.is_some())
        && (window.is_none() || options.emit != EmitMode::Final)
    {
        let at = order_by.first().map_or(pos(select), |(e, _)| pos(e));
        return Err(unsupported(
            at,
            "ORDER BY/LIMIT except per window of a windowed aggregate with emit = 'final'",
        ));
    }
    Ok(AggregatePlan {
        keys,
        window,
        aggs: scope.aggs.into_iter().map(|(_, s)| s).collect(),
        having,
        select: select_cols,
        order_by: order,
        limit,
    })
}

fn window_of(f: &ast::Function, name: &str) -> Result<Window, ProcessorError> {
    let at = pos(f);
    let (args, _) = function_args(f)?;
    let args: Vec<&ast::Expr> = args.into_iter().flatten().collect();
    let positive = |ms: i64, what: &str| {
        if ms > 0 {
            Ok(ms)
        } else {
            Err(err(at, format!("{name}: {what} must be positive")))
        }
    };
    match (name, args.as_slice()) {
        ("tumble", [size]) => Ok(Window::tumbling(positive(interval_ms(size)?, "size")?)),
        ("hop", [slide, size]) => {
            let (slide, size) = (
                positive(interval_ms(slide)?, "slide")?,
                positive(interval_ms(size)?, "size")?,
            );
            if slide > size {
                return Err(err(at, "hop: slide must not exceed size"));
            }
            Ok(Window::hopping(size, slide))
        }
        ("session", [gap]) => Ok(Window::session(positive(interval_ms(gap)?, "gap")?)),
        ("tumble", _) => Err(err(
            at,
            "tumble takes one interval: tumble(interval '10 seconds')",
        )),
        ("hop", _) => Err(err(at, "hop takes two intervals: hop(slide, size)")),
        _ => Err(err(
            at,
            "session takes one interval: session(interval '30 seconds')",
        )),
    }
}

fn options(opts: &[JobOption], c: &mut Compiler) -> Result<JobOptions, ProcessorError> {
    let mut o = JobOptions::default();
    for opt in opts {
        let v = opt.value.trim().to_lowercase();
        let bad = |what: &str| {
            err(
                opt.at,
                format!("option {}: {what}, got '{}'", opt.name, opt.value),
            )
        };
        match opt.name.as_str() {
            "emit" => {
                o.emit = match v.as_str() {
                    "final" => EmitMode::Final,
                    "changes" => EmitMode::Changes,
                    _ => return Err(bad("expected 'final' or 'changes'")),
                }
            }
            "grace" => o.grace_ms = duration_ms(&v).ok_or_else(|| bad("expected a duration like '5 seconds'"))?,
            "idle_timeout" => o.idle_timeout_ms = duration_ms(&v).ok_or_else(|| bad("expected a duration like '30 seconds'"))?,
            "time" => {
                o.time = match v.as_str() {
                    "event" => TimeMode::Event,
                    "processing" => TimeMode::Processing,
                    _ => return Err(bad("expected 'event' or 'processing'")),
                }
            }
            "on_error" => {
                o.on_error = match v.as_str() {
                    "skip" => OnError::Skip,
                    "dead_letter" => OnError::DeadLetter,
                    "stop" => OnError::Stop,
                    _ => return Err(bad("expected 'skip', 'dead_letter' or 'stop'")),
                }
            }
            "late_topic" => o.late_topic = Some(opt.value.clone()),
            "event_time" => {
                let e = Parser::new(&GenericDialect {})
                    .try_with_sql(&opt.value)
                    .and_then(|mut p| p.parse_expr())
                    .map_err(|e| bad(&format!("not an expression ({e})")))?;
                o.event_time = Some(c.compile(&e).map_err(|e| bad(&e.to_string()))?);
            }
            other => return Err(err(opt.at, format!("unknown option {other} (known: emit, grace, time, event_time, late_topic, idle_timeout, on_error)"))),
        }
    }
    Ok(o)
}
