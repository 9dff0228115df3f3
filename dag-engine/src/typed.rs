//! The typed builder: [`GraphBuilder`] adds functions with [`Handle`]s to their results, so
//! the compiler checks that each task gets inputs of the types its function takes.

use core::any::{type_name, Any};
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::panic::Location;
use std::sync::Arc;

use crate::error::{BuildError, BuildProblem, InputError};
use crate::executor::{Executors, Job, Placement, Value, BLOCKING, INLINE};
use crate::graph::{
    index, next_builder_id, Base, Call, DepTable, Graph, GraphInner, Growing, Names, Node,
    TaskOptions, TypeInfo, Work,
};
use crate::grow::map_work;
use crate::id::Handle;
use crate::rules::{NewName, NewTask, Pending, RuleDef, Step, View};

mod growth;

pub use growth::{GrowFn, Growth, Rule};

/// A function that can be a task taking inputs `Args` (a tuple): implemented for every
/// `Fn(A, B, ..) -> R` of up to 8 arguments that is `Send + Sync + 'static`.
///
/// [`GraphBuilder::add`] wants `R` to be a future of the task's value; `add_blocking` wants
/// the value itself.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a task with inputs `{Args}`",
    label = "this function does not take inputs of types `{Args}`",
    note = "a task function takes its dependencies' values, in the order they are listed, and must be `Fn + Send + Sync + 'static`"
)]
pub trait TaskFn<Args>: Send + Sync + 'static {
    /// What the function returns.
    type Output;

    /// Calls the function with `args`.
    fn call(&self, args: Args) -> Self::Output;
}

/// The dependencies of a typed task: `()`, one [`Handle`], a tuple of up to 8 handles, or a
/// `Vec` of handles of one type (the task then takes a `Vec` of their values).
///
/// `Values` is what the task function takes: a tuple with one value per handle, each a clone
/// of the dependency's value, in order.
pub trait Deps: sealed::Deps {
    /// The tuple of the dependencies' value types.
    type Values: Send + 'static;
}

mod sealed {
    use crate::Value;

    pub trait Deps {
        /// Each handle's builder and node, in order.
        fn handles(self, each: &mut dyn FnMut(u64, u32));

        /// The typed values from the erased ones, in order; `Err` with the position and the
        /// type wanted if one has another type.
        fn extract(
            values: &mut dyn ExactSizeIterator<Item = &Value>,
        ) -> Result<Self::Values, (usize, &'static str)>
        where
            Self: crate::Deps;
    }
}

/// A mismatch between an erased value and the type a task takes: its position and the type.
type Mismatch = (usize, &'static str);

/// One typed value from the next erased one; `Err` if it has another type.
fn take<A: Clone + 'static>(
    values: &mut dyn ExactSizeIterator<Item = &Value>,
    position: &mut usize,
) -> Result<A, Mismatch> {
    let at = *position;
    *position += 1;
    values
        .next()
        .and_then(|value| value.downcast_ref::<A>())
        .cloned()
        .ok_or((at, core::any::type_name::<A>()))
}

impl Deps for () {
    type Values = ();
}

impl sealed::Deps for () {
    fn handles(self, _: &mut dyn FnMut(u64, u32)) {}

    fn extract(
        _: &mut dyn ExactSizeIterator<Item = &Value>,
    ) -> Result<<Self as Deps>::Values, Mismatch> {
        Ok(())
    }
}

impl<A: Clone + Send + Sync + 'static> Deps for Handle<A> {
    type Values = (A,);
}

impl<A: Clone + Send + Sync + 'static> sealed::Deps for Handle<A> {
    fn handles(self, each: &mut dyn FnMut(u64, u32)) {
        each(self.builder, self.index);
    }

    fn extract(
        values: &mut dyn ExactSizeIterator<Item = &Value>,
    ) -> Result<<Self as Deps>::Values, Mismatch> {
        Ok((take(values, &mut 0)?,))
    }
}

impl<A: Clone + Send + Sync + 'static> Deps for Vec<Handle<A>> {
    type Values = (Vec<A>,);
}

