//! The engine's errors: building a graph ([`BuildError`]), reading a task's inputs
//! ([`InputError`]) and a run's values ([`ValueError`]), a run's failed tasks ([`RunError`]),
//! planning a run ([`PlanError`]), and the errors an attempt ends with when it panics
//! ([`Panicked`]), takes too long ([`TimedOut`]) or is stopped from outside ([`Cancelled`]).
//!
//! Messages follow rustc's voice: lowercase, no final period, names in backticks.

use core::fmt;
use core::time::Duration;
use std::error::Error;
use std::sync::Arc;

use crate::id::Status;

/// Why [`GraphBuilder::build`](crate::GraphBuilder::build) or
/// [`NamedGraphBuilder::build`](crate::NamedGraphBuilder::build) refused a graph: every
/// problem found, in a deterministic order.
///
/// ```
/// use dagjoin::runtime::NamedGraphBuilder;
///
/// let mut builder = NamedGraphBuilder::new();
/// for name in ["a", "b", "c"] {
///     builder.task(name, |_| async { Ok(()) });
/// }
/// builder.depends("a", ["b"]).depends("b", ["c"]).depends("c", ["a", "zz"]);
/// let error = builder.build().unwrap_err();
/// assert_eq!(
///     error.to_string(),
///     "task `c` depends on `zz`, which is not a task; dependency cycle: `a` -> `b` -> `c` -> `a`"
/// );
/// ```
#[derive(Debug)]
pub struct BuildError {
    problems: Vec<BuildProblem>,
}

impl BuildError {
    pub(crate) fn new(problems: Vec<BuildProblem>) -> Self {
        debug_assert!(!problems.is_empty());
        Self { problems }
    }

    /// Every problem found (at least one).
    pub fn problems(&self) -> &[BuildProblem] {
        &self.problems
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            fmt::Display::fmt(problem, f)?;
        }
        Ok(())
    }
}

impl Error for BuildError {}

/// One problem of a graph that does not build.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildProblem {
    /// A handle from another builder was used (`site` says where).
    ForeignHandle {
        /// Where the handle was used, for example ``input 2 of task `c` ``.
        site: String,
        /// The id of the builder the handle comes from.
        builder: u64,
        /// The handle's node in that builder.
        index: u32,
        /// The id of the builder it was given to.
        this: u64,
    },
    /// Two tasks have the same name.
    DuplicateTask {
        /// The name.
        name: String,
    },
    /// A task has dependencies but no function.
    MissingFunction {
        /// The task.
        task: String,
    },
    /// A task depends on a name that is not a task.
    UnknownDependency {
        /// The task.
        task: String,
        /// The unknown dependency.
        dependency: String,
    },
    /// Options were given for a name that is not a task, or for the parameter.
    NotATask {
        /// The name (`param` for the parameter).
        name: String,
    },
    /// A task added with [`GraphBuilder::add`](crate::GraphBuilder::add) (or
    /// `add_blocking`) returns a `Result`: an `Err` would be its value, a completed task. Add
    /// it with `try_add` (or `try_add_blocking`) so that an `Err` fails it; to keep a `Result`
    /// as a value, wrap it in a type of your own.
    ResultValue {
        /// The task.
        task: String,
        /// The `Result` type.
        output: &'static str,
    },
    /// Tasks depend on each other in a cycle: `path` starts and ends with the same task and
    /// each task in it depends on the next.
    Cycle {
        /// The cycle, for example `["a", "b", "a"]`.
        path: Vec<String>,
    },
    /// A rule waits for a task the graph does not have.
    Rule {
        /// The rule.
        rule: String,
        /// What is wrong, for example ``it waits for `b`, which is not a task``.
        problem: String,
    },
}

impl fmt::Display for BuildProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForeignHandle {
                site,
                builder,
                index,
                this,
            } => write!(
                f,
                "{site} is a handle from another graph builder (node {index} of builder \
                 {builder}, given to builder {this}); use handles from the same builder"
            ),
            Self::DuplicateTask { name } => write!(f, "task `{name}` is defined more than once"),
            Self::MissingFunction { task } => {
                write!(f, "task `{task}` has dependencies but no function")
            }
            Self::UnknownDependency { task, dependency } => write!(
                f,
                "task `{task}` depends on `{dependency}`, which is not a task"
            ),
            Self::NotATask { name } => write!(f, "options are given for `{name}`, not a task"),
            Self::Rule { rule, problem } => write!(f, "rule `{rule}` cannot be kept: {problem}"),
            Self::ResultValue { task, output } => write!(
                f,
                "task `{task}` returns a `{output}` but was added with `add`, so an `Err` would \
                 be a completed value; add it with `try_add` (or `try_add_blocking`) so that an \
                 `Err` fails the task"
            ),
            Self::Cycle { path } => {
                f.write_str("dependency cycle: ")?;
                for (i, name) in path.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" -> ")?;
                    }
                    write!(f, "`{name}`")?;
                }
                Ok(())
            }
        }
    }
}

