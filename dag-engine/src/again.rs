//! Runs after a run: [`Graph::again`] reruns what did not complete, reusing every value that
//! did; [`Again::reset`] reruns chosen tasks and their descendants, [`Again::mark_done`]
//! supplies a task's value without running it, [`Again::only`] runs a chosen subset; and
//! [`Graph::replace`] swaps one task's function, for example to fix it before a rerun.

use core::fmt;
use core::future::Future;
use std::sync::Arc;

use crate::error::AgainError;
use crate::graph::{Graph, GraphInner, Kind, TypeInfo, Value, Work};
use crate::named::{async_work, blocking_work, Inputs};
use crate::report::{Origin, Report, Status};
use crate::run::{Plan, Run, RunOptions};

impl<P: Send + Sync + 'static> Graph<P> {
    /// Plans a rerun from `report` (of a run of this graph, or of a graph made from it by
    /// [`replace`](Graph::replace)).
    ///
    /// By default the rerun runs every task that did not complete in `report` (failed,
    /// skipped, cancelled, not run) and reuses the values of all others: the same `Arc`s,
    /// nothing is recomputed. [`reset`](Again::reset), [`mark_done`](Again::mark_done) and
    /// [`only`](Again::only) change the plan; [`run`](Again::run) checks it and starts the
    /// run.
    ///
    /// ```
    /// use dagjoin::runtime::{NamedGraphBuilder, Status};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let flaky_fails = Arc::new(AtomicBool::new(true));
    /// let fails = flaky_fails.clone();
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("load", |_| async { Ok(20) })
    ///     .task("flaky", move |inputs| {
    ///         let fails = fails.load(Ordering::SeqCst);
    ///         async move {
    ///             anyhow::ensure!(!fails, "service unavailable");
    ///             Ok(inputs.get::<i32>("load")? + 1)
    ///         }
    ///     })
    ///     .task("double", |inputs| async move { Ok(inputs.get::<i32>("flaky")? * 2) })
    ///     .depends("flaky", ["load"])
    ///     .depends("double", ["flaky"]);
    /// let graph = builder.build().unwrap();
    ///
    /// let first = graph.run(()).await;
    /// assert_eq!(first.task("double").unwrap().status(), Status::Skipped);
    ///
    /// flaky_fails.store(false, Ordering::SeqCst);
    /// let second = graph.again(&first).run(()).unwrap().await;
    /// assert!(second.task("load").unwrap().reused());
    /// assert_eq!(second.value::<i32>("double").unwrap(), &42);
    /// # });
    /// ```
    pub fn again<'a>(&'a self, report: &'a Report) -> Again<'a, P> {
        Again {
            graph: self,
            report,
            resets: Vec::new(),
            marks: Vec::new(),
            only: None,
            options: RunOptions::new(),
        }
    }

    /// A graph of the same structure (and id, so handles and reports still fit) in which task
    /// `name` runs `f` on the run's own task, taking its inputs as [`Inputs`].
    ///
    /// # Errors
    ///
    /// If there is no task `name`, or it produces another type than `V`.
    pub fn replace<F, Fut, V>(&self, name: &str, f: F) -> Result<Self, AgainError>
    where
        F: Fn(Inputs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<V>> + Send + 'static,
        V: Send + Sync + 'static,
    {
        self.replaced::<V>(name, async_work(f), Kind::Async)
    }

    /// Like [`replace`](Graph::replace), with a synchronous function run on the blocking pool.
    ///
    /// # Errors
    ///
    /// If there is no task `name`, or it produces another type than `V`.
    pub fn replace_blocking<F, V>(&self, name: &str, f: F) -> Result<Self, AgainError>
    where
        F: Fn(Inputs) -> anyhow::Result<V> + Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        self.replaced::<V>(name, blocking_work(f), Kind::Blocking)
    }

    fn replaced<V: Send + Sync + 'static>(
        &self,
        name: &str,
        work: Work,
        kind: Kind,
    ) -> Result<Self, AgainError> {
        let v = node(&self.inner, name)?;
        let mut nodes = self.inner.nodes.clone();
        let node = &mut nodes[v];
        check_type::<V>(node.output, name)?;
        node.work = Some(work);
        node.kind = kind;
        Ok(Self::from_inner(self.inner.with_nodes(nodes)))
    }
}

/// A rerun being planned, from [`Graph::again`].
///
/// The tasks that run are, by default, those that did not complete in the report, plus the
/// [`reset`](Again::reset) tasks, plus the descendants of reset and marked tasks; with
/// [`only`](Again::only), exactly the chosen tasks. Every other task keeps its value from the
/// report when it has one that is still valid (completed, and not a descendant of a reset or
/// marked task), and is not run otherwise.
#[must_use = "a planned rerun does nothing until `run` is called"]
pub struct Again<'a, P> {
    graph: &'a Graph<P>,
    report: &'a Report,
    resets: Vec<String>,
    marks: Vec<(String, Value, TypeInfo)>,
    only: Option<Vec<String>>,
    options: RunOptions,
}