impl<A: Clone + Send + Sync + 'static> sealed::Deps for Vec<Handle<A>> {
    fn handles(self, each: &mut dyn FnMut(u64, u32)) {
        for h in self {
            each(h.builder, h.index);
        }
    }

    fn extract(
        values: &mut dyn ExactSizeIterator<Item = &Value>,
    ) -> Result<<Self as Deps>::Values, Mismatch> {
        let mut position = 0;
        let mut out = Vec::with_capacity(values.len());
        while values.len() > 0 {
            out.push(take(values, &mut position)?);
        }
        Ok((out,))
    }
}

macro_rules! tuples {
    ($(($($A:ident $a:ident),+))+) => {$(
        impl<$($A: Clone + Send + Sync + 'static),+> Deps for ($(Handle<$A>,)+) {
            type Values = ($($A,)+);
        }

        impl<$($A: Clone + Send + Sync + 'static),+> sealed::Deps for ($(Handle<$A>,)+) {
            fn handles(self, each: &mut dyn FnMut(u64, u32)) {
                let ($($a,)+) = self;
                $(each($a.builder, $a.index);)+
            }

            fn extract(
                values: &mut dyn ExactSizeIterator<Item = &Value>,
            ) -> Result<<Self as Deps>::Values, Mismatch> {
                let mut position = 0;
                Ok(($(take::<$A>(values, &mut position)?,)+))
            }
        }

        impl<Func, Out, $($A),+> TaskFn<($($A,)+)> for Func
        where
            Func: Fn($($A),+) -> Out + Send + Sync + 'static,
        {
            type Output = Out;

            fn call(&self, ($($a,)+): ($($A,)+)) -> Out {
                self($($a),+)
            }
        }

        impl<Func, Out, P, $($A),+> GrowFn<P, ($($A,)+)> for Func
        where
            Func: Fn(&mut Growth<'_, P>, $($A),+) -> Out + Send + Sync + 'static,
        {
            type Output = Out;

            fn call(&self, growth: &mut Growth<'_, P>, ($($a,)+): ($($A,)+)) -> Out {
                self(growth, $($a),+)
            }
        }
    )+};
}

tuples! {
    (A a)
    (A a, B b)
    (A a, B b, C c)
    (A a, B b, C c, D d)
    (A a, B b, C c, D d, E e)
    (A a, B b, C c, D d, E e, F f)
    (A a, B b, C c, D d, E e, F f, G g)
    (A a, B b, C c, D d, E e, F f, G g, H h)
}

impl<Func, Out> TaskFn<()> for Func
where
    Func: Fn() -> Out + Send + Sync + 'static,
{
    type Output = Out;

    fn call(&self, (): ()) -> Out {
        self()
    }
}

impl<Func, Out, P> GrowFn<P, ()> for Func
where
    Func: Fn(&mut Growth<'_, P>) -> Out + Send + Sync + 'static,
{
    type Output = Out;

    fn call(&self, growth: &mut Growth<'_, P>, (): ()) -> Out {
        self(growth)
    }
}

/// Builds a [`Graph`] whose parameter is a `P`, from functions and [`Handle`]s.
///
/// [`param`](GraphBuilder::param) is the handle of the parameter each run gets;
/// [`add`](GraphBuilder::add) adds an async function that takes its dependencies' values
/// and returns the handle of its result. [`named`](GraphBuilder::named),
/// [`on`](GraphBuilder::on) and [`with_options`](GraphBuilder::with_options) start a task
/// with a name, a placement or options of its own ([`TaskBuilder`]).
///
/// A task's default name comes from its function: the last segment of the path of a
/// function item (`fast_task_c`), or for a closure where it was added
/// (`closure@src/main.rs:12:17`), made unique with `#2`, `#3`, ..; the same code builds the
/// same names every time. A generated name skips a name given to an earlier task, but a name
/// given to a task that another task already has, generated or given, fails the build.
///
/// ```
/// use dagjoin::runtime::{GraphBuilder, Placement};
///
/// async fn fetch(id: u32) -> String {
///     format!("user{id}")
/// }
/// async fn count(id: u32) -> usize {
///     id as usize * 2
/// }
/// async fn render(user: String, orders: usize) -> String {
///     format!("{user}: {orders} orders")
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut builder = GraphBuilder::new();
/// let id = builder.param();
/// let user = builder.add(fetch, id);
/// let orders = builder.named("orders").on(Placement::Spawned).add(count, id);
/// let page = builder.add(render, (user, orders));
/// let graph = builder.build().unwrap();
///
/// // Build once, run many times.
/// let report = graph.run(7).await;
/// assert_eq!(report.get(&page).unwrap(), "user7: 14 orders");
/// let report = graph.run(8).await;
/// assert_eq!(report.get(&page).unwrap(), "user8: 16 orders");
/// assert_eq!(report.value::<usize>("orders").unwrap(), &16);
/// assert_eq!(graph.task_names().collect::<Vec<_>>(), ["fetch", "orders", "render"]);
/// # });
/// ```
pub struct GraphBuilder<P> {
    id: u64,
    nodes: Vec<Node>,
    names: Names,
    deps: DepTable,
    executors: Executors,
    problems: Vec<BuildProblem>,
    /// Tags and declared tags.
    growth: Growing,
    rules: Vec<Arc<RuleDef>>,
    _param: PhantomData<fn(P)>,
}

impl<P: Send + Sync + 'static> GraphBuilder<P> {
    /// An empty builder: the parameter only.
    pub fn new() -> Self {
        Self {
            id: next_builder_id(),
            nodes: vec![Node::param::<P>()],
            names: Names::new(),
            deps: DepTable::new(),
            executors: Executors::new(),
            problems: Vec::new(),
            growth: Growing::default(),
            rules: Vec::new(),
            _param: PhantomData,
        }
    }

    /// The handle of the parameter: each run's value of `P`.
    pub fn param(&self) -> Handle<P> {
        Handle::new(self.id, 0)
    }

    /// Starts a task named `name` (a name another task has makes
    /// [`build`](GraphBuilder::build) fail).
    pub fn named(&mut self, name: impl Into<String>) -> TaskBuilder<'_, P> {
        self.task().named(name)
    }

    /// Starts a task that runs on `placement`.
    pub fn on(&mut self, placement: Placement) -> TaskBuilder<'_, P> {
        self.task().on(placement)
    }

    /// Starts a task with `options` (timeout, retries, backoff).
    pub fn with_options(&mut self, options: TaskOptions) -> TaskBuilder<'_, P> {
        self.task().with_options(options)
    }

    /// Starts a task with tag `tag`: rules can wait for the tasks with a tag
    /// ([`When::settled`](crate::When::settled),
    /// [`When::tagged_completed`](crate::When::tagged_completed)) and take them
    /// ([`Growth::with_tag`]).
    pub fn tagged(&mut self, tag: &str) -> TaskBuilder<'_, P> {
        self.task().tagged(tag)
    }

    fn task(&mut self) -> TaskBuilder<'_, P> {
        TaskBuilder {
            target: Target::Graph(self),
            name: None,
            placement: None,
            options: TaskOptions::new(),
            tags: Vec::new(),
            adds: Vec::new(),
        }
    }

    /// Adds a growth step: a task that, once `deps` have their values, runs the synchronous
    /// function `f` with them and a [`Growth`], through which it adds tasks (and rules) to
    /// the run. Its value is what `f` returns.
    ///
    /// The step runs in the scheduling step where its last input arrives, on the run's own
    /// task, and takes no room on any executor; the tasks it adds whose inputs are there start
    /// in that same step. It never waits for what it added. If what it asked for cannot be
    /// added (see [`Growth`]), or it panics, the step fails and adds nothing: its
    /// descendants are skipped, the rest of the run goes on. A step is run once per run
    /// (its options' retries do not apply).
    ///
    /// ```
    /// use dagjoin::runtime::{GraphBuilder, Growth};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut g = GraphBuilder::<()>::new();
    /// let pages = g.named("pages").add(|| async { 3_usize }, ());
    /// let added = g.named("fetch_all").grow(
    ///     |grow: &mut Growth<()>, pages: usize| {
    ///         let fetched: Vec<_> = (0..pages)
    ///             .map(|page| grow.named(format!("page{page}")).add(move || async move { page * 100 }, ()))
    ///             .collect();
    ///         grow.named("total").add(|pages: Vec<usize>| async move { pages.iter().sum::<usize>() }, fetched);
    ///         pages
    ///     },
    ///     pages,
    /// );
    /// let report = g.build().unwrap().run(()).await;
    /// assert_eq!(report.get(&added).unwrap(), &3);
    /// assert_eq!(report.value::<usize>("total").unwrap(), &300);
    /// assert_eq!(report.task("page2").unwrap().added_by(), Some("fetch_all"));
    /// # });
    /// ```
    #[track_caller]
    pub fn grow<F, D, R>(&mut self, f: F, deps: D) -> Handle<R>
    where
        D: Deps,
        F: GrowFn<P, D::Values, Output = R>,
        R: Send + Sync + 'static,
    {
        self.task().grow(f, deps)
    }

    /// Adds a fallible growth step: like [`grow`](GraphBuilder::grow), for a step that
    /// returns a `Result`; an `Err` fails it, and it adds nothing.
    #[track_caller]
    pub fn try_grow<F, D, R, E>(&mut self, f: F, deps: D) -> Handle<R>
    where
        D: Deps,
        F: GrowFn<P, D::Values, Output = Result<R, E>>,
        R: Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        self.task().try_grow(f, deps)
    }

    /// Adds `rule` to the graph: each run registers it when it starts (see [`Rule`]).
    pub fn rule(&mut self, rule: Rule<P>) -> &mut Self {
        self.rules.push(rule.erase());
        self
    }

    /// Adds a task that runs `f` on the run's own task with the values of `deps` (`()`, a
    /// handle, a tuple of up to 8 handles, or a `Vec` of handles), in order, and returns the
    /// handle of the value its future resolves to.
    ///
    /// The task starts the moment the last of its dependencies has its value. A handle from
    /// another builder makes [`build`](GraphBuilder::build) fail, and so does a function whose
    /// future resolves to a `Result`: an `Err` would be a completed value. Add such a function
    /// with [`try_add`](GraphBuilder::try_add), so that an `Err` fails the task.
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

    /// Adds a fallible task: like [`add`](GraphBuilder::add), for a function whose future
    /// resolves to a `Result`. An `Err` fails the task (its descendants are skipped); the
    /// handle is of the `Ok` value.
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

    /// Adds a task that runs the synchronous (CPU-bound or blocking) function `f` on tokio's
    /// blocking pool, within [`RunOptions::max_blocking`](crate::RunOptions), so it never
    /// stalls the async tasks. Otherwise like [`add`](GraphBuilder::add).
    #[track_caller]
    pub fn add_blocking<F, D, T>(&mut self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = T>,
        T: Send + Sync + 'static,
    {
        self.task().add_blocking(f, deps)
    }

    /// Adds a fallible blocking task: [`add_blocking`](GraphBuilder::add_blocking) for a
    /// function that returns a `Result`.
    #[track_caller]
    pub fn try_add_blocking<F, D, T, E>(&mut self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = Result<T, E>>,
        T: Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        self.task().try_add_blocking(f, deps)
    }

    /// Adds a map over the collection `items` will hold: once it is there, one task per item
    /// (`f(item)`, all started at once, as far as the map's executor has room) and the map's
    /// value, a `Vec` of their values in item order, that other tasks take like any other.
    ///
    /// The item tasks are added to the run as it goes, named after the map (`name[0]`,
    /// `name[1]`, ..), with the map's executor and options (timeouts and retries apply to
    /// each item). An empty collection makes an empty `Vec` at once. If an item fails, the
    /// map and its users are skipped, and the other items run on.
    ///
    /// ```
    /// use dagjoin::runtime::GraphBuilder;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut g = GraphBuilder::<()>::new();
    /// let files = g.add(|| async { vec!["a.txt".to_owned(), "bb.txt".to_owned()] }, ());
    /// let sizes = g.named("size").map(|file: String| async move { file.len() }, files);
    /// let total = g.add(|sizes: Vec<usize>| async move { sizes.iter().sum::<usize>() }, sizes);
    /// let report = g.build().unwrap().run(()).await;
    /// assert_eq!(report.get(&sizes).unwrap(), &vec![5, 6]);
    /// assert_eq!(report.get(&total).unwrap(), &11);
    /// assert_eq!(report.task("size[1]").unwrap().attempts(), 1);
    /// # });
    /// ```
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

    /// Adds a map whose items may fail: see [`map`](GraphBuilder::map).
    #[track_caller]
    pub fn try_map<F, T, Fut, U, E>(&mut self, f: F, items: Handle<Vec<T>>) -> Handle<Vec<U>>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        U: Clone + Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        self.task().try_map(f, items)
    }

    /// Sets the options (timeout, retries, backoff) of the task behind `handle`.
    pub fn options<T>(&mut self, handle: &Handle<T>, options: TaskOptions) -> &mut Self {
        if let Some(v) = self.own(handle, "the handle given to `options`") {
            self.nodes[v as usize].options = options;
        }
        self
    }

    /// Renames the task behind `handle`; a name another task has makes
    /// [`build`](GraphBuilder::build) fail.
    pub fn rename<T>(&mut self, handle: &Handle<T>, name: &str) -> &mut Self {
        if let Some(v) = self.own(handle, "the handle given to `rename`") {
            self.rename_node(v, name);
        }
        self
    }

    /// The current name of the task behind `handle` (`param` for the parameter, `None` for a
    /// handle from another builder).
    pub fn name<T>(&self, handle: &Handle<T>) -> Option<&str> {
        (handle.builder == self.id).then(|| self.names.get(handle.index))
    }

    /// Checks and freezes the graph.
    ///
    /// # Errors
    ///
    /// Every handle from another builder (naming the task it was given for), every name
    /// given twice, options for the parameter, and every task added with `add` or
    /// `add_blocking` whose function returns a `Result`.
    pub fn build(self) -> Result<Graph<P>, BuildError> {
        if !self.problems.is_empty() {
            return Err(BuildError::new(self.problems));
        }
        let mut inner = GraphInner::new(
            self.id,
            self.nodes,
            self.names.into_table(),
            self.deps,
            self.executors,
        );
        let problems: Vec<_> = self
            .rules
            .iter()
            .flat_map(|rule| rule.check(&inner))
            .collect();
        if !problems.is_empty() {
            return Err(BuildError::new(problems));
        }
        let mut growth = self.growth;
        growth.rules = self.rules.into_iter().map(RuleDef::erased).collect();
        inner.growth = growth.boxed();
        Ok(Graph::from_inner(inner))
    }

    fn rename_node(&mut self, v: u32, name: &str) {
        if !self.names.rename(v, name) {
            self.problems.push(BuildProblem::DuplicateTask {
                name: name.to_owned(),
            });
        }
    }

    /// The node behind `handle` if it is a task of this builder; records a problem otherwise.
    fn own<T>(&mut self, handle: &Handle<T>, site: &str) -> Option<u32> {
        if handle.builder != self.id {
            self.problems.push(BuildProblem::ForeignHandle {
                site: site.to_owned(),
                builder: handle.builder,
                index: handle.index,
                this: self.id,
            });
            None
        } else if handle.index == 0 {
            self.problems.push(BuildProblem::NotATask {
                name: "param".to_owned(),
            });
            None
        } else {
            Some(handle.index)
        }
    }
}