/// Why [`Inputs`](crate::Inputs) could not give a task the input it asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputError {
    /// The task has no dependency of that name.
    NotADependency {
        /// The task.
        task: String,
        /// The name asked for.
        name: String,
    },
    /// The task has fewer inputs than the position asked for.
    NoSuchInput {
        /// The task.
        task: String,
        /// The position asked for (from 0).
        index: usize,
        /// How many inputs the task has.
        count: usize,
    },
    /// The input has another type than the one asked for.
    TypeMismatch {
        /// The task.
        task: String,
        /// The dependency (`param` for the parameter).
        dependency: String,
        /// The type asked for.
        requested: &'static str,
        /// The type of the dependency's value.
        actual: &'static str,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotADependency { task, name } => {
                write!(f, "task `{task}` has no dependency `{name}`")
            }
            Self::NoSuchInput { task, index, count } => write!(
                f,
                "task `{task}` has {count} input(s), so there is no input at position {index}"
            ),
            Self::TypeMismatch {
                task,
                dependency,
                requested,
                actual,
            } => write!(
                f,
                "task `{task}` asked for `{dependency}` as `{requested}`, but `{dependency}` \
                 is a `{actual}`"
            ),
        }
    }
}

impl Error for InputError {}

/// Why a [`Report`](crate::Report) or a [`Graph`](crate::Graph) could not give what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// No task has that name.
    UnknownTask {
        /// The name asked for.
        name: String,
    },
    /// The handle comes from another builder than the graph's.
    ForeignHandle {
        /// The id of the builder the handle comes from.
        handle_builder: u64,
        /// The handle's node in that builder.
        handle_index: u32,
        /// The id of the graph's builder.
        graph: u64,
    },
    /// The task has no value in this run.
    NoValue {
        /// The task.
        task: String,
        /// Its status.
        status: Status,
    },
    /// The value has another type than the one asked for.
    TypeMismatch {
        /// The task.
        task: String,
        /// The type asked for.
        requested: &'static str,
        /// The type of the task's value.
        actual: &'static str,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownTask { name } => write!(f, "there is no task `{name}`"),
            Self::ForeignHandle {
                handle_builder,
                handle_index,
                graph,
            } => write!(
                f,
                "the handle is from another graph builder (node {handle_index} of builder \
                 {handle_builder}, but this graph comes from builder {graph})"
            ),
            Self::NoValue { task, status } => {
                write!(f, "task `{task}` has no value: it {}", status.describe())
            }
            Self::TypeMismatch {
                task,
                requested,
                actual,
            } => write!(
                f,
                "the value of task `{task}` was asked for as `{requested}`, but it is a `{actual}`"
            ),
        }
    }
}

impl Error for ValueError {}

/// The outcome of a run in which tasks failed: every failed task with its error, in the
/// order of the graph. From [`Report::check`](crate::Report::check).
///
/// With one failure, `Display` names the task and [`source`](Error::source) is its error:
/// `{}` shows ``task `fetch` failed``, and `{:#}` (like anyhow's `{:#}` and "Caused by", which
/// follow the source) adds the cause once: ``task `fetch` failed: connection refused``. With
/// several, `Display` lists each task with its own error chain and there is no single source:
/// ``2 tasks failed: `left` (disk full), `right` (network down)``.
///
/// ```
/// use dagjoin::runtime::GraphBuilder;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut g = GraphBuilder::<()>::new();
/// g.named("fetch").try_add(|| async { anyhow::bail!("connection refused") as anyhow::Result<u32> }, ());
/// let error = g.build().unwrap().run(()).await.check().unwrap_err();
/// assert_eq!(error.to_string(), "task `fetch` failed");
/// assert_eq!(format!("{error:#}"), "task `fetch` failed: connection refused");
/// assert_eq!(format!("{:#}", anyhow::Error::new(error)), "task `fetch` failed: connection refused");
/// # });
/// ```
#[derive(Clone)]
pub struct RunError {
    failures: Vec<(Arc<str>, Arc<anyhow::Error>)>,
    rules: Vec<(Arc<str>, Arc<anyhow::Error>)>,
}

impl RunError {
    pub(crate) fn new(
        failures: Vec<(Arc<str>, Arc<anyhow::Error>)>,
        rules: Vec<(Arc<str>, Arc<anyhow::Error>)>,
    ) -> Self {
        debug_assert!(!failures.is_empty() || !rules.is_empty());
        Self { failures, rules }
    }

