//! The [`Report`] of a run: every task's status, value or error, skip reason, times and
//! attempts; the run's makespan and critical path.

use core::any::{type_name, Any};
use core::fmt;
use core::time::Duration;
use std::sync::{Arc, OnceLock};

use tokio::time::Instant;

use crate::error::{RunError, ValueError};
use crate::executor::Value;
use crate::graph::{index, GraphInner};
use crate::grow::Added;
use crate::id::{AttemptKey, Handle, RunKey, Status};
use crate::rules::{Fate, RuleRecord};
use crate::state::{Origin, TaskRecord};

/// What a run did: for every task its [`Status`], its value or error, why it was skipped,
/// when it started and finished, and how many attempts it took; the run's makespan and
/// critical path.
///
/// A run never fails as a whole: [`check`](Report::check) turns failed tasks into an error,
/// while the report keeps every value that was computed. Read values with
/// [`get`](Report::get) (typed handles) or [`value`](Report::value) (names). Times are
/// [`tokio::time::Instant`]s, so they are exact under `tokio::time::pause()`.
///
/// The report is made of the records the run's transitions wrote, one per task: the same
/// changes its events announce.
pub struct Report {
    /// The graph the run started from.
    pub(crate) base: Arc<GraphInner>,
    /// The tasks the run added, if any.
    pub(crate) added: Option<Box<Added>>,
    /// What became of the run's rules.
    pub(crate) rules: Box<[RuleRecord]>,
    /// The graph of both, made when first needed (a report read by handles never needs it).
    pub(crate) whole: OnceLock<Arc<GraphInner>>,
    pub(crate) key: RunKey,
    /// Node 0 is the parameter.
    pub(crate) values: Box<[Option<Value>]>,
    pub(crate) records: Box<[TaskRecord]>,
    pub(crate) started: Instant,
    pub(crate) finished: Instant,
}

impl Report {
    /// The run's graph: the one it started from, with the tasks it added.
    pub(crate) fn graph(&self) -> &Arc<GraphInner> {
        match &self.added {
            None => &self.base,
            Some(added) => self
                .whole
                .get_or_init(|| Arc::new(self.base.extended(added))),
        }
    }

    /// The values of the tasks the run added and completed, by name, with their inputs: what a
    /// rerun may reuse. Tasks a rule added are left out: what a rule adds depends on when it
    /// fired, so a rerun builds them anew.
    pub(crate) fn earlier(&self) -> std::collections::HashMap<Box<str>, crate::grow::Earlier> {
        let Some(added) = &self.added else {
            return std::collections::HashMap::new();
        };
        let name = |v: u32| {
            if added.has(v) {
                added.name(v)
            } else {
                self.base.name(v)
            }
        };
        (added.base..index(self.records.len()))
            .filter(|&v| self.records[v as usize].status() == Status::Completed)
            .filter(|&v| added.rule_of(v).is_none())
            .filter_map(|v| {
                let value = self.values[v as usize].clone()?;
                let inputs = crate::grow::inputs_hash(added.deps(v).iter().map(|&d| name(d)));
                Some((added.name(v).into(), crate::grow::Earlier { value, inputs }))
            })
            .collect()
    }

    /// The key of this run.
    pub fn run_key(&self) -> &RunKey {
        &self.key
    }

    /// The value of the task behind `handle` (or the parameter).
    ///
    /// # Errors
    ///
    /// If the handle comes from another graph's builder, or the task has no value (it
    /// failed, was skipped, ...).
    pub fn get<T: Any>(&self, handle: &Handle<T>) -> Result<&T, ValueError> {
        self.typed(self.handle(handle)?)
    }

    /// The node behind `handle`: of the graph, or made by a growth step or rule of this run.
    fn handle<T>(&self, handle: &Handle<T>) -> Result<u32, ValueError> {
        let added = self
            .added
            .as_ref()
            .and_then(|added| added.step(handle.builder));
        match added {
            Some(tasks) if tasks.contains(&handle.index) => Ok(handle.index),
            _ => self.base.check_handle(handle),
        }
    }

    /// The value of task `name`.
    ///
    /// # Errors
    ///
    /// If there is no task `name`, it has no value (it failed, was skipped, ...), or its
    /// value is not a `T`.
    pub fn value<T: Any>(&self, name: &str) -> Result<&T, ValueError> {
        self.typed(self.node(name)?)
    }