impl<P: Send + Sync + 'static> Default for GraphBuilder<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> fmt::Debug for GraphBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphBuilder")
            .field("id", &self.id)
            .field("tasks", &(self.nodes.len() - 1))
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

/// A task being added to a [`GraphBuilder`], with its name, placement or options: from
/// [`GraphBuilder::named`], [`on`](GraphBuilder::on) or
/// [`with_options`](GraphBuilder::with_options); one of its `add` methods adds it.
///
/// ```
/// use dagjoin::runtime::{GraphBuilder, Placement, TaskOptions};
/// use std::time::Duration;
///
/// fn checksum(data: Vec<u8>) -> u32 {
///     data.iter().map(|&b| u32::from(b)).sum()
/// }
///
/// let mut g = GraphBuilder::<Vec<u8>>::new();
/// let data = g.param();
/// let sum = g
///     .named("checksum")
///     .on(Placement::Blocking)
///     .with_options(TaskOptions::new().timeout(Duration::from_secs(10)))
///     .add_blocking(checksum, data);
/// assert_eq!(g.name(&sum), Some("checksum"));
/// ```
#[must_use = "a task is added by one of the `add` methods"]
pub struct TaskBuilder<'g, P> {
    target: Target<'g, P>,
    name: Option<String>,
    placement: Option<Placement>,
    options: TaskOptions,
    tags: Vec<Arc<str>>,
    adds: Vec<Arc<str>>,
}

