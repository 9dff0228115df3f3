//! The named builder: [`NamedGraphBuilder`] takes task names mapped to functions and names
//! mapped to dependency names, for graphs loaded from data. Each task gets its dependencies'
//! values through [`Inputs`], by position or by name, with a type check.

use core::any::Any;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dag_cycles::cycles;

use crate::error::{BuildError, BuildProblem, InputError};
use crate::executor::{Executors, Job, Placement, Value};
use crate::graph::{
    index, next_builder_id, Call, DepTable, Graph, GraphInner, NameTable, Node, TaskOptions,
    TypeInfo, Work,
};

/// Builds a [`Graph`] from task names mapped to functions and names mapped to dependency names.
///
/// A task function takes the task's [`Inputs`] and returns a future of an
/// `anyhow::Result` (or, with [`blocking_task`](NamedGraphBuilder::blocking_task), the
/// result itself, computed on tokio's blocking pool). [`build`](NamedGraphBuilder::build)
/// checks the whole graph and reports every problem: a cycle (with its whole path), a
/// dependency that is not a task, dependencies for a name without a function, a name
/// defined twice.
///
/// ```
/// use dagjoin::runtime::NamedGraphBuilder;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut builder = NamedGraphBuilder::new();
/// builder
///     .task("load", |_| async { Ok(vec![3, 1, 2]) })
///     .task("sort", |inputs| async move {
///         let mut numbers: Vec<i32> = inputs.get("load")?;
///         numbers.sort_unstable();
///         Ok(numbers)
///     })
///     .blocking_task("sum", |inputs| Ok(inputs.get::<Vec<i32>>("load")?.iter().sum::<i32>()))
///     .depends("sort", ["load"])
///     .depends("sum", ["load"]);
/// let report = builder.build().unwrap().run(()).await;
/// assert_eq!(report.value::<Vec<i32>>("sort").unwrap(), &[1, 2, 3]);
/// assert_eq!(report.value::<i32>("sum").unwrap(), &6);
/// assert!(report.value::<i32>("nope").is_err());
/// # });
/// ```
pub struct NamedGraphBuilder<P = ()> {
    id: u64,
    tasks: Vec<Spec>,
    by_name: HashMap<Arc<str>, usize>,
    /// `depends` calls, in order.
    deps: Vec<(String, Vec<String>)>,
    /// `options` calls, in order.
    options: Vec<(String, TaskOptions)>,
    problems: Vec<BuildProblem>,
    _param: PhantomData<fn(P)>,
}

/// A task given to the builder.
struct Spec {
    name: Arc<str>,
    work: Work,
    placement: Placement,
    output: TypeInfo,
}

impl NamedGraphBuilder<()> {
    /// An empty builder for a graph without parameter (runs take `()`).
    pub fn new() -> Self {
        Self::with_param()
    }
}

