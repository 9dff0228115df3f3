//! The scheduler: runs a [`Graph`], event by event, and produces its [`Report`].
//!
//! It keeps, per task, the number of inputs still missing; the graph keeps, per node, the
//! tasks that use it. When a task completes, each user's count goes down by one, and a user
//! whose count reaches zero joins the ready queue of its kind (async or blocking). Ready tasks
//! start as long as their kind has a free slot. A failure walks the failed task's
//! descendants once and marks them skipped. So a run costs O(tasks + edges), and a task
//! starts in the same poll its last input arrives.
//!
//! Async tasks are polled on the run's own future: once when they start, and if that first
//! poll does not finish them, in a `FuturesUnordered`, which polls each once more when it
//! enters and then only the ones that woke (a future must wake the waker of its latest poll,
//! as the `Future` contract says, not only the first one it saw);
//! blocking tasks run on tokio's blocking pool. Each in-flight item also carries its attempt's
//! timeout, or the backoff before a retry, so the scheduler never polls on an interval.
//! Every poll of a task runs inside `catch_unwind`: a panic fails the attempt.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::{sleep, Instant, Sleep};

use crate::error::{Panicked, TimedOut};
use crate::executor::{AttemptKey, Executor, Local, Running};
use crate::graph::{index, Call, Graph, GraphInner, Kind, Outcome, Value};
use crate::report::{Origin, Phase, Report, RunId, Status, TaskState};

/// Options of a run: limits on the tasks in flight, and fail-fast.
///
/// ```
/// use dagjoin::runtime::RunOptions;
///
/// let options = RunOptions::new().max_in_flight(8).max_blocking(2).fail_fast(true);
/// assert_eq!(options.max_in_flight, Some(8));
/// assert_eq!(RunOptions::default(), RunOptions::new());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// The most async tasks in flight at once (a task waiting to retry counts); `None` (the
    /// default) for no limit. 0 counts as 1.
    pub max_in_flight: Option<usize>,
    /// The most blocking tasks in flight at once, apart from the async ones; `None` (the
    /// default) leaves the limit to tokio's blocking pool. 0 counts as 1.
    pub max_blocking: Option<usize>,
    /// Stop at the first failure: cancel (drop) every task in flight and start no other.
    /// `false` (the default) keeps going: only the failed task's descendants are skipped.
    pub fail_fast: bool,
}

impl RunOptions {
    /// No limits, keep going after failures.
    pub const fn new() -> Self {
        Self {
            max_in_flight: None,
            max_blocking: None,
            fail_fast: false,
        }
    }

    /// Sets the most async tasks in flight at once.
    #[must_use]
    pub const fn max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = Some(limit);
        self
    }

    /// Sets the most blocking tasks in flight at once.
    #[must_use]
    pub const fn max_blocking(mut self, limit: usize) -> Self {
        self.max_blocking = Some(limit);
        self
    }

    /// Sets whether the run stops at the first failure.
    #[must_use]
    pub const fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }
}

impl<P: Send + Sync + 'static> Graph<P> {
    /// Runs the graph with `param`, with default [`RunOptions`]: the future resolves to the
    /// run's [`Report`] once every task has completed, failed or been skipped.
    ///
    /// Like any future it does nothing until polled; dropping it cancels the run (tasks in
    /// flight are dropped, blocking ones that have not started are aborted). Runs of one graph
    /// are independent: several may go on at once, with different parameters.
    ///
    /// Async tasks are polled inside the returned future, so they work on any executor;
    /// blocking tasks, timeouts and retry backoffs need a tokio runtime (with time enabled).
    pub fn run(&self, param: P) -> Run {
        self.run_with(param, RunOptions::new())
    }

    /// Runs the graph with `param` and `options`; see [`run`](Graph::run).
    pub fn run_with(&self, param: P, options: RunOptions) -> Run {
        Run::new(self.inner.clone(), Arc::new(param), options, None)
    }
}

/// What a rerun starts from ([`Again`](crate::Again)): which tasks run, and the values of
/// those that do not.
pub(crate) struct Plan {
    pub runs: Vec<bool>,
    pub preset: Vec<Option<(Value, Origin)>>,
}

/// A run of a [`Graph`]: a future of its [`Report`], from [`Graph::run`].
///
/// Dropping it cancels the run: tasks in flight are dropped, and blocking tasks that have not
/// started on the pool are aborted (those already running finish on their thread, unseen).
#[must_use = "futures do nothing unless you `.await` or poll them; dropping this one cancels the run"]
pub struct Run {
    scheduler: Option<Box<Scheduler>>,
}