    /// The failed tasks and their errors, in the order of the graph.
    pub fn failures(&self) -> impl ExactSizeIterator<Item = (&str, &anyhow::Error)> + '_ {
        self.failures
            .iter()
            .map(|(name, error)| (&**name, &**error))
    }

    /// The rules that failed, or that were required and never fired, with why.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = (&str, &anyhow::Error)> + '_ {
        self.rules.iter().map(|(name, error)| (&**name, &**error))
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.rules.is_empty() {
            if !self.failures.is_empty() {
                write!(f, "{} tasks failed: ", self.failures.len())?;
                for (name, error) in &self.failures {
                    write!(f, "`{name}` ({error:#}), ")?;
                }
            }
            if let ([(name, error)], true) = (&*self.rules, self.failures.is_empty()) {
                return write!(f, "rule `{name}` failed: {error:#}");
            }
            write!(f, "{} rules failed: ", self.rules.len())?;
            for (i, (name, error)) in self.rules.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{name}` ({error:#})")?;
            }
            return Ok(());
        }
        if let [(name, error)] = &*self.failures {
            write!(f, "task `{name}` failed")?;
            // `{:#}` of the error alone shows its cause; a chain that follows `source` (as
            // anyhow's does) formats each link with `{}`, so the cause is never shown twice.
            if f.alternate() {
                write!(f, ": {error:#}")?;
            }
            return Ok(());
        }
        write!(f, "{} tasks failed: ", self.failures.len())?;
        for (i, (name, error)) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}` ({error:#})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.failures
                    .iter()
                    .map(|(name, error)| (name.to_string(), format!("{error:#}"))),
            )
            .entries(
                self.rules
                    .iter()
                    .map(|(name, error)| (format!("rule {name}"), format!("{error:#}"))),
            )
            .finish()
    }
}

impl Error for RunError {
    /// The failed task's error when one task failed; `None` with several (each is in the
    /// message).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &*self.failures {
            [(_, error)] => Some(AsRef::<dyn Error>::as_ref(&**error)),
            _ => None,
        }
    }
}

/// Why a run's plan ([`Graph::plan`](crate::Graph::plan), [`Graph::again`](crate::Graph::again))
/// or a replacement ([`Graph::replace`](crate::Graph::replace)) was refused; nothing has run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// The report comes from a run of a graph with another structure.
    ForeignReport {
        /// The id of the report's graph.
        report_graph: u64,
        /// The id of this graph.
        graph: u64,
    },
    /// No task has that name.
    UnknownTask {
        /// The name.
        name: String,
    },
    /// A value of the wrong type was given for a task.
    TypeMismatch {
        /// The task.
        task: String,
        /// The type of the task's value.
        expected: &'static str,
        /// The type given.
        given: &'static str,
    },
    /// A task is both marked done and chosen to run.
    MarkedAndChosen {
        /// The task.
        task: String,
    },
    /// A task to run has a dependency that neither has a result nor runs.
    MissingInput {
        /// The task to run.
        task: String,
        /// Its dependency without a result.
        dependency: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ForeignReport {
                report_graph,
                graph,
            } => write!(
                f,
                "the report is of a run of another graph (builder {report_graph}, but this \
                 graph comes from builder {graph})"
            ),
            Self::UnknownTask { name } => write!(f, "there is no task `{name}`"),
            Self::TypeMismatch {
                task,
                expected,
                given,
            } => write!(
                f,
                "task `{task}` produces a `{expected}`, but a `{given}` was given for it"
            ),
            Self::MarkedAndChosen { task } => write!(
                f,
                "task `{task}` is marked done and also chosen to run; do one or the other"
            ),
            Self::MissingInput { task, dependency } => write!(
                f,
                "task `{task}` cannot run: its dependency `{dependency}` has no result and \
                 does not run; reset it, choose it to run, or mark it done"
            ),
        }
    }
}

impl Error for PlanError {}

/// The error of a task that panicked: the panic's message.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use dagjoin::runtime::{GraphBuilder, Panicked};
///
/// async fn divide(x: u32) -> u32 {
///     100 / x
/// }
///
/// let mut builder = GraphBuilder::new();
/// let x = builder.param();
/// builder.add(divide, x);
/// let report = builder.build().unwrap().run(0).await;
/// let error = report.task("divide").unwrap().error().unwrap();
/// let panic = error.downcast_ref::<Panicked>().unwrap();
/// assert_eq!(panic.message(), "attempt to divide by zero");
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panicked {
    message: String,
}

impl Panicked {
    /// From a panic's payload: its message if it is a string.
    pub(crate) fn from_payload(payload: &(dyn core::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Self { message }
    }

    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message)
    }
}

impl Error for Panicked {}

/// The error of an attempt that took longer than its
/// [`TaskOptions::timeout`](crate::TaskOptions::timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub(crate) after: Duration,
}

impl TimedOut {
    /// The timeout that elapsed.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.after)
    }
}

impl Error for TimedOut {}

/// The error of an attempt that was stopped from outside: its executor's task was aborted or
/// its runtime shut down. Such a task is [`Status::Cancelled`], not failed: it is not retried,
/// and its descendants are skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    reason: &'static str,
}

impl Cancelled {
    /// An attempt its executor stopped (an aborted task, a runtime shutting down).
    pub fn by_executor() -> Self {
        Self {
            reason: "its executor stopped it",
        }
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cancelled: {}", self.reason)
    }
}

impl Error for Cancelled {}
