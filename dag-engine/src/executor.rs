//! Where an attempt of a task runs: the [`Executor`] trait between the scheduler and the
//! places that run tasks, and the built-in ones: [`Inline`] (the run's own task),
//! [`BlockingPool`] (tokio's blocking pool) and [`Spawned`] (a tokio task of its own).
//!
//! An executor only starts what it is given and reports the outcome. Every decision (when a
//! task starts, how many run at once, timeouts, retries, what a failure means for the rest of
//! the graph) is the scheduler's.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::any::Any;
use std::sync::Arc;

use futures_util::future::{abortable, AbortHandle, Aborted};
use tokio::task::JoinHandle;

use crate::error::{Cancelled, Panicked};
use crate::id::Attempt;

/// A task's result, type-erased: what the engine stores and hands to the tasks that use it.
///
/// Typed access goes through [`Report::get`](crate::Report::get),
/// [`Report::value`](crate::Report::value) and [`Inputs`](crate::Inputs); a reused result is
/// this same `Arc`, never a copy.
pub type Value = Arc<dyn Any + Send + Sync>;

/// What one attempt of a task ends with: its value, or the error that failed it.
///
/// An executor that could not finish an attempt because it was stopped from outside (an
/// aborted task, a runtime shutting down) ends it with a [`Cancelled`] error: the task is then
/// [`Status::Cancelled`](crate::Status::Cancelled), not failed, and is not retried.
pub type Outcome = Result<Value, anyhow::Error>;

/// The future of an async attempt, boxed.
pub type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The closure of a synchronous attempt, boxed.
pub type BoxBlocking = Box<dyn FnOnce() -> Outcome + Send>;

/// What one attempt of a task runs, made by the task's function from its inputs: an async
/// task's future, or a synchronous task's closure.
#[non_exhaustive]
pub enum Job {
    /// An async task: poll the future.
    Async(BoxFuture),
    /// A synchronous (CPU-bound or blocking) task: call the closure, on a thread that may
    /// block.
    Blocking(BoxBlocking),
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Async(_) => "Job::Async(..)",
            Self::Blocking(_) => "Job::Blocking(..)",
        })
    }
}

/// Runs attempts of tasks.
///
/// [`start`](Executor::start) is called on the run's task, once per attempt, with the
/// attempt's key and its job; it starts the job and returns the future of its outcome, which
/// the scheduler polls on the run's task. Dropping that future must stop the attempt (or, for
/// work that cannot be interrupted, forget it): that is how timeouts, fail-fast and dropped
/// runs cancel work. Nothing else is an executor's to decide: it is never asked whether to
/// retry, how many tasks may run, or what a failure means for the graph.
///
/// An executor may take at most [`max_in_flight`](Executor::max_in_flight) attempts at once
/// from each run; a run never gives it more (its
/// [`RunOptions::limit`](crate::RunOptions::limit) may lower that). Runs do not share the
/// count: an executor that must hold a limit across runs keeps its own.
///
/// An executor that runs tasks on a runtime of its own:
///
/// ```
/// use dagjoin::runtime::{Attempt, Executor, GraphBuilder, Job, Placement, Running};
/// use std::sync::Arc;
///
/// struct OtherRuntime(tokio::runtime::Handle);
///
/// impl Executor for OtherRuntime {
///     fn name(&self) -> &str {
///         "other-runtime"
///     }
///
///     fn start(&self, _attempt: Attempt<'_>, job: Job) -> anyhow::Result<Running> {
///         Ok(match job {
///             Job::Async(future) => Running::join_handle(self.0.spawn(future)),
///             Job::Blocking(closure) => Running::join_handle(self.0.spawn_blocking(closure)),
///             _ => anyhow::bail!("a job this executor does not know"),
///         })
///     }
/// }
///
/// let other = tokio::runtime::Runtime::new().unwrap();
/// let placement = Placement::custom(Arc::new(OtherRuntime(other.handle().clone())));
/// let mut g = GraphBuilder::<u32>::new();
/// let x = g.param();
/// let doubled = g.on(placement).add(|x: u32| async move { x * 2 }, x);
/// let graph = g.build().unwrap();
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let report = graph.run(21).await;
/// assert_eq!(report.get(&doubled).unwrap(), &42);
/// assert_eq!(report.task_of(&doubled).unwrap().executor(), "other-runtime");
/// # });
/// ```
pub trait Executor: Send + Sync + 'static {
    /// The executor's name, for errors, reports and limits
    /// ([`RunOptions::limit`](crate::RunOptions::limit)).
    fn name(&self) -> &str;

    /// Starts `job`, the attempt `attempt`; returns the future of its outcome.
    ///
    /// # Errors
    ///
    /// If the job cannot be started (no runtime to run it on, a job of a kind this executor
    /// does not run): the attempt fails with that error, and may be retried.
    fn start(&self, attempt: Attempt<'_>, job: Job) -> anyhow::Result<Running>;

    /// The most attempts this executor takes at once from one run; `None` (the default) for
    /// no limit.
    fn max_in_flight(&self) -> Option<usize> {
        None
    }
}