impl<P: Send + Sync + 'static> Again<'_, P> {
    /// Also reruns tasks `names` and all their descendants, even if they completed.
    pub fn reset<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.resets.extend(names.into_iter().map(Into::into));
        self
    }

    /// Gives task `name` the value `value` without running it. Its descendants rerun with
    /// that value (unless they are marked done too).
    pub fn mark_done<V: Send + Sync + 'static>(
        mut self,
        name: impl Into<String>,
        value: V,
    ) -> Self {
        self.marks
            .push((name.into(), Arc::new(value), TypeInfo::of::<V>()));
        self
    }

    /// Runs exactly tasks `names` (calls add up), taking their inputs from the tasks that run
    /// with them, from the report, or from tasks marked done.
    pub fn only<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only
            .get_or_insert_with(Vec::new)
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// Sets the options of the rerun.
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks the plan and returns the rerun, with parameter `param` (reused values keep what
    /// they were computed from).
    ///
    /// # Errors
    ///
    /// Before anything runs: if the report is of another graph, a name is not a task, a
    /// marked value has the wrong type, a task is both marked done and chosen with
    /// [`only`](Again::only), or a task to run has a dependency without a value that does not
    /// run (naming both).
    pub fn run(self, param: P) -> Result<Run, AgainError> {
        let graph = &self.graph.inner;
        let report = self.report;
        if report.graph.id != graph.id {
            return Err(AgainError::ForeignReport {
                report_graph: report.graph.id,
                graph: graph.id,
            });
        }
        let n = graph.len();
        let resets = self
            .resets
            .iter()
            .map(|name| node(graph, name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut marked: Vec<Option<Value>> = vec![None; n];
        for (name, value, given) in self.marks {
            let v = node(graph, &name)?;
            check_type_info(graph.nodes[v].output, given, &name)?;
            marked[v] = Some(value);
        }
        let only = match &self.only {
            Some(names) => {
                let mut chosen = vec![false; n];
                for name in names {
                    let v = node(graph, name)?;
                    if marked[v].is_some() {
                        return Err(AgainError::MarkedAndChosen { task: name.clone() });
                    }
                    chosen[v] = true;
                }
                Some(chosen)
            }
            None => None,
        };

        // Reset tasks, and every descendant of a reset or marked task, lose their values.
        let mut dirty = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        for &v in &resets {
            dirty[v] = true;
            stack.extend_from_slice(graph.successors(crate::graph::index(v)));
        }
        for (v, value) in marked.iter().enumerate() {
            if value.is_some() {
                stack.extend_from_slice(graph.successors(crate::graph::index(v)));
            }
        }
        while let Some(s) = stack.pop() {
            if !dirty[s as usize] {
                dirty[s as usize] = true;
                stack.extend_from_slice(graph.successors(s));
            }
        }

        let mut runs = vec![false; n];
        let mut preset: Vec<Option<(Value, Origin)>> = vec![None; n];
        for v in 1..n {
            if let Some(value) = marked[v].take() {
                preset[v] = Some((value, Origin::Marked));
                continue;
            }
            let completed = report.tasks[v].phase == crate::report::Phase::Done(Status::Completed)
                && report.values[v].is_some();
            runs[v] = match &only {
                Some(chosen) => chosen[v],
                None => dirty[v] || !completed,
            };
            if !runs[v] && !dirty[v] && completed {
                preset[v] = report.values[v]
                    .clone()
                    .map(|value| (value, Origin::Reused));
            }
        }
        for v in 1..n {
            if !runs[v] {
                continue;
            }
            for &d in graph.deps(crate::graph::index(v)) {
                if d != 0 && !runs[d as usize] && preset[d as usize].is_none() {
                    return Err(AgainError::MissingInput {
                        task: graph.name(crate::graph::index(v)).to_owned(),
                        dependency: graph.name(d).to_owned(),
                    });
                }
            }
        }
        Ok(Run::new(
            graph.clone(),
            Arc::new(param),
            self.options,
            Some(Plan { runs, preset }),
        ))
    }
}

impl<P> fmt::Debug for Again<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Again")
            .field("graph", self.graph)
            .field("report", &self.report.run)
            .field("reset", &self.resets)
            .field(
                "mark_done",
                &self.marks.iter().map(|(name, ..)| name).collect::<Vec<_>>(),
            )
            .field("only", &self.only)
            .field("options", &self.options)
            .finish()
    }
}

/// The node of task `name`.
fn node(graph: &GraphInner, name: &str) -> Result<usize, AgainError> {
    graph
        .lookup(name)
        .map(|v| v as usize)
        .ok_or_else(|| AgainError::UnknownTask {
            name: name.to_owned(),
        })
}

fn check_type<V: 'static>(expected: TypeInfo, task: &str) -> Result<(), AgainError> {
    check_type_info(expected, TypeInfo::of::<V>(), task)
}

fn check_type_info(expected: TypeInfo, given: TypeInfo, task: &str) -> Result<(), AgainError> {
    if expected.id == given.id {
        Ok(())
    } else {
        Err(AgainError::TypeMismatch {
            task: task.to_owned(),
            expected: expected.name,
            given: given.name,
        })
    }
}
