//! Planned runs: [`Graph::plan`] starts a first run partly done, [`Graph::again`] reruns what
//! did not complete in an earlier run, reusing every value that did; [`Plan::reset`] reruns
//! chosen tasks and their descendants, [`Plan::mark_done`] supplies a task's value without
//! running it, [`Plan::only`] runs a chosen subset; and [`Graph::replace`] swaps one task's
//! function, for example to fix it before a rerun.

use core::fmt;
use core::future::Future;
use std::sync::Arc;

use crate::error::PlanError;
use crate::executor::{Placement, Value};
use crate::graph::{index, Graph, GraphInner, TypeInfo, Work};
use crate::id::Status;
use crate::inputs::{async_work, blocking_work, Inputs};
use crate::options::RunOptions;
use crate::report::Report;
use crate::run::{Run, Start};
use crate::state::Origin;

impl<P: Send + Sync + 'static> Graph<P> {
    /// Plans a rerun from `report` (of a run of this graph, or of a graph made from it by
    /// [`replace`](Graph::replace)).
    ///
    /// By default the rerun runs every task that did not complete in `report` (failed,
    /// skipped, cancelled, not run) and reuses the values of all others: the same `Arc`s,
    /// nothing is recomputed. [`reset`](Plan::reset), [`mark_done`](Plan::mark_done) and
    /// [`only`](Plan::only) change the plan; [`run`](Plan::run) checks it and starts the
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
    pub fn again<'a>(&'a self, report: &'a Report) -> Plan<'a, P> {
        Plan {
            graph: self,
            report: Some(report),
            resets: Vec::new(),
            marks: Vec::new(),
            only: None,
            options: RunOptions::new(),
        }
    }

    /// Plans a first run: by default every task runs, as with [`run`](Graph::run);
    /// [`mark_done`](Plan::mark_done) gives tasks their values without running them and
    /// [`only`](Plan::only) runs a chosen subset, with no earlier run needed.
    ///
    /// ```
    /// use dagjoin::runtime::{NamedGraphBuilder, PlanError};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("download", |_| async { anyhow::bail!("offline") as anyhow::Result<String> })
    ///     .task("parse", |inputs| async move { Ok(inputs.get::<String>("download")?.len()) })
    ///     .depends("parse", ["download"]);
    /// let graph = builder.build().unwrap();
    ///
    /// // The download is already on disk: start with it done.
    /// let run = graph.plan().mark_done("download", "cached page".to_owned()).run(()).unwrap();
    /// let report = run.await;
    /// assert_eq!(report.value::<usize>("parse").unwrap(), &11);
    /// assert!(report.task("download").unwrap().marked_done());
    ///
    /// // Running only `parse` without a value for `download` fails before anything runs.
    /// let error = graph.plan().only(["parse"]).run(()).unwrap_err();
    /// assert!(matches!(error, PlanError::MissingInput { .. }));
    /// assert_eq!(
    ///     error.to_string(),
    ///     "task `parse` cannot run: its dependency `download` has no result and does not \
    ///      run; reset it, choose it to run, or mark it done"
    /// );
    /// # });
    /// ```
    pub fn plan(&self) -> Plan<'_, P> {
        Plan {
            graph: self,
            report: None,
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
    pub fn replace<F, Fut, V>(&self, name: &str, f: F) -> Result<Self, PlanError>
    where
        F: Fn(Inputs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<V>> + Send + 'static,
        V: Send + Sync + 'static,
    {
        self.replaced::<V>(name, async_work(f), &Placement::Inline)
    }

    /// Like [`replace`](Graph::replace), with a synchronous function run on the blocking pool.
    ///
    /// # Errors
    ///
    /// If there is no task `name`, or it produces another type than `V`.
    pub fn replace_blocking<F, V>(&self, name: &str, f: F) -> Result<Self, PlanError>
    where
        F: Fn(Inputs) -> anyhow::Result<V> + Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        self.replaced::<V>(name, blocking_work(f), &Placement::Blocking)
    }

    fn replaced<V: Send + Sync + 'static>(
        &self,
        name: &str,
        work: Work,
        placement: &Placement,
    ) -> Result<Self, PlanError> {
        let v = node(&self.inner, name)?;
        let mut nodes = self.inner.nodes.clone();
        let mut executors = self.inner.executors.clone();
        let node = &mut nodes[v];
        check_type::<V>(node.output, name)?;
        node.work = Some(work);
        node.executor = executors.index(placement);
        Ok(Self::from_inner(self.inner.with_nodes(nodes, executors)))
    }
}

