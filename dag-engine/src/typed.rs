//! The typed builder: [`GraphBuilder`] adds functions with [`Handle`]s to their results, so
//! the compiler checks that each task gets inputs of the types its function takes.

use core::any::Any;
use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use std::sync::Arc;

use crate::error::{BuildError, BuildProblem, InputError};
use crate::graph::{
    base_name, index, next_builder_id, Call, DepTable, Graph, GraphInner, Job, Kind, Names, Node,
    TaskOptions, TypeInfo, Value, Work,
};

/// A typed reference to a node of a graph: the parameter ([`GraphBuilder::param`]) or a task
/// ([`GraphBuilder::add`] and friends), whose value is a `T`.
///
/// Use it as an input of later tasks and to read the task's value from a run's
/// [`Report`](crate::Report::get). A handle knows the builder it comes from: given to another
/// builder or to the report of another graph, it is an error, never a wrong value.
pub struct Handle<T> {
    pub(crate) builder: u64,
    pub(crate) index: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    fn new(builder: u64, index: u32) -> Self {
        Self {
            builder,
            index,
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("builder", &self.builder)
            .field("node", &self.index)
            .field("type", &core::any::type_name::<T>())
            .finish()
    }
}

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
/// and returns the handle of its result. A task's name comes from its function (the last
/// segment of the path of a function item, `task` for closures), made unique with `#2`,
/// `#3`, ..; [`rename`](GraphBuilder::rename) changes it.
///
/// ```
/// use dagjoin::runtime::GraphBuilder;
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
/// let orders = builder.add(count, id);
/// let page = builder.add(render, (user, orders));
/// let graph = builder.build().unwrap();
///
/// // Build once, run many times.
/// let report = graph.run(7).await;
/// assert_eq!(report.get(&page).unwrap(), "user7: 14 orders");
/// let report = graph.run(8).await;
/// assert_eq!(report.get(&page).unwrap(), "user8: 16 orders");
/// assert_eq!(report.value::<usize>("count").unwrap(), &16);
/// # });
/// ```
pub struct GraphBuilder<P> {
    id: u64,
    nodes: Vec<Node>,
    names: Names,
    deps: DepTable,
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
            problems: Vec::new(),
            _param: PhantomData,
        }
    }

    /// The handle of the parameter: each run's value of `P`.
    pub fn param(&self) -> Handle<P> {
        Handle::new(self.id, 0)
    }

    /// Adds a task that runs `f` on the run's own task with the values of `deps` (`()`, a
    /// handle, a tuple of up to 8 handles, or a `Vec` of handles), in order, and returns the
    /// handle of the value its future resolves to.
    ///
    /// The task starts the moment the last of its dependencies has its value. A handle from
    /// another builder makes [`build`](GraphBuilder::build) fail.
    pub fn add<F, D, Fut>(&mut self, f: F, deps: D) -> Handle<Fut::Output>
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
        self.push::<F, D, Fut::Output>(work, Kind::Async, deps)
    }

    /// Adds a fallible task: like [`add`](GraphBuilder::add), for a function whose future
    /// resolves to a `Result`. An `Err` fails the task (its descendants are skipped); the
    /// handle is of the `Ok` value.
    pub fn try_add<F, D, Fut, T, E>(&mut self, f: F, deps: D) -> Handle<T>
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
        self.push::<F, D, T>(work, Kind::Async, deps)
    }

    /// Adds a task that runs the synchronous (CPU-bound or blocking) function `f` on tokio's
    /// blocking pool, within [`RunOptions::max_blocking`](crate::RunOptions), so it never
    /// stalls the async tasks. Otherwise like [`add`](GraphBuilder::add).
    pub fn add_blocking<F, D, T>(&mut self, f: F, deps: D) -> Handle<T>
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
        self.push::<F, D, T>(work, Kind::Blocking, deps)
    }

    /// Adds a fallible blocking task: [`add_blocking`](GraphBuilder::add_blocking) for a
    /// function that returns a `Result`.
    pub fn try_add_blocking<F, D, T, E>(&mut self, f: F, deps: D) -> Handle<T>
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
        self.push::<F, D, T>(work, Kind::Blocking, deps)
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
            if !self.names.rename(v, name) {
                self.problems.push(BuildProblem::DuplicateTask {
                    name: name.to_owned(),
                });
            }
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
    /// given twice by [`rename`](GraphBuilder::rename), and options for the parameter.
    pub fn build(self) -> Result<Graph<P>, BuildError> {
        if !self.problems.is_empty() {
            return Err(BuildError::new(self.problems));
        }
        Ok(Graph::from_inner(GraphInner::new(
            self.id,
            self.nodes,
            self.names.into_table(),
            self.deps,
        )))
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

    fn push<F, D: Deps, T: Any>(&mut self, work: Work, kind: Kind, deps: D) -> Handle<T> {
        let v = index(self.nodes.len());
        self.names.derive(base_name::<F>());
        let Self {
            id,
            names,
            deps: table,
            problems,
            ..
        } = self;
        let mut position = 0;
        sealed::Deps::handles(deps, &mut |builder, node| {
            position += 1;
            if builder == *id {
                table.add(node);
            } else {
                problems.push(BuildProblem::ForeignHandle {
                    site: format!("input {position} of task `{}`", names.get(v)),
                    builder,
                    index: node,
                    this: *id,
                });
                table.add(0);
            }
        });
        table.close();
        self.nodes.push(Node {
            work: Some(work),
            kind,
            options: TaskOptions::new(),
            output: TypeInfo::of::<T>(),
        });
        Handle::new(self.id, v)
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

/// The typed inputs of a task from the run's values.
fn extract<D: Deps>(call: Call<'_>) -> Result<D::Values, anyhow::Error> {
    let mut inputs = call.inputs();
    <D as sealed::Deps>::extract(&mut inputs).map_err(|(position, requested)| {
        // Handles make this unreachable; a mismatch is still an error, never a wrong value.
        let graph = call.graph;
        let dep = graph.deps(call.node).get(position).copied().unwrap_or(0);
        InputError::TypeMismatch {
            task: graph.name(call.node).to_owned(),
            dependency: graph.name(dep).to_owned(),
            requested,
            actual: graph.nodes[dep as usize].output.name,
        }
        .into()
    })
}
