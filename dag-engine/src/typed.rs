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
    index, next_builder_id, Base, Call, DepTable, Graph, GraphInner, Names, Node, TaskOptions,
    TypeInfo, Work,
};
use crate::id::Handle;

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

    fn task(&mut self) -> TaskBuilder<'_, P> {
        TaskBuilder {
            builder: self,
            name: None,
            placement: None,
            options: TaskOptions::new(),
        }
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
        Ok(Graph::from_inner(GraphInner::new(
            self.id,
            self.nodes,
            self.names.into_table(),
            self.deps,
            self.executors,
        )))
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
    builder: &'g mut GraphBuilder<P>,
    name: Option<String>,
    placement: Option<Placement>,
    options: TaskOptions,
}

impl<P: Send + Sync + 'static> TaskBuilder<'_, P> {
    /// Names the task.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
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
        let spread = MapOf::<T, Fut::Output> {
            job: Arc::new(job),
            types: PhantomData,
        };
        let result = is_result::<Fut::Output>();
        self.push::<F, Handle<Vec<T>>, Vec<Fut::Output>>(
            Work::Spread(Arc::new(spread)),
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
        let spread = MapOf::<T, U> {
            job: Arc::new(job),
            types: PhantomData,
        };
        self.push::<F, Handle<Vec<T>>, Vec<U>>(Work::Spread(Arc::new(spread)), INLINE, items, false)
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
            builder,
            name,
            placement,
            options,
        } = self;
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
        builder.nodes.push(Node {
            work: Some(work),
            executor,
            options,
            output: TypeInfo::of::<T>(),
        });
        Handle::new(builder.id, v)
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
        let graph = call.graph;
        let dep = call.deps.get(position).copied().unwrap_or(0);
        // Added tasks are made with their inputs' types: only the graph's own reach here.
        let name = |v: u32| {
            graph
                .names()
                .try_get(v)
                .unwrap_or("an added task")
                .to_owned()
        };
        InputError::TypeMismatch {
            task: name(call.node),
            dependency: name(dep),
            requested,
            actual: graph
                .nodes
                .get(dep as usize)
                .map_or("?", |node| node.output.name),
        }
        .into()
    })
}

/// A typed map: the job of each item, from the item.
struct MapOf<T, U> {
    job: Arc<dyn Fn(T) -> Job + Send + Sync>,
    types: PhantomData<fn(T) -> U>,
}

impl<T, U> MapOf<T, U>
where
    T: Clone + Send + Sync + 'static,
{
    fn items(value: &Value) -> Result<&Vec<T>, anyhow::Error> {
        value.downcast_ref::<Vec<T>>().ok_or_else(|| {
            anyhow::anyhow!(
                "a map's input is not the `Vec<{}>` it maps over",
                type_name::<T>()
            )
        })
    }
}

impl<T, U> crate::graph::Spread for MapOf<T, U>
where
    T: Clone + Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
{
    fn width(&self, value: &Value) -> Result<usize, anyhow::Error> {
        Self::items(value).map(Vec::len)
    }

    fn item(&self, source: u32, first: u32) -> Work {
        let job = self.job.clone();
        Work::new(move |call: Call<'_>| {
            let items = call.values[source as usize]
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("a map item starts once its collection is there"))
                .and_then(Self::items)?;
            let item = items[(call.node - first) as usize].clone();
            Ok(job(item))
        })
    }

    fn item_output(&self) -> TypeInfo {
        TypeInfo::of::<U>()
    }

    fn gather(&self, items: &mut dyn Iterator<Item = &Value>) -> Result<Value, anyhow::Error> {
        let values = items
            .map(|value| {
                value.downcast_ref::<U>().cloned().ok_or_else(|| {
                    anyhow::anyhow!("a map item's value is not a `{}`", type_name::<U>())
                })
            })
            .collect::<Result<Vec<U>, _>>()?;
        Ok(Arc::new(values) as Value)
    }
}
