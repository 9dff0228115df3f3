//! The named builder: [`NamedGraphBuilder`] takes task names mapped to functions and names
//! mapped to dependency names, for graphs loaded from data. Each task gets its dependencies'
//! values through [`Inputs`], by position or by name, with a type check.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dag_cycles::cycles;

use crate::error::{BuildError, BuildProblem};
use crate::executor::{Executors, Job, Placement, Value};
use crate::graph::{
    index, next_builder_id, Call, DepTable, Graph, GraphInner, Growing, NameTable, Node,
    TaskOptions, TypeInfo, Work,
};
use crate::inputs::{async_work, blocking_work, Inputs};
use crate::rules::{Pending, RuleDef, Step, View};
use crate::typed::{Growth, Rule};

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
    /// Each map and the task whose collection it spreads over (its first input).
    map_items: Vec<(String, String)>,
    /// `tag` and `adds` calls, in order: the task, the tag, and whether it is declared.
    tags: Vec<(String, Arc<str>, bool)>,
    rules: Vec<Arc<RuleDef>>,
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
            map_items: Vec::new(),
            tags: Vec::new(),
            rules: Vec::new(),
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

    /// Adds growth step `name`: once its dependencies have their values, it runs the
    /// synchronous function `f` with its [`Inputs`] and a [`Growth`], through which it adds
    /// tasks ([`Growth::task_named`]) and rules to the run; see
    /// [`GraphBuilder::grow`](crate::GraphBuilder::grow). An `Err` fails it, and it adds
    /// nothing.
    ///
    /// ```
    /// use dagjoin::runtime::{Growth, NamedGraphBuilder};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("files", |_| async { Ok(vec!["a".to_owned(), "b".to_owned()]) })
    ///     .grow("each", |grow: &mut Growth<()>, inputs| {
    ///         for file in inputs.get::<Vec<String>>("files")? {
    ///             grow.task_named(&format!("read {file}"), ["files"], move |_| {
    ///                 let file = file.clone();
    ///                 async move { Ok(file.len()) }
    ///             });
    ///         }
    ///         Ok(())
    ///     })
    ///     .depends("each", ["files"]);
    /// let report = builder.build().unwrap().run(()).await;
    /// assert_eq!(report.value::<usize>("read b").unwrap(), &1);
    /// assert_eq!(report.task("read a").unwrap().added_by(), Some("each"));
    /// # });
    /// ```
    pub fn grow<F>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(&mut Growth<'_, P>, Inputs) -> anyhow::Result<()> + Send + Sync + 'static,
    {
        let work = move |call: Call<'_>, pending: &mut Pending, view: &View<'_>| {
            let mut growth = Growth::new(pending, view);
            f(&mut growth, Inputs::new(call))?;
            Ok(Arc::new(()) as Value)
        };
        self.push(
            name.into(),
            Step::work(work),
            Placement::Inline,
            TypeInfo::of::<()>(),
        )
    }

    /// Adds map `name` over the `Vec<T>` that task `items` makes: once it is there, one task
    /// per item (`f(item)`, named `name[0]`, `name[1]`, ..), and the map's value, a `Vec<U>`
    /// of their values in item order; see [`GraphBuilder::map`](crate::GraphBuilder::map). A
    /// value of `items` that is not a `Vec<T>` fails the map.
    ///
    /// ```
    /// use dagjoin::runtime::NamedGraphBuilder;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("words", |_| async { Ok(vec!["a", "bb", "ccc"]) })
    ///     .map("len", "words", |word: &'static str| async move { Ok(word.len()) })
    ///     .task("total", |inputs| async move { Ok(inputs.get::<Vec<usize>>("len")?.iter().sum::<usize>()) })
    ///     .depends("total", ["len"]);
    /// let report = builder.build().unwrap().run(()).await;
    /// assert_eq!(report.value::<Vec<usize>>("len").unwrap(), &[1, 2, 3]);
    /// assert_eq!(report.value::<usize>("total").unwrap(), &6);
    /// assert_eq!(report.value::<usize>("len[2]").unwrap(), &3);
    /// # });
    /// ```
    pub fn map<T, F, Fut, U>(&mut self, name: impl Into<String>, items: &str, f: F) -> &mut Self
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<U>> + Send + 'static,
        U: Clone + Send + Sync + 'static,
    {
        let name = name.into();
        let job = move |item: T| {
            let future = f(item);
            Job::Async(Box::pin(
                async move { Ok(Arc::new(future.await?) as Value) },
            ))
        };
        self.map_items.push((name.clone(), items.to_owned()));
        self.push(
            name,
            crate::grow::map_work::<T, U>(Arc::new(job)),
            Placement::Inline,
            TypeInfo::of::<Vec<U>>(),
        )
    }

    /// Gives task `name` tag `tag` (see [`When::settled`](crate::When::settled)).
    pub fn tag(&mut self, name: impl Into<String>, tag: &str) -> &mut Self {
        self.tags.push((name.into(), tag.into(), false));
        self
    }

    /// Declares that growth step `name` may add tasks with tag `tag`.
    pub fn adds(&mut self, name: impl Into<String>, tag: &str) -> &mut Self {
        self.tags.push((name.into(), tag.into(), true));
        self
    }

    /// Adds `rule` to the graph (see [`Rule`]); it names the tasks it waits for
    /// by name.
    pub fn rule(&mut self, rule: Rule<P>) -> &mut Self {
        self.rules.push(rule.erase());
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
            mut deps,
            options,
            map_items,
            tags,
            rules,
            mut problems,
            _param,
        } = self;
        // A map's collection is its first input, whatever `depends` said before.
        for (at, (map, items)) in map_items.into_iter().enumerate() {
            deps.insert(at, (map, vec![items]));
        }
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
        let mut growing = Growing::default();
        for (name, tag, declared) in tags {
            match node_of(&name) {
                Some(v) if declared => growing.adds.push((index(v), tag)),
                Some(v) => growing.tags.push((index(v), tag)),
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
        let mut inner = GraphInner::new(id, nodes, names, table, executors);
        let problems: Vec<_> = rules.iter().flat_map(|rule| rule.check(&inner)).collect();
        if !problems.is_empty() {
            return Err(BuildError::new(problems));
        }
        growing.rules = rules.into_iter().map(RuleDef::erased).collect();
        inner.growth = growing.boxed();
        Ok(Graph::from_inner(inner))
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