impl Run {
    pub(crate) fn new(
        graph: Arc<GraphInner>,
        param: Value,
        options: RunOptions,
        plan: Option<Plan>,
    ) -> Self {
        Self {
            scheduler: Some(Box::new(Scheduler::new(graph, param, options, plan))),
        }
    }

    /// The id of this run (its report carries it too).
    ///
    /// # Panics
    ///
    /// If the run has finished.
    pub fn id(&self) -> RunId {
        self.scheduler
            .as_ref()
            .expect("`Run::id` called after the run finished")
            .run
    }
}

impl Future for Run {
    type Output = Report;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        let scheduler = self
            .scheduler
            .as_mut()
            .expect("`Run` polled after it finished");
        let report = core::task::ready!(scheduler.poll(cx));
        self.scheduler = None;
        Poll::Ready(report)
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scheduler {
            Some(scheduler) => f
                .debug_struct("Run")
                .field("id", &scheduler.run)
                .field("in_flight", &scheduler.in_flight.len())
                .finish_non_exhaustive(),
            None => f.write_str("Run(finished)"),
        }
    }
}

/// Work done per poll of a run (tasks started plus events of tasks in flight) before it yields
/// to its executor.
const BUDGET: usize = 128;

/// [`Scheduler::missing`] of a task that this run does not start.
const NOT_WAITING: u32 = u32::MAX;

/// Index of a kind's queue and counter.
fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Async => 0,
        Kind::Blocking => 1,
    }
}

struct Scheduler {
    graph: Arc<GraphInner>,
    run: RunId,
    executor: Local,
    /// The most tasks in flight, per kind.
    limits: [usize; 2],
    fail_fast: bool,
    /// Node 0 is the parameter.
    values: Vec<Option<Value>>,
    tasks: Vec<TaskState>,
    /// Per task, its inputs that have no value yet, or [`NOT_WAITING`] for the tasks that
    /// this run does not start (not planned, or skipped). A completion touches only this
    /// compact array for each user, not their whole state.
    missing: Vec<u32>,
    /// Tasks whose inputs are all there, per kind, in the order they became ready.
    ready: [VecDeque<u32>; 2],
    /// Tasks started and not finished, per kind.
    busy: [usize; 2],
    in_flight: FuturesUnordered<InFlight>,
    started: Option<Instant>,
    /// The clock as of the last time task code ran: tasks started now start at this instant,
    /// tasks that end now end at it. It is read at every poll of the run and after every poll
    /// of task code (an attempt's first poll, each event of the tasks in flight), so a task
    /// that finishes at once costs one clock read.
    now: Instant,
    /// Scratch space for walks over descendants.
    stack: Vec<u32>,
}