    /// The report of task `name`.
    ///
    /// # Errors
    ///
    /// If there is no task `name`.
    pub fn task(&self, name: &str) -> Result<TaskReport<'_>, ValueError> {
        Ok(TaskReport {
            report: self,
            node: self.node(name)?,
        })
    }

    /// The report of the task behind `handle`.
    ///
    /// # Errors
    ///
    /// If the handle comes from another graph's builder, or is the parameter's.
    pub fn task_of<T>(&self, handle: &Handle<T>) -> Result<TaskReport<'_>, ValueError> {
        match self.handle(handle)? {
            0 => Err(ValueError::UnknownTask {
                name: "param".to_owned(),
            }),
            node => Ok(TaskReport { report: self, node }),
        }
    }

    /// Every task's report, in the order the tasks were added.
    pub fn tasks(&self) -> impl ExactSizeIterator<Item = TaskReport<'_>> + '_ {
        (1..self.graph().len()).map(move |v| TaskReport {
            report: self,
            node: index(v),
        })
    }

    /// How many tasks ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.records[1..]
            .iter()
            .filter(|task| task.status() == status)
            .count()
    }

    /// `Ok` if no task failed; otherwise a [`RunError`] that lists every failed task with its
    /// error.
    ///
    /// Tasks cancelled or not run (a run stopped by a cancel or a deadline, a plan that left
    /// them out) are no failures: [`is_complete`](Report::is_complete) says whether every
    /// task has its value.
    ///
    /// # Errors
    ///
    /// If a task failed, a rule failed, or a [required](crate::Rule::required) rule never
    /// fired.
    pub fn check(&self) -> Result<(), RunError> {
        let failures: Vec<_> = self.records[1..]
            .iter()
            .enumerate()
            .filter_map(|(i, task)| {
                let error = task.error.as_ref()?;
                (task.status() == Status::Failed)
                    .then(|| (Arc::from(self.graph().name(index(i + 1))), error.clone()))
            })
            .collect();
        let rules: Vec<_> = self
            .rules
            .iter()
            .filter_map(|rule| {
                let error = match &rule.fate {
                    Fate::Failed(error) => error.clone(),
                    Fate::Never(why) if rule.required => {
                        Arc::new(anyhow::anyhow!("it never fired: {why}"))
                    }
                    _ => return None,
                };
                Some((Arc::from(&*rule.name), error))
            })
            .collect();
        if failures.is_empty() && rules.is_empty() {
            Ok(())
        } else {
            Err(RunError::new(failures, rules))
        }
    }

    /// The rules of the run, in the order they were registered (the graph's, then those that
    /// growth steps and rules added): whether each fired, and if not, why.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = RuleReport<'_>> + '_ {
        self.rules.iter().map(|record| RuleReport { record })
    }

    /// Whether every task completed (ran, was reused or was given its value).
    pub fn is_complete(&self) -> bool {
        self.count(Status::Completed) == self.records.len() - 1
    }

    /// When the run started (was first polled).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the run finished.
    pub fn finished(&self) -> Instant {
        self.finished
    }

    /// How long the run took, from its first poll to its end.
    pub fn makespan(&self) -> Duration {
        self.finished - self.started
    }

    /// The chain of tasks that decided the makespan: from the last task to finish, back
    /// through the dependency that finished last (the first listed of those finishing at the
    /// same time), until a task without dependencies that ran in this run. First task first;
    /// empty if no task ran.
    ///
    /// Of several tasks that finished last at the same instant, the path starts from the
    /// first that none of the others depends on. Only tasks that ran count: a task skipped
    /// at the moment its ancestor failed is not on it.
    pub fn critical_path(&self) -> Vec<&str> {
        // Only tasks that ran: a skipped task ends when its ancestor fails, without running.
        let end = |v: usize| {
            let record = &self.records[v];
            record.start.and(record.end)
        };
        let Some(last_end) = (1..self.records.len()).filter_map(end).max() else {
            return Vec::new();
        };
        let mut used_by_a_last = vec![false; self.records.len()];
        for v in 1..self.records.len() {
            if end(v) == Some(last_end) {
                for &d in self.graph().deps(index(v)) {
                    used_by_a_last[d as usize] = true;
                }
            }
        }
        let mut at =
            (1..self.records.len()).find(|&v| end(v) == Some(last_end) && !used_by_a_last[v]);
        let mut path = Vec::new();
        while let Some(v) = at {
            path.push(self.graph().name(index(v)));
            at = self
                .graph()
                .deps(index(v))
                .iter()
                .map(|&d| d as usize)
                .filter(|&d| d != 0)
                .filter_map(|d| Some((end(d)?, d)))
                .fold(
                    None,
                    |best: Option<(Instant, usize)>, (end, d)| match best {
                        Some((best_end, _)) if best_end >= end => best,
                        _ => Some((end, d)),
                    },
                )
                .map(|(_, d)| d);
        }
        path.reverse();
        path
    }

    /// The report of task `v`.
    pub(crate) fn task_report(&self, v: u32) -> TaskReport<'_> {
        TaskReport {
            report: self,
            node: v,
        }
    }

    /// The node of task `name`: found in the graph the run started from, then among the
    /// tasks it added (without joining the two).
    fn node(&self, name: &str) -> Result<u32, ValueError> {
        self.base
            .lookup(name)
            .or_else(|| self.added.as_ref()?.lookup(name))
            .ok_or_else(|| ValueError::UnknownTask {
                name: name.to_owned(),
            })
    }

    fn typed<T: Any>(&self, v: u32) -> Result<&T, ValueError> {
        let value = self.values[v as usize]
            .as_ref()
            .ok_or_else(|| ValueError::NoValue {
                task: self.graph().name(v).to_owned(),
                status: self.records[v as usize].status(),
            })?;
        value
            .downcast_ref::<T>()
            .ok_or_else(|| ValueError::TypeMismatch {
                task: self.graph().name(v).to_owned(),
                requested: type_name::<T>(),
                actual: self.graph().nodes[v as usize].output.name,
            })
    }
}

