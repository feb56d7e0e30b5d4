//! `Pipeline`: the typed Rust builder. It compiles to the same [`Plan`] as SQL; closures become
//! native expression nodes over the current element (the record value as text or bytes, or the
//! element produced by the last `flat_map`/`map`).

use std::sync::Arc;

use crate::aggregate::{AggKind, AggSpec};
use crate::error::RecordError;
use crate::expr::{Column, Expr, NativeFn};
use crate::plan::{AggregatePlan, JobOptions, Plan, Projection, RowOp, Stage};
use crate::value::Value;
use crate::window::Window;

/// A job under construction: `Pipeline::from_topic("lines").flat_map(..).key_by(..)
/// .window(Window::tumbling(10_000)).count().to_topic("out")`.
pub struct Pipeline {
    source: String,
    options: JobOptions,
    ops: Vec<RowOp>,
    current: Column,
    key: Option<Expr>,
    window: Option<Window>,
    aggs: Vec<(String, AggSpec)>,
}

fn native(
    f: impl Fn(&Value) -> Result<Value, RecordError> + Send + Sync + 'static,
    arg: Column,
) -> Expr {
    let f: NativeFn = Arc::new(move |args: &[Value]| f(args.first().unwrap_or(&Value::Null)));
    Expr::Native(f, vec![Expr::Col(arg)])
}

impl Pipeline {
    pub fn from_topic(topic: &str) -> Pipeline {
        Pipeline {
            source: topic.to_owned(),
            options: JobOptions::default(),
            ops: Vec::new(),
            current: Column::Value,
            key: None,
            window: None,
            aggs: Vec::new(),
        }
    }

    pub fn options(mut self, options: JobOptions) -> Pipeline {
        self.options = options;
        self
    }

    /// Keep elements for which `f` is true.
    pub fn filter(mut self, f: impl Fn(&Value) -> bool + Send + Sync + 'static) -> Pipeline {
        self.ops.push(RowOp::Filter(native(
            move |v| Ok(Value::Bool(f(v))),
            self.current,
        )));
        self
    }

    /// One element in, any number out.
    pub fn flat_map(
        mut self,
        f: impl Fn(&Value) -> Vec<Value> + Send + Sync + 'static,
    ) -> Pipeline {
        self.ops.push(RowOp::FlatMap(native(
            move |v| Ok(Value::Array(f(v))),
            self.current,
        )));
        self.current = Column::Item;
        self
    }

    /// One element in, one out.
    pub fn map(mut self, f: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Pipeline {
        self.ops.push(RowOp::FlatMap(native(
            move |v| Ok(Value::Array(vec![f(v)])),
            self.current,
        )));
        self.current = Column::Item;
        self
    }

    /// Group by `f(element)`; the output key is its text (or JSON).
    pub fn key_by(mut self, f: impl Fn(&Value) -> Value + Send + Sync + 'static) -> Pipeline {
        self.key = Some(native(move |v| Ok(f(v)), self.current));
        self
    }

    pub fn window(mut self, w: Window) -> Pipeline {
        self.window = Some(w);
        self
    }

    /// `count(*)`, output column `count`.
    pub fn count(mut self) -> Pipeline {
        self.aggs.push((
            "count".to_owned(),
            AggSpec {
                kind: AggKind::CountStar,
                arg: None,
            },
        ));
        self
    }

    /// Another aggregate of `f(element)`, output column `name`.
    pub fn aggregate(
        mut self,
        name: &str,
        kind: AggKind,
        f: impl Fn(&Value) -> Value + Send + Sync + 'static,
    ) -> Pipeline {
        let arg = (kind != AggKind::CountStar).then(|| native(move |v| Ok(f(v)), self.current));
        self.aggs.push((name.to_owned(), AggSpec { kind, arg }));
        self
    }

    /// Finish the pipeline into a plan named after its output topic.
    pub fn to_topic(self, topic: &str) -> Plan {
        let stateless = self.key.is_none() && self.aggs.is_empty() && self.window.is_none();
        let stage = if stateless {
            match self.current {
                Column::Value => Stage::Stateless(Projection::Passthrough),
                c => Stage::Stateless(Projection::Columns(vec![(
                    "value".to_owned(),
                    Expr::Col(c),
                )])),
            }
        } else {
            let mut select = Vec::new();
            let keys: Vec<(String, Expr)> = self
                .key
                .into_iter()
                .map(|k| ("key".to_owned(), k))
                .collect();
            if !keys.is_empty() {
                select.push(("key".to_owned(), Expr::Col(Column::Group(0))));
            }
            if self.window.is_some() {
                select.push(("window_start".to_owned(), Expr::Col(Column::WindowStart)));
                select.push(("window_end".to_owned(), Expr::Col(Column::WindowEnd)));
            }
            for (i, (name, _)) in self.aggs.iter().enumerate() {
                select.push((name.clone(), Expr::Col(Column::Agg(i))));
            }
            Stage::Aggregate(AggregatePlan {
                keys,
                window: self.window,
                aggs: self.aggs.into_iter().map(|(_, s)| s).collect(),
                having: None,
                select,
                order_by: Vec::new(),
                limit: None,
            })
        };
        Plan {
            name: topic.to_owned(),
            source: self.source,
            sink: topic.to_owned(),
            options: self.options,
            ops: self.ops,
            stage,
        }
    }
}