/// What a [`TaskBuilder`] adds its task to.
enum Target<'g, P> {
    /// A graph being built.
    Graph(&'g mut GraphBuilder<P>),
    /// A run, by a growth step or a rule.
    Growth(&'g mut Pending, &'g View<'g>),
}

impl<'g, P: Send + Sync + 'static> TaskBuilder<'g, P> {
    /// A task that a growth step or rule adds.
    pub(crate) fn growing(pending: &'g mut Pending, view: &'g View<'g>) -> Self {
        Self {
            target: Target::Growth(pending, view),
            name: None,
            placement: None,
            options: TaskOptions::new(),
            tags: Vec::new(),
            adds: Vec::new(),
        }
    }

    /// Names the task.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Gives the task tag `tag` (a task may have several). In a run that grows, only a step
    /// or rule that declared the tag ([`adds`](TaskBuilder::adds), [`Rule::adds`]) may add
    /// tasks with it.
    pub fn tagged(mut self, tag: &str) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// For a growth step ([`grow`](TaskBuilder::grow)): declares that it may add tasks with
    /// tag `tag`; the tag cannot settle until the step is done.
    pub fn adds(mut self, tag: &str) -> Self {
        self.adds.push(tag.into());
        self
    }

    /// Runs the task on `placement` (default: [`Placement::Inline`] for `add` and `try_add`,
    /// [`Placement::Blocking`] for `add_blocking` and `try_add_blocking`).
    pub fn on(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }

    /// Gives the task `options` (timeout, retries, backoff).
    pub fn with_options(mut self, options: TaskOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds the task: see [`GraphBuilder::add`].
    #[track_caller]
    pub fn add<F, D, Fut>(self, f: F, deps: D) -> Handle<Fut::Output>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = Fut>,
        Fut: Future + Send + 'static,
        Fut::Output: Send + Sync + 'static,
    {
        let work = Work::new(move |call: Call<'_>| {
            let future = f.call(extract::<D>(call)?);
            Ok(Job::Async(Box::pin(async move {
                Ok(Arc::new(future.await) as Value)
            })))
        });
        let result = is_result::<Fut::Output>();
        self.push::<F, D, Fut::Output>(work, INLINE, deps, result)
    }

    /// Adds the task: see [`GraphBuilder::try_add`].
    #[track_caller]
    pub fn try_add<F, D, Fut, T, E>(self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = Fut>,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        let work = Work::new(move |call: Call<'_>| {
            let future = f.call(extract::<D>(call)?);
            Ok(Job::Async(Box::pin(async move {
                match future.await {
                    Ok(value) => Ok(Arc::new(value) as Value),
                    Err(error) => Err(error.into()),
                }
            })))
        });
        self.push::<F, D, T>(work, INLINE, deps, false)
    }

    /// Adds the task: see [`GraphBuilder::add_blocking`].
    #[track_caller]
    pub fn add_blocking<F, D, T>(self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = T>,
        T: Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let work = Work::new(move |call: Call<'_>| {
            let args = extract::<D>(call)?;
            let f = f.clone();
            Ok(Job::Blocking(Box::new(move || {
                Ok(Arc::new(f.call(args)) as Value)
            })))
        });
        self.push::<F, D, T>(work, BLOCKING, deps, is_result::<T>())
    }

    /// Adds the task: see [`GraphBuilder::try_add_blocking`].
    #[track_caller]
    pub fn try_add_blocking<F, D, T, E>(self, f: F, deps: D) -> Handle<T>
    where
        D: Deps,
        F: TaskFn<D::Values, Output = Result<T, E>>,
        T: Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        let f = Arc::new(f);
        let work = Work::new(move |call: Call<'_>| {
            let args = extract::<D>(call)?;
            let f = f.clone();
            Ok(Job::Blocking(Box::new(move || match f.call(args) {
                Ok(value) => Ok(Arc::new(value) as Value),
                Err(error) => Err(error.into()),
            })))
        });
        self.push::<F, D, T>(work, BLOCKING, deps, false)
    }

    /// Adds a map: see [`GraphBuilder::map`].
    #[track_caller]
    pub fn map<F, T, Fut>(self, f: F, items: Handle<Vec<T>>) -> Handle<Vec<Fut::Output>>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Clone + Send + Sync + 'static,
    {
        let job = move |item: T| {
            let future = f(item);
            Job::Async(Box::pin(async move { Ok(Arc::new(future.await) as Value) }))
        };
        let result = is_result::<Fut::Output>();
        self.push::<F, Handle<Vec<T>>, Vec<Fut::Output>>(
            map_work::<T, Fut::Output>(Arc::new(job)),
            INLINE,
            items,
            result,
        )
    }

    /// Adds a map whose items may fail: see [`GraphBuilder::try_map`].
    #[track_caller]
    pub fn try_map<F, T, Fut, U, E>(self, f: F, items: Handle<Vec<T>>) -> Handle<Vec<U>>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        T: Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<U, E>> + Send + 'static,
        U: Clone + Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        let job = move |item: T| {
            let future = f(item);
            Job::Async(Box::pin(async move {
                match future.await {
                    Ok(value) => Ok(Arc::new(value) as Value),
                    Err(error) => Err(error.into()),
                }
            }))
        };
        self.push::<F, Handle<Vec<T>>, Vec<U>>(
            map_work::<T, U>(Arc::new(job)),
            INLINE,
            items,
            false,
        )
    }

    /// Adds a growth step: see [`GraphBuilder::grow`].
    #[track_caller]
    pub fn grow<F, D, R>(self, f: F, deps: D) -> Handle<R>
    where
        D: Deps,
        F: GrowFn<P, D::Values, Output = R>,
        R: Send + Sync + 'static,
    {
        let work = move |call: Call<'_>, pending: &mut Pending, view: &View<'_>| {
            let args = extract::<D>(call)?;
            let mut growth = Growth::new(pending, view);
            Ok(Arc::new(f.call(&mut growth, args)) as Value)
        };
        let result = is_result::<R>();
        self.push::<F, D, R>(Step::work(work), INLINE, deps, result)
    }

    /// Adds a fallible growth step: see [`GraphBuilder::try_grow`].
    #[track_caller]
    pub fn try_grow<F, D, R, E>(self, f: F, deps: D) -> Handle<R>
    where
        D: Deps,
        F: GrowFn<P, D::Values, Output = Result<R, E>>,
        R: Send + Sync + 'static,
        E: Into<anyhow::Error>,
    {
        let work = move |call: Call<'_>, pending: &mut Pending, view: &View<'_>| {
            let args = extract::<D>(call)?;
            let mut growth = Growth::new(pending, view);
            match f.call(&mut growth, args) {
                Ok(value) => Ok(Arc::new(value) as Value),
                Err(error) => Err(error.into()),
            }
        };
        self.push::<F, D, R>(Step::work(work), INLINE, deps, false)
    }

    #[track_caller]
    fn push<F, D: Deps, T: Any>(
        self,
        work: Work,
        default: u16,
        deps: D,
        returns_result: bool,
    ) -> Handle<T> {
        let Self {
            target,
            name,
            placement,
            options,
            tags,
            adds,
        } = self;
        let builder = match target {
            Target::Graph(builder) => builder,
            Target::Growth(pending, view) => {
                let task = GrownTask {
                    work,
                    default,
                    name,
                    placement,
                    options,
                    tags,
                    adds,
                    returns_result,
                };
                return task.push::<F, D, T>(pending, view, deps);
            }
        };
        let v = index(builder.nodes.len());
        builder.names.derive(Base::of::<F>(Location::caller()));
        if let Some(name) = &name {
            builder.rename_node(v, name);
        }
        let GraphBuilder {
            id,
            names,
            deps: table,
            problems,
            ..
        } = builder;
        let mut position = 0;
        sealed::Deps::handles(deps, &mut |from, node| {
            position += 1;
            if from == *id {
                table.add(node);
            } else {
                problems.push(BuildProblem::ForeignHandle {
                    site: format!("input {position} of task `{}`", names.get(v)),
                    builder: from,
                    index: node,
                    this: *id,
                });
                table.add(0);
            }
        });
        table.close();
        if returns_result {
            builder.problems.push(BuildProblem::ResultValue {
                task: builder.names.get(v).to_owned(),
                output: type_name::<T>(),
            });
        }
        let executor = match &placement {
            None => default,
            Some(placement) => builder.executors.index(placement),
        };
        for tag in tags {
            builder.growth.tags.push((v, tag));
        }
        for tag in adds {
            builder.growth.adds.push((v, tag));
        }
        builder.nodes.push(Node {
            work: Some(work),
            executor,
            options,
            output: TypeInfo::of::<T>(),
        });
        Handle::new(builder.id, v)
    }
}