impl fmt::Display for Report {
    /// A summary to print: the run's totals by status, makespan and critical path, then one
    /// line per failed task with its error and per skipped task with the task it waited
    /// for, failures first. With `{:#}`, then every task with its status, start (from the
    /// run's start), duration and attempts.
    ///
    /// ```
    /// use dagjoin::runtime::GraphBuilder;
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let mut g = GraphBuilder::<()>::new();
    /// let load = g.named("load").add(|| tokio::time::sleep(Duration::from_millis(300)), ());
    /// let parse = g.named("parse").try_add(|()| async { anyhow::bail!("bad header") as anyhow::Result<u32> }, load);
    /// g.named("store").add(|n: u32| async move { n }, parse);
    /// let report = g.build().unwrap().run(()).await;
    /// let text = report.to_string();
    /// let lines: Vec<&str> = text.lines().collect();
    /// assert!(lines[0].ends_with(": 3 tasks in 300ms: 1 completed, 1 failed, 1 skipped"));
    /// assert_eq!(lines[1..], [
    ///     "critical path: load -> parse",
    ///     "failed: `parse`: bad header",
    ///     "skipped: `store`, after `parse` failed",
    /// ]);
    /// assert!(format!("{report:#}").ends_with("  store  skipped"));
    /// # });
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tasks = self.records.len() - 1;
        write!(
            f,
            "run {}: {tasks} task{} in {:?}",
            self.key,
            if tasks == 1 { "" } else { "s" },
            self.makespan()
        )?;
        let mut separator = ": ";
        for status in Status::ALL {
            let count = self.count(status);
            if count > 0 {
                write!(f, "{separator}{count} {status}")?;
                separator = ", ";
            }
        }
        let path = self.critical_path();
        if !path.is_empty() {
            write!(f, "\ncritical path: {}", path.join(" -> "))?;
        }
        for task in self.tasks().filter(|task| task.status() == Status::Failed) {
            match task.error() {
                Some(error) => write!(f, "\nfailed: `{}`: {error:#}", task.name())?,
                None => write!(f, "\nfailed: `{}`", task.name())?,
            }
        }
        for task in self.tasks().filter(|task| task.status() == Status::Skipped) {
            let because = task.skipped_because().unwrap_or("?");
            let how = match self.task(because).map(|t| t.status()) {
                Ok(Status::Cancelled) => "was cancelled",
                _ => "failed",
            };
            write!(f, "\nskipped: `{}`, after `{because}` {how}", task.name())?;
        }
        for rule in self.rules() {
            if let Some(error) = rule.error() {
                write!(f, "\nrule failed: `{}`: {error:#}", rule.name())?;
            } else if let Some(why) = rule.why_not() {
                let required = if rule.required() { " (required)" } else { "" };
                write!(f, "\nrule did not fire{required}: `{}`: {why}", rule.name())?;
            }
        }
        if f.alternate() {
            f.write_str("\ntasks:")?;
            for task in self.tasks() {
                write!(f, "\n  {}  {}", task.name(), task.status())?;
                if let (Some(start), Some(end)) = (task.started(), task.finished()) {
                    write!(
                        f,
                        "  at {:?}  took {:?}  attempts {}",
                        start - self.started,
                        end - start,
                        task.attempts()
                    )?;
                } else if task.reused() {
                    f.write_str("  (reused)")?;
                } else if task.marked_done() {
                    f.write_str("  (marked done)")?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("run", &self.key)
            .field("makespan", &self.makespan())
            .field("tasks", &self.tasks().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One task's part of a [`Report`].
#[derive(Clone, Copy)]
pub struct TaskReport<'a> {
    report: &'a Report,
    node: u32,
}

impl<'a> TaskReport<'a> {
    fn state(&self) -> &'a TaskRecord {
        &self.report.records[self.node as usize]
    }

    /// The task's name.
    pub fn name(&self) -> &'a str {
        self.report.graph().name(self.node)
    }

    /// The task that added this one to the graph while the run went on (a map, for its
    /// items); `None` for the graph's own tasks.
    pub fn added_by(&self) -> Option<&'a str> {
        let report = self.report;
        if let Some(rule) = report
            .added
            .as_ref()
            .and_then(|added| added.rule_of(self.node))
        {
            return Some(&report.rules[rule as usize].name);
        }
        let graph = &**self.report.graph();
        match graph.added_by.get(self.node as usize) {
            Some(&by) if by != 0 => Some(graph.name(by)),
            _ => None,
        }
    }

    /// The tasks whose values this one took, in order (repeats kept).
    pub fn dependencies(&self) -> Vec<&'a str> {
        let graph = &**self.report.graph();
        graph
            .deps(self.node)
            .iter()
            .filter(|&&d| d != 0)
            .map(|&d| graph.name(d))
            .collect()
    }

