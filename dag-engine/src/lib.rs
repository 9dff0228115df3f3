//! The run-time engine: graphs of tasks built at run time, run with the most parallelism
//! there is, with failures contained and reruns that reuse what completed.
//!
//! - **Build** a [`Graph`] with typed handles ([`GraphBuilder`]) or from names
//!   ([`NamedGraphBuilder`], for graphs loaded from data). Building checks the whole graph
//!   (cycles, unknown dependencies, handles from another builder) and returns every problem
//!   as a [`BuildError`].
//! - **Run** it any number of times, also concurrently, each run with its own parameter:
//!   [`Graph::run`] returns a future of the run's [`Report`]. Each task starts the moment its
//!   last input is ready. [`RunOptions`] limits how many tasks are in flight on each
//!   executor, and [`TaskOptions`] gives a task a timeout and retries with backoff.
//! - **Failures** stay where they are: a failed task's descendants are skipped (never called),
//!   each naming the task that failed, and everything else runs to completion; a panic is a
//!   failure with its message. [`Report::check`] lists every failed task; with
//!   [`RunOptions::fail_fast`] the run stops at the first failure instead.
//! - **Again**: [`Graph::again`] reruns only what did not complete, reusing every completed
//!   value; [`Graph::plan`] starts a first run partly done or with a subset; both can reset
//!   tasks, mark tasks done, or run a subset, and [`Graph::replace`] swaps a task's function.
//! - **Placement**: each task runs on an [`Executor`] chosen when it is added
//!   ([`Placement`]): the run's own task ([`Inline`]), tokio's blocking pool
//!   ([`BlockingPool`]), a tokio task of its own ([`Spawned`]), or one of your own; each has
//!   its own limit on tasks in flight.
//! - **Seeing it**: every change of a task's state is one transition, announced as an
//!   [`Event`] to callbacks ([`RunOptions::on_event`]) and streams ([`Run::events`]), kept in
//!   the live status ([`Run::status`]) and in the [`Report`]. See [`Event`] for what is
//!   guaranteed.
//! - **Identity**: runs have keys unique across processes ([`RunKey`]), attempts have keys
//!   ([`AttemptKey`]: run, task, attempt) that a task reads with [`current_attempt`], and task
//!   names are stable across builds of the same graph.
//! - **Tracing** (feature `tracing`): a span per run, a child of the span current where the
//!   run was made, and a span per attempt inside it, in which the task runs; each attempt's
//!   status and duration are recorded at its end. Without a subscriber that wants them, a
//!   run makes no span beyond a disabled one.
//! - **Progress** (feature `progress`): `RunOptions::progress` shows a run on a progress
//!   bar.
//! - **Pictures**: [`Graph::to_mermaid`], [`Graph::to_dot`], and after a run
//!   [`Report::to_mermaid`], [`Report::to_dot`] (tasks styled by status, with a legend) and
//!   [`Report::to_gantt`] (the timeline, critical path marked); while it goes on,
//!   [`RunStatus::to_mermaid`] and [`RunStatus::to_dot`] (tasks styled by state). `Display`
//!   of a [`Report`] sums it up in text.
//! - **Stopping**: [`RunOptions::cancel_on`] and [`RunOptions::time_limit`] stop a run with
//!   its report; dropping the run cancels everything without one.
//!
//! ```
//! use dagjoin::runtime::{GraphBuilder, Status};
//! use std::time::Duration;
//! use tokio::time::sleep;
//!
//! async fn fast_task_a() -> u32 { sleep(Duration::from_millis(100)).await; 1 }
//! async fn slow_task_b(a: u32) -> u32 { sleep(Duration::from_millis(500)).await; a + 10 }
//! async fn slow_task_a() -> u32 { sleep(Duration::from_millis(1000)).await; 2 }
//! async fn fast_task_b() -> u32 { sleep(Duration::from_millis(100)).await; 3 }
//! async fn fast_task_c(sa: u32, fb: u32) -> u32 { sleep(Duration::from_millis(100)).await; sa * fb }
//! async fn end_task(b: u32, c: u32) -> u32 { sleep(Duration::from_millis(100)).await; b + c }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let mut g = GraphBuilder::<()>::new();
//! let a = g.add(fast_task_a, ());
//! let b = g.add(slow_task_b, a);
//! let sa = g.add(slow_task_a, ());
//! let fb = g.add(fast_task_b, ());
//! let c = g.add(fast_task_c, (sa, fb));
//! let end = g.add(end_task, (b, c));
//! let graph = g.build()?;
//!
//! let report = graph.run(()).await;
//! report.check()?;
//! assert_eq!(report.get(&end)?, &17);
//! assert_eq!(report.makespan(), Duration::from_millis(1200));
//! assert_eq!(report.critical_path(), ["slow_task_a", "fast_task_c", "end_task"]);
//! assert_eq!(report.task("slow_task_b")?.status(), Status::Completed);
//! # Ok::<_, anyhow::Error>(())
//! # }).unwrap();
//! ```
//!
//! A run is lazy, like any future, and dropping it cancels it. Timeouts, retry backoffs and
//! blocking tasks use tokio; a graph of async tasks without them runs on any executor.

mod error;
mod event;
mod executor;
mod graph;
mod grow;
mod id;
mod inputs;
mod live;
mod named;
mod options;
mod picture;
mod plan;
#[cfg(feature = "progress")]
mod progress;
mod report;
mod rules;
mod run;
mod scope;
mod state;
#[cfg(feature = "tracing")]
mod trace;
mod typed;

pub use error::{
    BuildError, BuildProblem, Cancelled, InputError, Panicked, PlanError, RunError, TimedOut,
    ValueError,
};
pub use event::{Event, EventKind, Events, TaskName};
pub use executor::{
    BlockingPool, BoxBlocking, BoxFuture, Executor, Inline, Job, Outcome, Placement, Running,
    Spawned, Value,
};
pub use graph::{Graph, TaskOptions};
pub use id::{Attempt, AttemptKey, Handle, InvalidRunKey, RunKey, Status, TaskState};
pub use inputs::Inputs;
pub use live::{RunStatus, Snapshot, TaskSnapshot};
pub use named::NamedGraphBuilder;
pub use options::{CancelHandle, RunOptions};
pub use picture::Diagram;
pub use plan::Plan;
#[cfg(feature = "progress")]
pub use progress::Progress;
pub use report::{Report, RuleReport, TaskReport};
pub use rules::{TaskRef, When};
pub use run::Run;
pub use scope::current_attempt;
pub use typed::{Deps, GraphBuilder, GrowFn, Growth, Rule, TaskBuilder, TaskFn};