/// A run being planned: a first run from [`Graph::plan`], a rerun from [`Graph::again`].
///
/// The tasks that run are, by default, every task for a first run and, for a rerun, those
/// that did not complete in the report, plus the
/// [`reset`](Plan::reset) tasks, plus the descendants of reset and marked tasks; with
/// [`only`](Plan::only), exactly the chosen tasks. Every other task keeps its value from the
/// report when it has one that is still valid (completed, and not a descendant of a reset or
/// marked task), and is not run otherwise.
#[must_use = "a planned run does nothing until `run` is called"]
pub struct Plan<'a, P> {
    graph: &'a Graph<P>,
    report: Option<&'a Report>,
    resets: Vec<String>,
    marks: Vec<(String, Value, TypeInfo)>,
    only: Option<Vec<String>>,
    options: RunOptions,
}

impl<P: Send + Sync + 'static> Plan<'_, P> {
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

    /// Sets the options of the run.
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks the plan and returns the run, with parameter `param` (reused values keep what
    /// they were computed from).
    ///
    /// # Errors
    ///
    /// Before anything runs: if the report is of another graph, a name is not a task, a
    /// marked value has the wrong type, a task is both marked done and chosen with
    /// [`only`](Plan::only), or a task to run has a dependency without a value that does not
    /// run (naming both).
    pub fn run(self, param: P) -> Result<Run, PlanError> {
        let graph = &self.graph.inner;
        let report = self.report;
        if let Some(report) = report.filter(|report| report.base.id != graph.id) {
            return Err(PlanError::ForeignReport {
                report_graph: report.base.id,
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
                        return Err(PlanError::MarkedAndChosen { task: name.clone() });
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
            stack.extend_from_slice(graph.successors(index(v)));
        }
        for (v, value) in marked.iter().enumerate() {
            if value.is_some() {
                stack.extend_from_slice(graph.successors(index(v)));
            }
        }
        while let Some(s) = stack.pop() {
            if !dirty[s as usize] {
                dirty[s as usize] = true;
                stack.extend_from_slice(graph.successors(s));
            }
        }

        let mut runs = vec![false; n];
        let mut given: Vec<Option<(Value, Origin)>> = vec![None; n];
        for v in 1..n {
            if let Some(value) = marked[v].take() {
                given[v] = Some((value, Origin::Given));
                continue;
            }
            // A first run has nothing to reuse.
            let earlier = report.and_then(|report| {
                let completed = report.records[v].status() == Status::Completed;
                completed.then(|| report.values[v].clone()).flatten()
            });
            // A growth step that completed runs again, to add its tasks again (reusing the
            // values of those that completed).
            let regrows = report.is_some_and(|report| report.added.is_some())
                && matches!(graph.nodes[v].work, Some(Work::Grow(_)));
            runs[v] = match &only {
                Some(chosen) => chosen[v],
                None => dirty[v] || earlier.is_none() || regrows,
            };
            if !runs[v] && !dirty[v] {
                given[v] = earlier.map(|value| (value, Origin::Reused));
            }
        }
        for v in 1..n {
            if !runs[v] {
                continue;
            }
            for &d in graph.deps(index(v)) {
                if d != 0 && !runs[d as usize] && given[d as usize].is_none() {
                    return Err(PlanError::MissingInput {
                        task: graph.name(index(v)).to_owned(),
                        dependency: graph.name(d).to_owned(),
                    });
                }
            }
        }
        Ok(Run::new(
            graph.clone(),
            Arc::new(param),
            self.options,
            Some(Start {
                runs,
                given,
                earlier: report.map(Report::earlier).unwrap_or_default(),
                dirty,
            }),
        ))
    }
}

impl<P> fmt::Debug for Plan<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("graph", self.graph)
            .field("report", &self.report.map(Report::run_key))
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
fn node(graph: &GraphInner, name: &str) -> Result<usize, PlanError> {
    graph
        .lookup(name)
        .map(|v| v as usize)
        .ok_or_else(|| PlanError::UnknownTask {
            name: name.to_owned(),
        })
}

fn check_type<V: 'static>(expected: TypeInfo, task: &str) -> Result<(), PlanError> {
    check_type_info(expected, TypeInfo::of::<V>(), task)
}

fn check_type_info(expected: TypeInfo, given: TypeInfo, task: &str) -> Result<(), PlanError> {
    if expected.id == given.id {
        Ok(())
    } else {
        Err(PlanError::TypeMismatch {
            task: task.to_owned(),
            expected: expected.name,
            given: given.name,
        })
    }
}