    /// What became of the task.
    pub fn status(&self) -> Status {
        self.state().status()
    }

    /// The task's value.
    ///
    /// # Errors
    ///
    /// If the task has no value, or it is not a `T`.
    pub fn value<T: Any>(&self) -> Result<&'a T, ValueError> {
        self.report.typed(self.node)
    }

    /// The task's value, type-erased (the same `Arc` a rerun reuses).
    pub fn raw_value(&self) -> Option<&'a Value> {
        self.report.values[self.node as usize].as_ref()
    }

    /// The error of the task's last attempt, if it failed.
    pub fn error(&self) -> Option<&'a anyhow::Error> {
        self.state().error.as_deref()
    }

    /// For a skipped task, the failed task it depends on (directly or not).
    pub fn skipped_because(&self) -> Option<&'a str> {
        let v = self.state().skipped_because?;
        Some(self.report.graph().name(v))
    }

    /// When the task started (its first attempt), if it ran in this run.
    pub fn started(&self) -> Option<Instant> {
        self.state().start
    }

    /// When the task finished (completed, failed or was cancelled) or was skipped.
    pub fn finished(&self) -> Option<Instant> {
        self.state().end
    }

    /// How many attempts the task made in this run.
    pub fn attempts(&self) -> u32 {
        self.state().attempts
    }

    /// The keys of the task's attempts in this run, in order.
    pub fn attempt_keys(&self) -> impl ExactSizeIterator<Item = AttemptKey> + 'a {
        let run = &self.report.key;
        let task: Arc<str> = Arc::from(self.report.graph().name(self.node));
        (0..self.attempts()).map(move |i| AttemptKey::new(run.clone(), task.clone(), i + 1))
    }

    /// The name of the executor the task runs on ([`Executor::name`](crate::Executor::name)).
    pub fn executor(&self) -> &'a str {
        self.report.graph().executor_name(self.node)
    }

    /// Whether the task was called in this run (its value was not reused or marked done).
    pub fn ran(&self) -> bool {
        self.attempts() > 0
    }

    /// Whether the task's value was reused from the report a rerun started from.
    pub fn reused(&self) -> bool {
        self.status() == Status::Completed && self.state().origin == Origin::Reused
    }

    /// Whether the task was marked done with a given value before the run
    /// ([`Plan::mark_done`](crate::Plan::mark_done)).
    pub fn marked_done(&self) -> bool {
        self.status() == Status::Completed && self.state().origin == Origin::Given
    }
}

impl fmt::Debug for TaskReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TaskReport");
        debug
            .field("name", &self.name())
            .field("status", &self.status());
        if let Some(error) = self.error() {
            debug.field("error", &format_args!("{error:#}"));
        }
        if let Some(because) = self.skipped_because() {
            debug.field("skipped_because", &because);
        }
        debug.field("attempts", &self.attempts()).finish()
    }
}

/// What became of a rule in a run: from [`Report::rules`].
#[derive(Clone, Copy, Debug)]
pub struct RuleReport<'a> {
    record: &'a RuleRecord,
}

impl<'a> RuleReport<'a> {
    /// The rule's name.
    pub fn name(&self) -> &'a str {
        &self.record.name
    }

    /// Whether it fired and grew the graph.
    pub fn fired(&self) -> bool {
        matches!(self.record.fate, Fate::Fired)
    }

    /// Its error, if its body failed or what it asked for could not be added.
    pub fn error(&self) -> Option<&'a anyhow::Error> {
        match &self.record.fate {
            Fate::Failed(error) => Some(error),
            _ => None,
        }
    }

    /// Why it never fired, if it did not.
    pub fn why_not(&self) -> Option<&'a str> {
        match &self.record.fate {
            Fate::Never(why) => Some(why),
            _ => None,
        }
    }

    /// Whether the run is an error if it never fires ([`Rule::required`](crate::Rule::required)).
    pub fn required(&self) -> bool {
        self.record.required
    }
}