impl Default for NamedGraphBuilder<()> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Send + Sync + 'static> NamedGraphBuilder<P> {
    /// An empty builder for a graph whose runs take a parameter of type `P`, which tasks read
    /// with [`Inputs::param`].
    pub fn with_param() -> Self {
        Self {
            id: next_builder_id(),
            tasks: Vec::new(),
            by_name: HashMap::new(),
            deps: Vec::new(),
            options: Vec::new(),
            problems: Vec::new(),
            _param: PhantomData,
        }
    }

    /// Adds task `name`, which runs `f` on the run's own task; its value is the `Ok` value of
    /// the future `f` returns.
    pub fn task<F, Fut, V>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Inputs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<V>> + Send + 'static,
        V: Send + Sync + 'static,
    {
        self.task_on(name, Placement::Inline, f)
    }

    /// Adds task `name`, which runs `f` on `placement` (for example
    /// [`Placement::Spawned`], so that it may use another core); its value is the `Ok` value
    /// of the future `f` returns.
    pub fn task_on<F, Fut, V>(
        &mut self,
        name: impl Into<String>,
        placement: Placement,
        f: F,
    ) -> &mut Self
    where
        F: Fn(Inputs) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<V>> + Send + 'static,
        V: Send + Sync + 'static,
    {
        self.push(name.into(), async_work(f), placement, TypeInfo::of::<V>())
    }

    /// Adds task `name`, which runs the synchronous (CPU-bound or blocking) function `f` on
    /// tokio's blocking pool, within [`RunOptions::max_blocking`](crate::RunOptions).
    pub fn blocking_task<F, V>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Inputs) -> anyhow::Result<V> + Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        self.push(
            name.into(),
            blocking_work(f),
            Placement::Blocking,
            TypeInfo::of::<V>(),
        )
    }

    /// Declares that task `name` takes the values of `deps`, in this order (a name may come
    /// more than once). Calling it again for the same task adds to its dependencies.
    pub fn depends<I, S>(&mut self, name: impl Into<String>, deps: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.deps
            .push((name.into(), deps.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets the options (timeout, retries, backoff) of task `name`.
    pub fn options(&mut self, name: impl Into<String>, options: TaskOptions) -> &mut Self {
        self.options.push((name.into(), options));
        self
    }

    /// Checks and freezes the graph.
    ///
    /// # Errors
    ///
    /// Every problem, in this order: names defined more than once, dependencies declared for
    /// a name without a function, dependencies that are not tasks, options for a name that is
    /// not a task, then each dependency cycle once, with its whole path
    /// (`` dependency cycle: `a` -> `b` -> `a` ``: `a` depends on `b`, which depends on `a`).
    pub fn build(self) -> Result<Graph<P>, BuildError> {
        let Self {
            id,
            tasks,
            by_name,
            deps,
            options,
            mut problems,
            _param,
        } = self;
        let mut nodes = Vec::with_capacity(tasks.len() + 1);
        let mut names = NameTable::new();
        let mut executors = Executors::new();
        nodes.push(Node::param::<P>());
        for spec in tasks {
            names.push(&spec.name);
            nodes.push(Node {
                work: Some(spec.work),
                executor: executors.index(&spec.placement),
                options: TaskOptions::new(),
                output: spec.output,
            });
        }
        let node_of = |name: &str| by_name.get(name).map(|&t| t + 1);

        let mut dep_lists: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        let mut without_function = HashSet::new();
        for (name, _) in &deps {
            if node_of(name).is_none() && without_function.insert(name.as_str()) {
                problems.push(BuildProblem::MissingFunction { task: name.clone() });
            }
        }
        for (name, names) in &deps {
            let Some(v) = node_of(name) else { continue };
            for dep in names {
                match node_of(dep) {
                    Some(d) => dep_lists[v].push(d),
                    None => problems.push(BuildProblem::UnknownDependency {
                        task: name.clone(),
                        dependency: dep.clone(),
                    }),
                }
            }
        }
        for (name, task_options) in options {
            match node_of(&name) {
                Some(v) => nodes[v].options = task_options,
                None => problems.push(BuildProblem::NotATask { name }),
            }
        }
        for cycle in cycles(&dep_lists) {
            problems.push(BuildProblem::Cycle {
                path: cycle
                    .iter()
                    .map(|&v| names.get(index(v)).to_owned())
                    .collect(),
            });
        }
        if !problems.is_empty() {
            return Err(BuildError::new(problems));
        }
        let mut table = DepTable::new();
        for deps in dep_lists.into_iter().skip(1) {
            table.push(deps.into_iter().map(index));
        }
        Ok(Graph::from_inner(GraphInner::new(
            id, nodes, names, table, executors,
        )))
    }

    fn push(
        &mut self,
        name: String,
        work: Work,
        placement: Placement,
        output: TypeInfo,
    ) -> &mut Self {
        let name: Arc<str> = Arc::from(name);
        if self.by_name.contains_key(&name) {
            self.problems.push(BuildProblem::DuplicateTask {
                name: name.to_string(),
            });
        } else {
            self.by_name.insert(name.clone(), self.tasks.len());
            self.tasks.push(Spec {
                name,
                work,
                placement,
                output,
            });
        }
        self
    }
}

impl<P> fmt::Debug for NamedGraphBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamedGraphBuilder")
            .field("id", &self.id)
            .field(
                "tasks",
                &self.tasks.iter().map(|t| &*t.name).collect::<Vec<_>>(),
            )
            .field("depends", &self.deps)
            .finish_non_exhaustive()
    }
}

/// The erased work of an async task that takes [`Inputs`].
pub(crate) fn async_work<F, Fut, V>(f: F) -> Work
where
    F: Fn(Inputs) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<V>> + Send + 'static,
    V: Send + Sync + 'static,
{
    Work::new(move |call: Call<'_>| {
        let future = f(Inputs::new(call));
        Ok(Job::Async(Box::pin(async move {
            Ok(Arc::new(future.await?) as Value)
        })))
    })
}

/// The erased work of a blocking task that takes [`Inputs`].
pub(crate) fn blocking_work<F, V>(f: F) -> Work
where
    F: Fn(Inputs) -> anyhow::Result<V> + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    let f = Arc::new(f);
    Work::new(move |call: Call<'_>| {
        let inputs = Inputs::new(call);
        let f = f.clone();
        Ok(Job::Blocking(Box::new(move || {
            Ok(Arc::new(f(inputs)?) as Value)
        })))
    })
}

