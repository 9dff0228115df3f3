//! What grows a run from a growth step or a rule: [`Growth`], and [`Rule`]s.

use core::any::Any;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::panic::Location;
use std::sync::Arc;

use super::{Deps, TaskBuilder, TaskFn};
use crate::error::ValueError;
use crate::executor::Placement;
use crate::graph::{index, Node, TaskOptions, TypeInfo, Work};
use crate::id::Handle;
use crate::inputs::Inputs;
use crate::rules::{NewName, NewTask, Pending, RuleDef, View, When};

/// Grows a run's graph: what a growth step ([`GraphBuilder::grow`](crate::GraphBuilder::grow))
/// or a [`Rule`](crate::Rule)'s body gets. It adds tasks (with the same methods as a
/// [`GraphBuilder`](crate::GraphBuilder), maps and growth steps included) and rules, and reads
/// the values of tasks that completed.
///
/// Tasks added here take inputs from tasks that exist (the graph's, the run's added ones,
/// in any state) or that this step added before; no task that exists can take one of theirs,
/// so no cycle can form. An input that has failed or was skipped makes the new task skipped
/// at once; one that completed counts as there, so a task whose inputs are all there starts
/// in the same scheduling step. Everything a step asks for is added when it returns, or
/// nothing is: a handle of another graph or run, a name that a task has already, a tag the
/// step did not declare, or more tasks than
/// [`RunOptions::max_tasks`](crate::RunOptions::max_tasks) allows fail the step (a step's
/// descendants are skipped; a rule is reported as failed), and the rest of the run goes on.
///
/// A task added without a name is called after what added it: `step/fetch`,
/// `step/fetch#2`, `rule/closure@src/main.rs:9:13`. What a step adds should depend only on
/// its inputs, so that a rerun ([`Graph::again`](crate::Graph::again)) builds the same
/// tasks under the same names. A rerun reuses a value of a task a step added only if the
/// step's inputs and the task's are unchanged and the step read nothing else (no
/// [`value`](Growth::value), [`value_of`](Growth::value_of) or
/// [`with_tag`](Growth::with_tag)); what a rule adds is built anew, since it depends on when
/// the rule fired.
///
/// ```
/// use dagjoin::runtime::{GraphBuilder, Growth};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut g = GraphBuilder::<()>::new();
/// let big = g.named("check").add(|| async { true }, ());
/// g.named("choose").grow(
///     |grow: &mut Growth<()>, big: bool| {
///         if big {
///             grow.named("split").add(|| async { "split" }, ());
///         } else {
///             grow.named("whole").add(|| async { "whole" }, ());
///         }
///     },
///     big,
/// );
/// let report = g.build().unwrap().run(()).await;
/// assert_eq!(report.value::<&str>("split").unwrap(), &"split");
/// assert!(report.task("whole").is_err());
/// assert_eq!(report.task("split").unwrap().added_by(), Some("choose"));
/// # });
/// ```
pub struct Growth<'g, P> {
    pub(crate) pending: &'g mut Pending,
    pub(crate) view: &'g View<'g>,
    _param: PhantomData<fn(P)>,
}