impl Scheduler {
    fn new(graph: Arc<GraphInner>, param: Value, options: RunOptions, plan: Option<Plan>) -> Self {
        let n = graph.len();
        let mut values = vec![None; n];
        values[0] = Some(param);
        let mut tasks: Vec<TaskState> = (0..n).map(|_| TaskState::NEW).collect();
        tasks[0].phase = Phase::Done(Status::Completed);
        let mut ready = [VecDeque::new(), VecDeque::new()];
        let missing = match plan {
            None => {
                let missing = graph.initial_missing.to_vec();
                for v in 1..n {
                    if missing[v] == 0 {
                        ready[slot(graph.kind(index(v)))].push_back(index(v));
                    }
                }
                missing
            }
            Some(Plan { runs, preset }) => {
                let mut missing = vec![NOT_WAITING; n];
                for (v, preset) in preset.into_iter().enumerate().skip(1) {
                    if let Some((value, origin)) = preset {
                        values[v] = Some(value);
                        tasks[v].phase = Phase::Done(Status::Completed);
                        tasks[v].origin = origin;
                    }
                }
                for v in 1..n {
                    if runs[v] {
                        missing[v] = index(
                            graph
                                .deps(index(v))
                                .iter()
                                .filter(|&&d| values[d as usize].is_none())
                                .count(),
                        );
                        if missing[v] == 0 {
                            ready[slot(graph.kind(index(v)))].push_back(index(v));
                        }
                    }
                }
                missing
            }
        };
        Self {
            limits: [
                options.max_in_flight.map_or(usize::MAX, |l| l.max(1)),
                options.max_blocking.map_or(usize::MAX, |l| l.max(1)),
            ],
            fail_fast: options.fail_fast,
            run: RunId::next(),
            executor: Local,
            graph,
            values,
            tasks,
            missing,
            ready,
            busy: [0, 0],
            in_flight: FuturesUnordered::new(),
            started: None,
            now: Instant::now(),
            stack: Vec::new(),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Report> {
        self.now = Instant::now();
        if self.started.is_none() {
            self.started = Some(self.now);
        }
        let mut budget = BUDGET;
        while self.launch(cx, &mut budget) {
            if self.in_flight.is_empty() {
                return Poll::Ready(self.finish());
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            match self.in_flight.poll_next_unpin(cx) {
                Poll::Ready(Some((v, attempt, event))) => {
                    // Polling the tasks in flight ran their code.
                    self.now = Instant::now();
                    match event {
                        Event::Finished(outcome) => self.finished(v, attempt, outcome),
                        Event::Retry => self.attempt(v, attempt, cx),
                    }
                }
                Poll::Ready(None) => unreachable!("`in_flight` is not empty"),
                Poll::Pending => return Poll::Pending,
            }
        }
        // Let other tasks of the executor run before going on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Starts ready tasks while their kind has free slots, each start taking one unit of
    /// `budget`; `false` if the budget ran out first.
    ///
    /// A task that finishes in its first poll may make tasks of either kind ready, so this
    /// goes on until a pass over both kinds starts nothing.
    fn launch(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> bool {
        loop {
            let mut started = false;
            for kind in 0..2 {
                while self.busy[kind] < self.limits[kind] && !self.ready[kind].is_empty() {
                    if *budget == 0 {
                        return false;
                    }
                    *budget -= 1;
                    let Some(v) = self.ready[kind].pop_front() else {
                        break;
                    };
                    started = true;
                    self.busy[kind] += 1;
                    let task = &mut self.tasks[v as usize];
                    task.phase = Phase::Running;
                    task.start = Some(self.now);
                    self.attempt(v, 1, cx);
                }
            }
            if !started {
                return true;
            }
        }
    }

    /// Starts attempt `attempt` of task `v` and polls it once at once: a task that finishes
    /// in its first poll never enters `in_flight` (no allocation, no second poll), and its
    /// users are ready in this same poll of the run.
    fn attempt(&mut self, v: u32, attempt: u32, cx: &mut Context<'_>) {
        self.tasks[v as usize].attempts = attempt;
        let node = &self.graph.nodes[v as usize];
        let work = node.work.as_ref().expect("tasks have a function");
        let call = Call {
            graph: &self.graph,
            node: v,
            values: &self.values,
        };
        let key = AttemptKey {
            run: self.run,
            graph: &self.graph,
            node: v,
            attempt,
        };
        // The timer starts before the first poll: the timeout counts from there, and without
        // a timer (no tokio runtime) the attempt fails before its task runs at all.
        let deadline = match node.options.timeout.map(|after| Ok((timer(after)?, after))) {
            None => None,
            Some(Ok(deadline)) => Some(deadline),
            Some(Err(error)) => return self.finished(v, attempt, Err(error)),
        };
        let started = catch_unwind(AssertUnwindSafe(|| {
            let mut running = self.executor.start(key, work.call(call)?)?;
            let first = Pin::new(&mut running).poll(cx);
            Ok::<_, anyhow::Error>((running, first))
        }));
        // The first poll ran the task's code.
        self.now = Instant::now();
        let running = match started {
            Ok(Ok((_, Poll::Ready(outcome)))) => return self.finished(v, attempt, outcome),
            Ok(Ok((running, Poll::Pending))) => running,
            Ok(Err(error)) => return self.finished(v, attempt, Err(error)),
            Err(payload) => return self.finished(v, attempt, Err(panicked(&*payload))),
        };
        self.in_flight.push(InFlight {
            node: v,
            attempt,
            state: Flight::Running { running, deadline },
        });
    }

    /// Task `v`'s attempt `attempt` ended with `outcome`.
    fn finished(&mut self, v: u32, attempt: u32, outcome: Outcome) {
        let now = self.now;
        let node = &self.graph.nodes[v as usize];
        match outcome {
            Ok(value) => {
                self.values[v as usize] = Some(value);
                self.end(v, Status::Completed, now);
                for &s in self.graph.successors(v) {
                    let missing = &mut self.missing[s as usize];
                    if *missing != NOT_WAITING {
                        *missing -= 1;
                        if *missing == 0 {
                            self.ready[slot(self.graph.kind(s))].push_back(s);
                        }
                    }
                }
            }
            Err(error) if attempt <= node.options.retries => {
                let backoff = node.options.backoff_before(attempt + 1);
                let state = if backoff.is_zero() {
                    Flight::Now
                } else {
                    match timer(backoff) {
                        Ok(sleep) => Flight::Backoff(sleep),
                        Err(no_timer) => return self.fail(v, error.context(no_timer), now),
                    }
                };
                self.in_flight.push(InFlight {
                    node: v,
                    attempt: attempt + 1,
                    state,
                });
            }
            Err(error) => self.fail(v, error, now),
        }
    }

    /// Task `v` failed for good: its descendants are skipped; with fail-fast, the run stops.
    fn fail(&mut self, v: u32, error: anyhow::Error, now: Instant) {
        self.tasks[v as usize].error = Some(Arc::new(error));
        self.end(v, Status::Failed, now);
        let mut stack = core::mem::take(&mut self.stack);
        stack.extend_from_slice(self.graph.successors(v));
        while let Some(s) = stack.pop() {
            // A user of a failed task has an input missing for good: it is waiting, or not
            // started by this run, or already skipped.
            let missing = &mut self.missing[s as usize];
            if *missing != NOT_WAITING {
                *missing = NOT_WAITING;
                let task = &mut self.tasks[s as usize];
                task.phase = Phase::Done(Status::Skipped);
                task.skipped_because = Some(v);
                task.end = Some(now);
                stack.extend_from_slice(self.graph.successors(s));
            }
        }
        self.stack = stack;
        if self.fail_fast {
            self.stop(now);
        }
    }

    /// Cancels every task in flight and starts no other.
    fn stop(&mut self, now: Instant) {
        for in_flight in &self.in_flight {
            let task = &mut self.tasks[in_flight.node as usize];
            task.phase = Phase::Done(Status::Cancelled);
            task.end = Some(now);
        }
        // Drops the tasks' futures; blocking closures that have not started are aborted.
        self.in_flight.clear();
        self.ready = [VecDeque::new(), VecDeque::new()];
        self.busy = [0, 0];
    }

    fn end(&mut self, v: u32, status: Status, now: Instant) {
        let task = &mut self.tasks[v as usize];
        task.phase = Phase::Done(status);
        task.end = Some(now);
        self.busy[slot(self.graph.kind(v))] -= 1;
    }

    fn finish(&mut self) -> Report {
        Report {
            graph: self.graph.clone(),
            run: self.run,
            values: core::mem::take(&mut self.values).into_boxed_slice(),
            tasks: core::mem::take(&mut self.tasks).into_boxed_slice(),
            started: self.started.expect("the run started"),
            finished: Instant::now(),
        }
    }
}

/// A tokio timer that fires `after` from now (far in the future for a huge `after`), or the
/// error of making one outside a tokio runtime with time enabled (tokio panics there).
fn timer(after: Duration) -> Result<Pin<Box<Sleep>>, anyhow::Error> {
    catch_unwind(|| Box::pin(sleep(after))).map_err(|payload| panicked(&*payload))
}

/// The error of an attempt that panicked with `payload`.
fn panicked(payload: &(dyn core::any::Any + Send)) -> anyhow::Error {
    Panicked::from_payload(payload).into()
}

/// A task in flight: an attempt running, or the wait before the next one.
struct InFlight {
    node: u32,
    attempt: u32,
    state: Flight,
}

enum Flight {
    /// The attempt, and its deadline with the timeout it stands for.
    Running {
        running: Running,
        deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    },
    /// The backoff before attempt `attempt`.
    Backoff(Pin<Box<Sleep>>),
    /// Attempt `attempt` is due at once.
    Now,
}

enum Event {
    /// The attempt ended.
    Finished(Outcome),
    /// Time for the attempt.
    Retry,
}

impl Future for InFlight {
    type Output = (u32, u32, Event);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let event = match &mut this.state {
            Flight::Running { running, deadline } => {
                match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *running).poll(cx))) {
                    Ok(Poll::Ready(outcome)) => Event::Finished(outcome),
                    Err(payload) => Event::Finished(Err(panicked(&*payload))),
                    Ok(Poll::Pending) => match deadline {
                        Some((sleep, after)) => {
                            core::task::ready!(sleep.as_mut().poll(cx));
                            Event::Finished(Err(TimedOut { after: *after }.into()))
                        }
                        None => return Poll::Pending,
                    },
                }
            }
            Flight::Backoff(sleep) => {
                core::task::ready!(sleep.as_mut().poll(cx));
                Event::Retry
            }
            Flight::Now => Event::Retry,
        };
        Poll::Ready((this.node, this.attempt, event))
    }
}