/// The inputs of a task of a named graph: its dependencies' values, in the order they were
/// listed, and the run's parameter.
///
/// Each accessor checks the type asked for against the dependency's and returns an
/// [`InputError`] that names the task, the dependency and both types when they differ; the
/// error converts into `anyhow::Error`, so `?` fails the task with it.
///
/// ```
/// use dagjoin::runtime::NamedGraphBuilder;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut builder = NamedGraphBuilder::with_param();
/// builder
///     .task("a", |inputs| async move { Ok(inputs.param::<u32>()? + 1) })
///     .task("b", |inputs| async move {
///         assert_eq!(inputs.len(), 2);
///         assert_eq!(inputs.names().collect::<Vec<_>>(), ["a", "a"]);
///         let first: u32 = inputs.at(0)?;
///         let error = inputs.get::<String>("a").unwrap_err();
///         assert_eq!(
///             error.to_string(),
///             "task `b` asked for `a` as `alloc::string::String`, but `a` is a `u32`"
///         );
///         Ok(first + *inputs.get_ref::<u32>("a")?)
///     })
///     .depends("b", ["a", "a"]);
/// let report = builder.build().unwrap().run(20_u32).await;
/// assert_eq!(report.value::<u32>("b").unwrap(), &42);
/// # });
/// ```
pub struct Inputs {
    graph: Arc<GraphInner>,
    node: u32,
    values: Vec<Value>,
    param: Value,
}

impl Inputs {
    pub(crate) fn new(call: Call<'_>) -> Self {
        Self {
            graph: call.graph.clone(),
            node: call.node,
            values: call.inputs().cloned().collect(),
            param: call.param().clone(),
        }
    }

    /// The name of the task these are the inputs of.
    pub fn task(&self) -> &str {
        self.graph.name(self.node)
    }

    /// The number of inputs (a dependency listed twice counts twice).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the task has no dependency.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The names of the dependencies, in order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.deps().iter().map(|&d| self.graph.name(d))
    }

    /// A clone of the value of dependency `name` (its first listing).
    ///
    /// # Errors
    ///
    /// If the task has no dependency `name`, or its value is not a `T`.
    pub fn get<T: Clone + 'static>(&self, name: &str) -> Result<T, InputError> {
        self.get_ref(name).cloned()
    }

    /// The value of dependency `name` (its first listing), by reference.
    ///
    /// # Errors
    ///
    /// If the task has no dependency `name`, or its value is not a `T`.
    pub fn get_ref<T: 'static>(&self, name: &str) -> Result<&T, InputError> {
        let position =
            self.names()
                .position(|dep| dep == name)
                .ok_or_else(|| InputError::NotADependency {
                    task: self.task().to_owned(),
                    name: name.to_owned(),
                })?;
        self.at_ref(position)
    }

    /// A clone of input `index` (from 0, in the order the dependencies are listed).
    ///
    /// # Errors
    ///
    /// If the task has fewer inputs, or the value is not a `T`.
    pub fn at<T: Clone + 'static>(&self, index: usize) -> Result<T, InputError> {
        self.at_ref(index).cloned()
    }

    /// Input `index` (from 0), by reference.
    ///
    /// # Errors
    ///
    /// If the task has fewer inputs, or the value is not a `T`.
    pub fn at_ref<T: 'static>(&self, index: usize) -> Result<&T, InputError> {
        let value = self
            .values
            .get(index)
            .ok_or_else(|| InputError::NoSuchInput {
                task: self.task().to_owned(),
                index,
                count: self.len(),
            })?;
        self.downcast(value, self.deps()[index])
    }

    /// A clone of the run's parameter.
    ///
    /// # Errors
    ///
    /// If the parameter is not a `T`.
    pub fn param<T: Clone + 'static>(&self) -> Result<T, InputError> {
        self.param_ref().cloned()
    }

    /// The run's parameter, by reference.
    ///
    /// # Errors
    ///
    /// If the parameter is not a `T`.
    pub fn param_ref<T: 'static>(&self) -> Result<&T, InputError> {
        self.downcast(&self.param, 0)
    }

    fn deps(&self) -> &[u32] {
        self.graph.deps(self.node)
    }

    fn downcast<'a, T: Any>(&self, value: &'a Value, dep: u32) -> Result<&'a T, InputError> {
        value
            .downcast_ref::<T>()
            .ok_or_else(|| InputError::TypeMismatch {
                task: self.task().to_owned(),
                dependency: self.graph.name(dep).to_owned(),
                requested: core::any::type_name::<T>(),
                actual: self.graph.nodes[dep as usize].output.name,
            })
    }
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inputs")
            .field("task", &self.task())
            .field("dependencies", &self.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