/// A task a growth step or rule adds, before its inputs are known.
struct GrownTask {
    work: Work,
    default: u16,
    name: Option<String>,
    placement: Option<Placement>,
    options: TaskOptions,
    tags: Vec<Arc<str>>,
    adds: Vec<Arc<str>>,
    returns_result: bool,
}

impl GrownTask {
    /// Adds the task to `pending`, its inputs found in the run: each problem is recorded, and
    /// fails the step.
    #[track_caller]
    fn push<F, D: Deps, T: Any>(
        self,
        pending: &mut Pending,
        view: &View<'_>,
        deps: D,
    ) -> Handle<T> {
        let name = match self.name {
            Some(name) => NewName::Given(name),
            None => pending.derive(Base::of::<F>(Location::caller())),
        };
        // The task's name for a message: written only if there is one to write.
        let label = |name: &NewName| {
            let mut label = String::new();
            Pending::write_name(&mut label, view.adder, name);
            label
        };
        let mut problems = Vec::new();
        let (id, added) = (pending.id, pending.first..pending.next());
        let start = pending.deps.len();
        let mut position = 0;
        sealed::Deps::handles(deps, &mut |builder, node| {
            position += 1;
            match view.resolve(id, added.clone(), builder, node) {
                Ok(v) => pending.deps.push(v),
                Err(problem) => problems.push((position, problem)),
            }
        });
        let mut problems: Vec<String> = problems
            .into_iter()
            .map(|(position, problem)| {
                format!("input {position} of task `{}` is {problem}", label(&name))
            })
            .collect();
        if self.returns_result {
            problems.push(format!(
                "task `{}` returns a `{}`: add it with a `try_` method, so that an `Err` \
                 fails it",
                label(&name),
                type_name::<T>()
            ));
        }
        for tag in &self.tags {
            if !view.adds.contains(tag) {
                problems.push(format!(
                    "task `{}` has tag `{tag}`, which `{}` did not declare: declare it \
                     with `adds(\"{tag}\")`",
                    label(&name),
                    view.adder
                ));
            }
        }
        let executor = match &self.placement {
            None => Some(self.default),
            Some(placement) => view.graph.executors.find(placement),
        };
        let executor = executor.unwrap_or_else(|| {
            problems.push(format!(
                "task `{}` runs on executor `{}`, which no task of the graph uses: a run \
                 can only use the executors of its graph",
                label(&name),
                self.placement.as_ref().map_or("?", Placement::name)
            ));
            self.default
        });
        pending.problems.extend(problems);
        let deps = index(start)..index(pending.deps.len());
        let v = pending.push(NewTask {
            node: Node {
                work: Some(self.work),
                executor,
                options: self.options,
                output: TypeInfo::of::<T>(),
            },
            name,
            deps,
            tagging: NewTask::tagging(self.tags, self.adds),
        });
        Handle::new(pending.id, v)
    }
}

impl<P> fmt::Debug for TaskBuilder<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("name", &self.name)
            .field("placement", &self.placement)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Whether `T` is a `Result` (of any types): what [`TaskBuilder::add`] refuses as a value.
fn is_result<T>() -> bool {
    type_name::<T>().starts_with("core::result::Result<")
}

/// The typed inputs of a task from the run's values.
fn extract<D: Deps>(call: Call<'_>) -> Result<D::Values, anyhow::Error> {
    let mut inputs = call.inputs();
    <D as sealed::Deps>::extract(&mut inputs).map_err(|(position, requested)| {
        // Handles make this unreachable; a mismatch is still an error, never a wrong value.
        let dep = call.deps.get(position).copied().unwrap_or(0);
        InputError::TypeMismatch {
            task: call.name(call.node).to_owned(),
            dependency: call.name(dep).to_owned(),
            requested,
            actual: call.output(dep),
        }
        .into()
    })
}