/// An attempt that has started: polling it drives it (a future polled in place) or waits for
/// it (a task elsewhere). Dropping it stops the attempt: it drops the future, or aborts the
/// task (a blocking closure already running cannot be interrupted: it runs to its end and its
/// outcome is dropped).
#[must_use = "an attempt is stopped when its `Running` is dropped"]
pub struct Running {
    inner: RunningInner,
}

enum RunningInner {
    Polled(BoxFuture),
    Task(AbortOnDrop),
}

/// A task's handle that aborts the task when dropped (a no-op once it is done), and the
/// future it drives with `block_on` on the blocking pool, if any, which `abort` cannot reach
/// once it has started.
struct AbortOnDrop(JoinHandle<Outcome>, Option<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // A blocking closure that has not started is not started at all.
        self.0.abort();
        if let Some(future) = &self.1 {
            // The future stops at its next poll, and `block_on` returns.
            future.abort();
        }
    }
}

impl Running {
    /// An attempt polled in place: the scheduler polls `future` on the run's own task.
    pub fn polled(future: BoxFuture) -> Self {
        Self {
            inner: RunningInner::Polled(future),
        }
    }

    /// An attempt running as a tokio task (spawned, or on the blocking pool, of any runtime).
    /// Dropping the `Running` aborts the task; a task that panicked fails the attempt with
    /// [`Panicked`], one that was cancelled (aborted from outside, its runtime shut down)
    /// ends it as [`Cancelled`].
    pub fn join_handle(handle: JoinHandle<Outcome>) -> Self {
        Self {
            inner: RunningInner::Task(AbortOnDrop(handle, None)),
        }
    }
}

impl Future for Running {
    type Output = Outcome;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        match &mut self.get_mut().inner {
            RunningInner::Polled(future) => future.as_mut().poll(cx),
            RunningInner::Task(handle) => {
                match core::task::ready!(Pin::new(&mut handle.0).poll(cx)) {
                    Ok(outcome) => Poll::Ready(outcome),
                    Err(error) if error.is_panic() => {
                        Poll::Ready(Err(Panicked::from_payload(&*error.into_panic()).into()))
                    }
                    Err(_) => Poll::Ready(Err(Cancelled::by_executor().into())),
                }
            }
        }
    }
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            RunningInner::Polled(_) => f.write_str("Running::Polled(..)"),
            RunningInner::Task(handle) => f
                .debug_struct("Running::Task")
                .field("finished", &handle.0.is_finished())
                .finish(),
        }
    }
}

/// The run's own task: async jobs are polled by the run's future (concurrency without
/// threads, on any executor); synchronous jobs are called in place, so they block the run
/// while they work. The placement of [`GraphBuilder::add`](crate::GraphBuilder::add).
#[derive(Clone, Copy, Debug, Default)]
pub struct Inline;

impl Executor for Inline {
    fn name(&self) -> &'static str {
        "inline"
    }

    fn start(&self, _: Attempt<'_>, job: Job) -> anyhow::Result<Running> {
        Ok(Self::polled(job))
    }
}

impl Inline {
    /// `job`, to be polled on the run's task: what [`start`](Executor::start) returns, and
    /// what the scheduler makes of a job for this executor without the call through the
    /// trait object.
    #[inline]
    pub(crate) fn polled(job: Job) -> Running {
        Running::polled(match job {
            Job::Async(future) => future,
            Job::Blocking(closure) => Box::pin(async move { closure() }),
        })
    }
}

/// tokio's blocking pool: synchronous jobs run on a thread of their own, so they never stall
/// the run's task; an async job is driven there with `block_on`. The placement of
/// [`GraphBuilder::add_blocking`](crate::GraphBuilder::add_blocking). Needs a tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingPool;

impl Executor for BlockingPool {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn start(&self, _: Attempt<'_>, job: Job) -> anyhow::Result<Running> {
        let runtime = runtime("on tokio's blocking pool")?;
        Ok(Running::join_handle(match job {
            Job::Blocking(closure) => runtime.spawn_blocking(closure),
            Job::Async(future) => {
                let handle = runtime.clone();
                let (future, abort) = abortable(future);
                let task = runtime.spawn_blocking(move || {
                    handle
                        .block_on(future)
                        .unwrap_or_else(|Aborted| Err(Cancelled::by_executor().into()))
                });
                return Ok(Running {
                    inner: RunningInner::Task(AbortOnDrop(task, Some(abort))),
                });
            }
        }))
    }
}

/// A tokio task of its own per attempt, which a multi-threaded runtime runs in parallel with
/// the rest of the run, so async work can use several cores; a synchronous job goes to the
/// blocking pool. Dropping the run aborts these tasks; a task aborted from outside is
/// [`Cancelled`](crate::Status::Cancelled) and its descendants are skipped. Needs a tokio
/// runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Spawned;