impl<'g, P: Send + Sync + 'static> Growth<'g, P> {
    pub(crate) fn new(pending: &'g mut Pending, view: &'g View<'g>) -> Self {
        Self {
            pending,
            view,
            _param: PhantomData,
        }
    }

    /// The name of the growth step or rule that grows the graph.
    pub fn name(&self) -> &str {
        self.view.adder
    }

    /// The handle of the run's parameter.
    pub fn param(&self) -> Handle<P> {
        Handle::new(self.view.graph.id, 0)
    }

    fn task(&mut self) -> TaskBuilder<'_, P> {
        TaskBuilder::growing(self.pending, self.view)
    }

    /// Starts a task named `name`: see [`GraphBuilder::named`](crate::GraphBuilder::named).
    pub fn named(&mut self, name: impl Into<String>) -> TaskBuilder<'_, P> {
        self.task().named(name)
    }

    /// Starts a task that runs on `placement`, one of the executors of the graph.
    pub fn on(&mut self, placement: Placement) -> TaskBuilder<'_, P> {
        self.task().on(placement)
    }

    /// Starts a task with `options`.
    pub fn with_options(&mut self, options: TaskOptions) -> TaskBuilder<'_, P> {
        self.task().with_options(options)
    }

    /// Starts a task with tag `tag`, which the step or rule must have declared.
    pub fn tagged(&mut self, tag: &str) -> TaskBuilder<'_, P> {
        self.task().tagged(tag)
    }

    /// Adds a task: see [`GraphBuilder::add`](crate::GraphBuilder::add).
    #[track_caller]
    pub fn add<F, D, Fut>(&mut self, f: F, deps: D) -> Handle<Fut::Output>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = Fut>,
        Fut: Future + Send + 'static,
        Fut::Output: Send + Sync + 'static,
    {
        self.task().add(f, deps)
    }

    /// Adds a fallible task: see [`GraphBuilder::try_add`](crate::GraphBuilder::try_add).
    #[track_caller]
    pub fn try_add<F, D, Fut, T, E>(&mut self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = Fut>,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        self.task().try_add(f, deps)
    }

    /// Adds a blocking task: see
    /// [`GraphBuilder::add_blocking`](crate::GraphBuilder::add_blocking).
    #[track_caller]
    pub fn add_blocking<F, D, T>(&mut self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = T>,
        T: Send + Sync + 'static,
    {
        self.task().add_blocking(f, deps)
    }

    /// Adds a map: see [`GraphBuilder::map`](crate::GraphBuilder::map).
    #[track_caller]
    pub fn map<F, T, Fut>(&mut self, f: F, items: Handle<Vec<T>>) -> Handle<Vec<Fut::Output>>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Clone + Send + Sync + 'static,
    {
        self.task().map(f, items)
    }

    /// Adds a growth step: see [`GraphBuilder::grow`](crate::GraphBuilder::grow).
    #[track_caller]
    pub fn grow<F, D, R>(&mut self, f: F, deps: D) -> Handle<R>
    where
        D: Deps,
        F: GrowFn<P, D::Values, Output = R>,
        R: Send + Sync + 'static,
    {
        self.task().grow(f, deps)
    }

    /// Adds task `name` of a named graph, with the dependencies `deps` (names of tasks of the
    /// graph, of the run, or added before in this step): see
    /// [`NamedGraphBuilder::task`](crate::NamedGraphBuilder::task).
    pub fn task_named<F, Fut, V, I, S>(&mut self, name: &str, deps: I, f: F) -> &mut Self
    where
        F: Fn(Inputs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<V>> + Send + 'static,
        V: Send + Sync + 'static,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let work = crate::inputs::async_work(f);
        self.push_named(
            name,
            deps,
            work,
            crate::executor::INLINE,
            TypeInfo::of::<V>(),
        )
    }

    /// Adds blocking task `name` of a named graph, run on tokio's blocking pool: see
    /// [`task_named`](Growth::task_named) and
    /// [`NamedGraphBuilder::blocking_task`](crate::NamedGraphBuilder::blocking_task).
    pub fn blocking_task_named<F, V, I, S>(&mut self, name: &str, deps: I, f: F) -> &mut Self
    where
        F: Fn(Inputs) -> anyhow::Result<V> + Send + Sync + 'static,
        V: Send + Sync + 'static,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let work = crate::inputs::blocking_work(f);
        self.push_named(
            name,
            deps,
            work,
            crate::executor::BLOCKING,
            TypeInfo::of::<V>(),
        )
    }

    fn push_named<I, S>(
        &mut self,
        name: &str,
        deps: I,
        work: Work,
        executor: u16,
        output: TypeInfo,
    ) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let start = self.pending.deps.len();
        for dep in deps {
            match self.view.lookup(self.pending, dep.as_ref()) {
                Some(v) => self.pending.deps.push(v),
                None => self.pending.problems.push(format!(
                    "task `{name}` depends on `{}`, which is not a task",
                    dep.as_ref()
                )),
            }
        }
        let deps = index(start)..index(self.pending.deps.len());
        self.pending.push(NewTask {
            node: Node {
                work: Some(work),
                executor,
                options: TaskOptions::new(),
                output,
            },
            name: NewName::Given(name.to_owned()),
            deps,
            tagging: None,
        });
        self
    }

    /// Registers `rule` for the rest of the run (once this step's tasks are added).
    pub fn rule(&mut self, rule: Rule<P>) -> &mut Self {
        self.pending.rules.push(rule.erase());
        self
    }

    /// The value of the task behind `handle`, if it has completed.
    ///
    /// # Errors
    ///
    /// If it has no value (yet), its value is of another type, or the handle is of another
    /// graph or run.
    pub fn value<T: Any>(&self, handle: &Handle<T>) -> Result<&'g T, ValueError> {
        self.pending.read.set(true);
        let v = self
            .view
            .resolve(
                self.pending.id,
                self.pending.first..self.pending.next(),
                handle.builder,
                handle.index,
            )
            .map_err(|_| ValueError::ForeignHandle {
                handle_builder: handle.builder,
                handle_index: handle.index,
                graph: self.view.graph.id,
            })?;
        let view: &'g View<'g> = self.view;
        view.value(v)
    }

    /// The value of task `name`, if it has completed.
    ///
    /// # Errors
    ///
    /// If there is no such task, it has no value (yet), or its value is of another type.
    pub fn value_of<T: Any>(&self, name: &str) -> Result<&'g T, ValueError> {
        self.pending.read.set(true);
        let v = self
            .view
            .lookup(self.pending, name)
            .ok_or_else(|| ValueError::UnknownTask {
                name: name.to_owned(),
            })?;
        let view: &'g View<'g> = self.view;
        view.value(v)
    }

    /// The handles of the tasks with tag `tag` so far, in the order of their names (so the
    /// same whatever order they ended in); once the tag is settled
    /// ([`When::settled`](crate::When::settled)), all of them.
    ///
    /// # Errors
    ///
    /// If one of them is not a task of type `T`.
    pub fn with_tag<T: Any>(&self, tag: &str) -> Result<Vec<Handle<T>>, ValueError> {
        self.pending.read.set(true);
        let state = self.view.state;
        let mut tasks = self.view.rules.tagged(tag).to_vec();
        tasks.sort_by(|&a, &b| state.name(a).cmp(state.name(b)));
        tasks
            .into_iter()
            .map(|v| {
                let output = state.node(v).output;
                if output.id == core::any::TypeId::of::<T>() {
                    Ok(self.view.handle(v))
                } else {
                    Err(ValueError::TypeMismatch {
                        task: state.name(v).to_owned(),
                        requested: core::any::type_name::<T>(),
                        actual: output.name,
                    })
                }
            })
            .collect()
    }
}

