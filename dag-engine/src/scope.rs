//! Which attempt is running on this thread: what [`current_attempt`] reads.
//!
//! The scheduler marks the run for each of its polls and the attempt for each poll of an
//! attempt (two thread-local writes, no copy of anything); an attempt that runs elsewhere (a
//! spawned task, the blocking pool, an executor of your own) is given its key, and marks it
//! for each of its own polls there.

use core::cell::{Cell, RefCell};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::{Arc, Mutex, PoisonError};

use crate::executor::{BoxBlocking, BoxFuture, Job, Outcome};
use crate::graph::GraphInner;
use crate::id::{AttemptKey, RunKey};

/// What a run tells the attempts it polls about itself.
pub(crate) struct RunInfo {
    pub key: RunKey,
    pub graph: Arc<GraphInner>,
    /// The names of the tasks the run added, from node `graph.len()` on, as the run's own
    /// [`Added`](crate::grow::Added) has them: their text, and each one's span of it.
    added: Mutex<(String, Vec<(u32, u32)>)>,
}

impl RunInfo {
    pub fn new(key: RunKey, graph: Arc<GraphInner>) -> Self {
        Self {
            key,
            graph,
            added: Mutex::default(),
        }
    }

    /// The run added tasks named `text`, task by task `spans` of the whole text so far.
    pub fn add_names(&self, text: &str, spans: &[(u32, u32)]) {
        let mut added = self.added.lock().unwrap_or_else(PoisonError::into_inner);
        added.0.push_str(text);
        added.1.extend_from_slice(spans);
    }

    /// The name of node `v`.
    fn name(&self, v: u32) -> Arc<str> {
        match (v as usize).checked_sub(self.graph.len()) {
            None => Arc::from(self.graph.name(v)),
            Some(at) => {
                let added = self.added.lock().unwrap_or_else(PoisonError::into_inner);
                let (start, end) = added.1[at];
                Arc::from(&added.0[start as usize..end as usize])
            }
        }
    }
}

thread_local! {
    static RUN: RefCell<Option<Arc<RunInfo>>> = const { RefCell::new(None) };
    /// The node and attempt being polled (node 0: none).
    static TASK: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// The key of the attempt that is running on this thread: inside a task's future or closure,
/// the key of its own attempt, which gives its attempt number; `None` outside of any task.
///
/// ```
/// use dagjoin::runtime::{current_attempt, GraphBuilder, TaskOptions};
///
/// async fn flaky() -> anyhow::Result<u32> {
///     let attempt = current_attempt().unwrap().attempt();
///     anyhow::ensure!(attempt == 3, "attempt {attempt} fails");
///     Ok(attempt)
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut g = GraphBuilder::<()>::new();
/// let task = g.with_options(TaskOptions::new().retries(2)).try_add(flaky, ());
/// let report = g.build().unwrap().run(()).await;
/// assert_eq!(report.get(&task).unwrap(), &3);
/// assert!(current_attempt().is_none());
/// # });
/// ```
pub fn current_attempt() -> Option<AttemptKey> {
    let (node, attempt) = TASK.with(Cell::get);
    if node == 0 {
        return None;
    }
    RUN.with(|run| {
        let run = run.borrow();
        let run = run.as_ref()?;
        Some(AttemptKey::new(run.key.clone(), run.name(node), attempt))
    })
}

/// Marks `run` as the run being polled on this thread, with no attempt of it running yet,
/// until the guard is dropped. A run polled inside a task of another run (a nested run)
/// hides that task until it returns.
pub(crate) fn enter_run(run: &Arc<RunInfo>) -> RunGuard {
    let previous = RUN.with(|current| current.replace(Some(run.clone())));
    let task = TASK.with(|task| task.replace((0, 0)));
    RunGuard { previous, task }
}

/// Restores the run and attempt marked before.
pub(crate) struct RunGuard {
    previous: Option<Arc<RunInfo>>,
    task: (u32, u32),
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        RUN.with(|current| *current.borrow_mut() = previous);
        TASK.with(|task| task.set(self.task));
    }
}

/// Marks attempt `attempt` of node `node` as the one being polled until the guard is dropped.
#[inline]
pub(crate) fn enter_task(node: u32, attempt: u32) -> TaskGuard {
    TaskGuard {
        previous: TASK.with(|task| task.replace((node, attempt))),
    }
}

/// Restores the attempt marked before.
pub(crate) struct TaskGuard {
    previous: (u32, u32),
}

impl Drop for TaskGuard {
    #[inline]
    fn drop(&mut self) {
        TASK.with(|task| task.set(self.previous));
    }
}

/// `job`, marking its run and attempt for each of its polls (or its call) wherever it runs.
pub(crate) fn scoped(job: Job, run: Arc<RunInfo>, node: u32, attempt: u32) -> Job {
    match job {
        Job::Async(future) => Job::Async(Box::pin(Scoped {
            run,
            node,
            attempt,
            future,
        })),
        Job::Blocking(closure) => Job::Blocking(Box::new(move || {
            let _run = enter_run(&run);
            let _task = enter_task(node, attempt);
            closure()
        }) as BoxBlocking),
    }
}

/// A future that marks its run and attempt for each of its polls.
struct Scoped {
    run: Arc<RunInfo>,
    node: u32,
    attempt: u32,
    future: BoxFuture,
}

impl Future for Scoped {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let _run = enter_run(&this.run);
        let _task = enter_task(this.node, this.attempt);
        this.future.as_mut().poll(cx)
    }
}