impl Executor for Spawned {
    fn name(&self) -> &'static str {
        "spawned"
    }

    fn start(&self, _: Attempt<'_>, job: Job) -> anyhow::Result<Running> {
        let runtime = runtime("as a tokio task")?;
        Ok(Running::join_handle(match job {
            Job::Async(future) => runtime.spawn(future),
            Job::Blocking(closure) => runtime.spawn_blocking(closure),
        }))
    }
}

/// The current tokio runtime, or the error that says why the attempt needs one (the task
/// and attempt are in the report and the events already).
fn runtime(place: &str) -> anyhow::Result<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        anyhow::anyhow!(
            "the task runs {place}, but the graph is not running inside a tokio runtime"
        )
    })
}

/// Where a task runs: one of the built-in executors or one of your own. Chosen when the task
/// is added ([`GraphBuilder::on`](crate::GraphBuilder::on),
/// [`NamedGraphBuilder::task_on`](crate::NamedGraphBuilder::task_on)).
///
/// ```
/// use dagjoin::runtime::Placement;
///
/// assert_eq!(Placement::Spawned.name(), "spawned");
/// assert_eq!(Placement::default().name(), "inline");
/// ```
#[derive(Clone, Default)]
pub enum Placement {
    /// [`Inline`]: on the run's own task.
    #[default]
    Inline,
    /// [`BlockingPool`]: on tokio's blocking pool.
    Blocking,
    /// [`Spawned`]: as a tokio task of its own.
    Spawned,
    /// An executor of your own. Tasks given the same `Arc` share its limit.
    Custom(Arc<dyn Executor>),
}

impl Placement {
    /// An executor of your own.
    pub fn custom(executor: Arc<dyn Executor>) -> Self {
        Self::Custom(executor)
    }

    /// The executor's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Inline => Inline.name(),
            Self::Blocking => BlockingPool.name(),
            Self::Spawned => Spawned.name(),
            Self::Custom(executor) => executor.name(),
        }
    }

    /// The index of a built-in placement in every graph's executor table.
    #[inline]
    pub(crate) fn builtin(&self) -> Option<u16> {
        match self {
            Self::Inline => Some(INLINE),
            Self::Blocking => Some(BLOCKING),
            Self::Spawned => Some(2),
            Self::Custom(_) => None,
        }
    }
}

impl fmt::Debug for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Custom(executor) => write!(f, "Placement::Custom({:?})", executor.name()),
            _ => write!(f, "Placement::{}", self.name()),
        }
    }
}

/// The index of [`Inline`] in every graph's executor table.
pub(crate) const INLINE: u16 = 0;

/// The index of [`BlockingPool`] in every graph's executor table.
pub(crate) const BLOCKING: u16 = 1;

/// The executors of a graph: the built-in ones at indexes 0, 1, 2, then custom ones in the
/// order tasks first used them.
#[derive(Clone)]
pub(crate) struct Executors {
    table: Vec<Arc<dyn Executor>>,
    /// Their names, asked once: events name a task's executor at each start.
    names: Vec<Box<str>>,
}

impl Executors {
    pub fn new() -> Self {
        let table: Vec<Arc<dyn Executor>> =
            vec![Arc::new(Inline), Arc::new(BlockingPool), Arc::new(Spawned)];
        Self {
            names: table
                .iter()
                .map(|executor| executor.name().into())
                .collect(),
            table,
        }
    }

    /// The index of `placement`, added if new.
    #[inline]
    pub fn index(&mut self, placement: &Placement) -> u16 {
        match placement {
            Placement::Custom(executor) => self.custom(executor),
            _ => placement
                .builtin()
                .expect("every other placement is built in"),
        }
    }

    /// The index of `placement` if the table has it: a run's added tasks can only use the
    /// executors of its graph.
    pub fn find(&self, placement: &Placement) -> Option<u16> {
        match placement {
            Placement::Custom(executor) => self
                .table
                .iter()
                .position(|known| Arc::ptr_eq(known, executor))
                .map(|at| u16::try_from(at).expect("a graph uses fewer than 65536 executors")),
            _ => placement.builtin(),
        }
    }

    /// The index of a custom executor, added if new.
    fn custom(&mut self, executor: &Arc<dyn Executor>) -> u16 {
        let at = self
            .table
            .iter()
            .position(|known| Arc::ptr_eq(known, executor))
            .unwrap_or_else(|| {
                self.table.push(executor.clone());
                self.names.push(executor.name().into());
                self.table.len() - 1
            });
        u16::try_from(at).expect("a graph uses fewer than 65536 executors")
    }

    pub fn get(&self, index: u16) -> &Arc<dyn Executor> {
        &self.table[usize::from(index)]
    }

    pub fn name(&self, index: u16) -> &str {
        &self.names[usize::from(index)]
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Executor>> {
        self.table.iter()
    }
}
