//! The inputs of a task of a named graph ([`Inputs`]), and the work of tasks that take them.

use core::any::Any;
use core::fmt;
use core::future::Future;
use std::sync::Arc;

use crate::error::InputError;
use crate::executor::{Job, Value};
use crate::graph::{Call, GraphInner, Work};

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
    /// For a task a run added, or one that takes an added task's value: the names and types
    /// the graph does not have.
    added: Option<Box<AddedNames>>,
}

/// The names of a task's inputs that are not all in its graph.
struct AddedNames {
    task: Box<str>,
    /// Each input's name and type.
    deps: Vec<(Box<str>, &'static str)>,
}

impl Inputs {
    pub(crate) fn new(call: Call<'_>) -> Self {
        let added = call.added;
        let grown = added.has(call.node) || call.deps.iter().any(|&d| added.has(d));
        Self {
            graph: call.graph.clone(),
            node: call.node,
            values: call.inputs().cloned().collect(),
            param: call.param().clone(),
            added: grown.then(|| {
                Box::new(AddedNames {
                    task: call.name(call.node).into(),
                    deps: call
                        .deps
                        .iter()
                        .map(|&d| (call.name(d).into(), call.output(d)))
                        .collect(),
                })
            }),
        }
    }

    /// The name of the task these are the inputs of.
    pub fn task(&self) -> &str {
        match &self.added {
            Some(added) => &added.task,
            None => self.graph.name(self.node),
        }
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
        (0..self.values.len()).map(|at| self.dep(at).0)
    }

    /// Input `at`'s name and type.
    fn dep(&self, at: usize) -> (&str, &'static str) {
        if let Some(added) = &self.added {
            (&added.deps[at].0, added.deps[at].1)
        } else {
            let d = self.graph.deps(self.node)[at];
            (self.graph.name(d), self.graph.nodes[d as usize].output.name)
        }
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
        self.downcast(value, Some(index))
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
        self.downcast(&self.param, None)
    }

    /// `value`, input `at` (`None`: the parameter), as a `T`.
    fn downcast<'a, T: Any>(
        &self,
        value: &'a Value,
        at: Option<usize>,
    ) -> Result<&'a T, InputError> {
        value.downcast_ref::<T>().ok_or_else(|| {
            let (dependency, actual) = match at {
                Some(at) => self.dep(at),
                None => ("param", self.graph.nodes[0].output.name),
            };
            InputError::TypeMismatch {
                task: self.task().to_owned(),
                dependency: dependency.to_owned(),
                requested: core::any::type_name::<T>(),
                actual,
            }
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