impl<P> fmt::Debug for Growth<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Growth")
            .field("by", &self.view.adder)
            .field("tasks", &self.pending.tasks.len())
            .field("rules", &self.pending.rules.len())
            .finish_non_exhaustive()
    }
}

/// A function that can be a growth step taking inputs `Args` (a tuple): implemented for
/// every `Fn(&mut Growth<P>, A, B, ..) -> R` of up to 8 inputs that is
/// `Send + Sync + 'static`. See [`GraphBuilder::grow`](crate::GraphBuilder::grow).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a growth step with inputs `{Args}`",
    label = "this function does not take a `&mut Growth<P>` and inputs of types `{Args}`",
    note = "a growth step takes `&mut Growth<P>` (annotate it: `|grow: &mut Growth<()>, ..|`), then its dependencies' values in order"
)]
pub trait GrowFn<P, Args>: Send + Sync + 'static {
    /// What the step returns: its task's value.
    type Output;

    /// Calls the step.
    fn call(&self, growth: &mut Growth<'_, P>, args: Args) -> Self::Output;
}

/// The body of a rule, for runs whose parameter is a `P`.
type Body<P> = dyn Fn(&mut Growth<'_, P>) -> anyhow::Result<()> + Send + Sync;

/// A rule: when its condition ([`When`]) holds, its body runs once and may add tasks and
/// more rules to the run ([`Growth`]), the way adage's `Rule(predicate, body)` does.
///
/// A rule is checked when the run's state changes, never on an interval: it fires in the
/// same scheduling step as the change that makes its condition hold, and the tasks it adds
/// start in that step if their inputs are there. Each rule fires at most once. A rule that
/// never fires is in the report ([`Report::rules`](crate::Report::rules)), with what it was
/// waiting for; a [`required`](Rule::required) one makes [`Report::check`](crate::Report)
/// fail. A body that returns an error, or adds something it may not, fails the rule: it adds
/// nothing, and `check` reports it.
///
/// ```
/// use dagjoin::runtime::{GraphBuilder, Growth, Rule, When};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut g = GraphBuilder::<()>::new();
/// let count = g.named("count").add(|| async { 3_u32 }, ());
/// g.rule(
///     Rule::new(When::completed(count), move |grow: &mut Growth<()>| {
///         let n = *grow.value(&count)?;
///         for i in 0..n {
///             grow.named(format!("part{i}")).tagged("part").add(move || async move { i * 10 }, ());
///         }
///         Ok(())
///     })
///     .named("split")
///     .adds("part"),
/// );
/// g.rule(
///     Rule::new(When::settled("part"), |grow: &mut Growth<()>| {
///         let parts = grow.with_tag::<u32>("part")?;
///         grow.named("sum").add(|parts: Vec<u32>| async move { parts.iter().sum::<u32>() }, parts);
///         Ok(())
///     })
///     .named("merge"),
/// );
/// let report = g.build().unwrap().run(()).await;
/// report.check().unwrap();
/// assert_eq!(report.value::<u32>("sum").unwrap(), &30);
/// assert_eq!(report.task("part2").unwrap().added_by(), Some("split"));
/// assert!(report.rules().all(|rule| rule.fired()));
/// # });
/// ```
pub struct Rule<P> {
    name: Option<String>,
    site: &'static Location<'static>,
    when: When,
    body: Arc<Body<P>>,
    adds: Vec<Arc<str>>,
    required: bool,
}

impl<P: Send + Sync + 'static> Rule<P> {
    /// A rule that runs `body` once `when` holds. Its name is where it was made
    /// (`rule@src/main.rs:12:5`) unless [`named`](Rule::named).
    #[track_caller]
    pub fn new<F>(when: When, body: F) -> Self
    where
        F: Fn(&mut Growth<'_, P>) -> anyhow::Result<()> + Send + Sync + 'static,
    {
        Self {
            name: None,
            site: Location::caller(),
            when,
            body: Arc::new(body),
            adds: Vec::new(),
            required: false,
        }
    }

    /// Names the rule: the tasks it adds are named after it, and the report lists it so. If
    /// another rule of the run or a task has the name already, the run calls it `name#2`
    /// (`#3`, ..) instead.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Declares that the rule may add tasks with tag `tag` (it may add no other tagged
    /// tasks); the tag cannot settle until the rule has fired or can no longer fire.
    #[must_use]
    pub fn adds(mut self, tag: &str) -> Self {
        self.adds.push(tag.into());
        self
    }

    /// Makes [`Report::check`](crate::Report::check) fail if the rule never fires.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The rule without its type: what graphs and runs keep.
    pub(crate) fn erase(self) -> Arc<RuleDef> {
        let name = self.name.unwrap_or_else(|| {
            format!(
                "rule@{}:{}:{}",
                self.site.file(),
                self.site.line(),
                self.site.column()
            )
        });
        let body = self.body;
        Arc::new(RuleDef {
            name: name.into(),
            when: self.when,
            body: Box::new(move |pending: &mut Pending, view: &View<'_>| {
                let mut growth = Growth::new(pending, view);
                body(&mut growth)
            }),
            adds: self.adds.into(),
            required: self.required,
        })
    }
}

impl<P> fmt::Debug for Rule<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("when", &self.when)
            .field("adds", &self.adds)
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}
