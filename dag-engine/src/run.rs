//! The scheduler: runs a [`Graph`], event by event, and produces its [`Report`].
//!
//! It keeps, per task, the number of inputs still missing; the graph keeps, per node, the
//! tasks that use it. When a task completes, each user's count goes down by one, and a user
//! whose count reaches zero joins the ready queue of its executor. Ready tasks start as long
//! as their executor has room. A failure walks the failed task's descendants once and skips
//! them. So a run costs O(tasks + edges), and a task starts in the same poll its last input
//! arrives. Every change of a task's state goes through [`RunState::transition`]; the
//! scheduler decides, the state records and tells.
//!
//! Attempts are started by their executor and polled here: once when they start, and if that
//! first poll does not finish them, in a `FuturesUnordered`, which polls each once more when
//! it enters and then only the ones that woke. Each in-flight item also carries its attempt's
//! timeout, or the backoff before a retry, so the scheduler never polls on an interval.
//! Every poll of a task runs inside `catch_unwind`: a panic fails the attempt.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::time::{sleep, sleep_until, Instant, Sleep};

use crate::error::{Cancelled, Panicked, TimedOut};
use crate::event::Events;
use crate::executor::{Inline, Outcome, Running, Value, INLINE};
use crate::graph::{
    index, next_builder_id, push_decimal, Base, Call, Graph, GraphInner, Growing, Node, Spread,
    Work,
};
use crate::grow::{inputs_hash, By, Earlier};
use crate::id::{Attempt, RunKey, Status, TaskState};
use crate::live::RunStatus;
use crate::options::{CancelHandle, Deadline, RunOptions};
use crate::report::Report;
use crate::rules::{Fate, NewName, NewTask, Pending, RuleDef, Rules, Step, View};
use crate::scope::{enter_run, enter_task, scoped, RunInfo};
use crate::state::{Origin, RunState, Transition};

impl<P: Send + Sync + 'static> Graph<P> {
    /// Runs the graph with `param`, with default [`RunOptions`]: the future resolves to the
    /// run's [`Report`] once every task has completed, failed or been skipped.
    ///
    /// Like any future it does nothing until polled; dropping it cancels the run (tasks in
    /// flight are dropped, spawned ones aborted, blocking ones that have not started are not
    /// started), without a report; [`RunOptions::cancel_on`] stops a run with its report.
    /// Runs of one graph are independent: several may go on at once, with different
    /// parameters.
    ///
    /// Inline tasks are polled inside the returned future, so a graph of them works on any
    /// executor; other placements, timeouts and retry backoffs need a tokio runtime (with
    /// time enabled).
    pub fn run(&self, param: P) -> Run {
        self.run_with(param, RunOptions::new())
    }

    /// Runs the graph with `param` and `options`; see [`run`](Graph::run).
    pub fn run_with(&self, param: P, options: RunOptions) -> Run {
        Run::new(self.inner.clone(), Arc::new(param), options, None)
    }
}

/// What a planned run starts from ([`Plan`](crate::Plan)): which tasks run, and the values of
/// those that do not.
pub(crate) struct Start {
    pub runs: Vec<bool>,
    pub given: Vec<Option<(Value, Origin)>>,
    /// The values of the tasks the run this one repeats added and completed, by name: a task
    /// added again under one of these names, from the same inputs, by what is unchanged,
    /// takes its value without running.
    pub earlier: HashMap<Box<str>, Earlier>,
    /// The graph's tasks reset, or downstream of a reset or marked task: what they add is
    /// not reused.
    pub dirty: Vec<bool>,
}

/// A run of a [`Graph`]: a future of its [`Report`], from [`Graph::run`].
///
/// Before awaiting it, [`events`](Run::events) gives a stream of its events and
/// [`status`](Run::status) a handle on its live status.
///
/// Dropping it cancels the run: tasks in flight are dropped, spawned tasks aborted, and
/// blocking tasks that have not started on the pool are not started (those already running
/// finish on their thread, unseen).
#[must_use = "futures do nothing unless you `.await` or poll them; dropping this one cancels the run"]
pub struct Run {
    scheduler: Option<Box<Scheduler>>,
}

impl Run {
    pub(crate) fn new(
        graph: Arc<GraphInner>,
        param: Value,
        options: RunOptions,
        start: Option<Start>,
    ) -> Self {
        Self {
            scheduler: Some(Box::new(Scheduler::new(graph, param, options, start))),
        }
    }

    fn scheduler(&mut self, method: &str) -> &mut Scheduler {
        self.scheduler
            .as_mut()
            .unwrap_or_else(|| panic!("`Run::{method}` called after the run finished"))
    }

    /// The key of this run (its report and events carry it too).
    ///
    /// # Panics
    ///
    /// If the run has finished.
    pub fn key(&self) -> &RunKey {
        &self
            .scheduler
            .as_ref()
            .expect("`Run::key` called after the run finished")
            .state
            .key
    }

    /// A stream of this run's events, every one from the moment of the call (so call it
    /// before the run starts to see them all), without a bound; it ends when the run has
    /// finished or is dropped. See [`Event`](crate::Event) for what is guaranteed.
    ///
    /// ```
    /// use dagjoin::runtime::{EventKind, GraphBuilder};
    /// use futures::StreamExt;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut g = GraphBuilder::<()>::new();
    /// let a = g.named("a").add(|| async { 1 }, ());
    /// g.named("b").add(|a: i32| async move { a + 1 }, a);
    /// let mut run = g.build().unwrap().run(());
    /// let events = run.events();
    /// let report = run.await;
    /// let lines: Vec<String> = events.map(|event| event.to_string()).collect().await;
    /// assert_eq!(lines.len(), 2 + 3 + 3); // start, end, and ready/started/completed each
    /// assert_eq!(lines[1], "task `a` is ready");
    /// assert_eq!(lines[6], "task `b` completed in attempt 1");
    /// assert!(matches!(&lines[7][..], l if l.ends_with("finished")));
    /// # let _ = report;
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// If the run has finished.
    pub fn events(&mut self) -> Events {
        let (sender, events) = Events::new();
        self.scheduler("events").state.add_stream(sender);
        events
    }

    /// A handle on this run's live status: a [`Snapshot`](crate::Snapshot) of each task's
    /// state, counts and the elapsed time, taken from any task or thread while the run goes
    /// on.
    ///
    /// ```
    /// use dagjoin::runtime::{GraphBuilder, Status, TaskState};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let mut g = GraphBuilder::<()>::new();
    /// let slow = g.named("slow").add(|| tokio::time::sleep(Duration::from_secs(2)), ());
    /// g.named("quick").add(|| async {}, ());
    /// let mut run = g.build().unwrap().run(());
    /// let status = run.status();
    /// let run = tokio::spawn(run);
    /// tokio::time::sleep(Duration::from_secs(1)).await;
    /// let now = status.snapshot();
    /// assert_eq!(now.state("slow"), Some(TaskState::Running));
    /// assert_eq!(now.done(Status::Completed), 1);
    /// assert_eq!(now.elapsed, Duration::from_secs(1));
    /// run.await.unwrap().check().unwrap();
    /// assert!(status.snapshot().finished);
    /// # let _ = slow;
    /// # });
    /// ```
    ///
    /// # Panics
    ///
    /// If the run has finished.
    pub fn status(&mut self) -> RunStatus {
        self.scheduler("status").state.live()
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
                .field("key", &scheduler.state.key)
                .field("in_flight", &scheduler.in_flight.len())
                .finish_non_exhaustive(),
            None => f.write_str("Run(finished)"),
        }
    }
}

/// Work done per poll of a run (tasks started plus events of tasks in flight) before it yields
/// to its executor.
const BUDGET: usize = 128;

/// The most tasks a run can have: node numbers are `u32`, node 0 is the parameter, and
/// [`NOT_WAITING`] is no count of inputs.
const MAX_TASKS: usize = u32::MAX as usize - 2;

/// [`Scheduler::missing`] of a task that this run does not start.
const NOT_WAITING: u32 = u32::MAX;

struct Scheduler {
    state: RunState,
    /// The run's spans, if a subscriber wants them.
    #[cfg(feature = "tracing")]
    trace: Option<Arc<crate::trace::Trace>>,
    /// What attempts running elsewhere are told about the run.
    info: Arc<RunInfo>,
    /// The most tasks in flight, per executor.
    limits: Box<[usize]>,
    fail_fast: bool,
    /// The most tasks the run may have, added ones included.
    max_tasks: usize,
    /// The cancel handle, and the id this run watches it with.
    cancel: Option<(CancelHandle, u64)>,
    deadline: Option<Deadline>,
    timer: Option<Pin<Box<Sleep>>>,
    /// Why the run's deadline has no timer: every attempt fails with it.
    no_deadline: Option<Box<str>>,
    /// The plan the run starts from (`None`: every task), until it starts.
    plan: Option<Start>,
    /// Per task, its inputs that have no value yet, or [`NOT_WAITING`] for the tasks that
    /// this run does not start (not planned, or skipped). A completion touches only this
    /// compact array for each user, not their whole state.
    missing: Vec<u32>,
    /// Tasks whose inputs are all there, per executor, in the order they became ready.
    ready: Box<[VecDeque<u32>]>,
    /// Tasks started and not finished, per executor.
    busy: Box<[usize]>,
    in_flight: FuturesUnordered<InFlight>,
    /// The clock as of the last time task code ran: tasks started now start at this instant,
    /// tasks that end now end at it. It is read at every poll of the run and after every poll
    /// of task code (an attempt's first poll, each event of the tasks in flight), so a task
    /// that finishes at once costs one clock read.
    now: Instant,
    /// Scratch space for walks over descendants.
    stack: Vec<u32>,
    /// The run's rules and tags.
    rules: Rules,
    /// Whether completions have users beyond the graph's edges (the run added tasks, or has
    /// rules or tags to tell): [`completed_added`](Scheduler::completed_added) then runs.
    growing: bool,
    /// The added tasks waiting for each input that had no value when they were added.
    waiters: Waiters,
    /// See [`Start::earlier`].
    earlier: HashMap<Box<str>, Earlier>,
    /// Per node, whether what it adds may reuse values of the run this one repeats (for the
    /// graph's own, that it is not dirty: see [`Start::dirty`]); empty for a first run.
    reusable: Vec<bool>,
    /// Whether the run was stopped: rules no longer fire.
    stopped: bool,
}

impl Scheduler {
    fn new(
        graph: Arc<GraphInner>,
        param: Value,
        options: RunOptions,
        start: Option<Start>,
    ) -> Self {
        let executors = graph.executors.len();
        let limits = graph
            .executors
            .iter()
            .enumerate()
            .map(|(i, executor)| {
                let given = match i {
                    0 => options.max_in_flight,
                    1 => options.max_blocking,
                    2 => options.max_spawned,
                    _ => None,
                };
                let named = options
                    .limits
                    .iter()
                    .filter(|(name, _)| name == executor.name())
                    .map(|&(_, limit)| limit)
                    .min();
                [given, named, executor.max_in_flight()]
                    .into_iter()
                    .flatten()
                    .min()
                    .map_or(usize::MAX, |limit| limit.max(1))
            })
            .collect();
        let key = options.run_key.unwrap_or_else(RunKey::generate);
        #[allow(unused_mut, reason = "only with the progress feature")]
        let mut observers = options.observers;
        #[cfg(feature = "progress")]
        observers.extend(options.progress.iter().map(|bar| bar.watch(&graph)));
        #[cfg(feature = "tracing")]
        let (trace, observers) = {
            let trace = crate::trace::Trace::new(&key, graph.len() - 1);
            if let Some(trace) = &trace {
                let trace = trace.clone();
                // First, so the span of an attempt exists before other observers hear of it.
                observers.insert(
                    0,
                    Arc::new(move |event: &crate::Event<'_>| trace.observe(event)),
                );
            }
            (trace, observers)
        };
        let state = RunState::new(graph.clone(), key.clone(), param, observers);
        Self {
            info: Arc::new(RunInfo::new(key, graph)),
            #[cfg(feature = "tracing")]
            trace,
            state,
            limits,
            fail_fast: options.fail_fast,
            max_tasks: options.max_tasks.unwrap_or(usize::MAX).min(MAX_TASKS),
            cancel: options.cancel.map(|handle| {
                let id = handle.watch();
                (handle, id)
            }),
            deadline: options.deadline,
            timer: None,
            no_deadline: None,
            plan: start,
            missing: Vec::new(),
            ready: (0..executors).map(|_| VecDeque::new()).collect(),
            busy: vec![0; executors].into_boxed_slice(),
            in_flight: FuturesUnordered::new(),
            now: Instant::now(),
            stack: Vec::new(),
            rules: Rules::default(),
            growing: false,
            waiters: Waiters::default(),
            earlier: HashMap::new(),
            reusable: Vec::new(),
            stopped: false,
        }
    }

    /// The run starts: its plan is applied, the tasks without missing inputs are ready.
    fn begin(&mut self, start: Option<Start>) {
        let now = self.now;
        self.state.start(now);
        let graph = self.info.graph.clone();
        let n = graph.len();
        if let Some(growing) = &graph.growth {
            self.watch_growth(growing);
        }
        match start {
            None => {
                self.missing = graph.initial_missing.to_vec();
                for v in 1..n {
                    if self.missing[v] == 0 {
                        self.ready(index(v));
                    }
                }
            }
            Some(Start {
                runs,
                given,
                earlier,
                dirty,
            }) => {
                if !earlier.is_empty() {
                    self.earlier = earlier;
                    self.reusable = dirty.iter().map(|&dirty| !dirty).collect();
                }
                self.missing = vec![NOT_WAITING; n];
                for (v, given) in given.into_iter().enumerate().skip(1) {
                    if let Some((value, origin)) = given {
                        self.state
                            .transition(index(v), Transition::Given(value, origin), now);
                    }
                }
                for (v, runs) in runs.iter().enumerate().skip(1) {
                    if *runs {
                        let values = &self.state.values;
                        self.missing[v] = index(
                            graph
                                .deps(index(v))
                                .iter()
                                .filter(|&&d| values[d as usize].is_none())
                                .count(),
                        );
                        if self.missing[v] == 0 {
                            self.ready(index(v));
                        }
                    }
                }
            }
        }
        if let Some(deadline) = self.deadline {
            let at = match deadline {
                Deadline::At(at) => at,
                Deadline::After(after) => now.checked_add(after).unwrap_or_else(far_future),
            };
            match timer_at(at) {
                Ok(timer) => self.timer = Some(timer),
                // Without a timer the run cannot keep its deadline: its tasks fail, saying
                // why, rather than run without it.
                Err(error) => {
                    let error = error.context("the run has a deadline");
                    self.no_deadline = Some(format!("{error:#}").into());
                }
            }
        }
    }

    /// Task `v` has all its inputs.
    #[inline]
    fn ready(&mut self, v: u32) {
        make_ready(&mut self.state, &mut self.ready, v, self.now);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Report> {
        let _run = enter_run(&self.info);
        self.now = Instant::now();
        if self.state.started.is_none() {
            let plan = self.plan.take();
            self.begin(plan);
        }
        if self.stopped_from_outside(cx) {
            self.stop(self.now);
        }
        let mut budget = BUDGET;
        while self.launch(cx, &mut budget) {
            if self.in_flight.is_empty() {
                if self.quiesce() {
                    continue;
                }
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
                        Wake::Finished(outcome) => self.finished(v, attempt, outcome),
                        Wake::Retry => self.attempt(v, attempt, cx),
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

    /// Whether the run's cancel handle was cancelled or its deadline passed.
    fn stopped_from_outside(&mut self, cx: &mut Context<'_>) -> bool {
        let cancelled = self
            .cancel
            .as_ref()
            .is_some_and(|(handle, id)| handle.poll_cancelled(*id, cx.waker()));
        let late = self
            .timer
            .as_mut()
            .is_some_and(|timer| timer.as_mut().poll(cx).is_ready());
        cancelled || late
    }

    /// Starts ready tasks while their executor has room, each start taking one unit of
    /// `budget`; `false` if the budget ran out first.
    ///
    /// A task that finishes in its first poll may make tasks of any executor ready, so this
    /// goes on until a pass over all of them starts nothing.
    fn launch(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> bool {
        loop {
            if self.state.watch {
                self.settle();
            }
            let mut started = false;
            for executor in 0..self.ready.len() {
                while self.busy[executor] < self.limits[executor] {
                    let Some(&v) = self.ready[executor].front() else {
                        break;
                    };
                    if *budget == 0 {
                        return false;
                    }
                    *budget -= 1;
                    self.ready[executor].pop_front();
                    started = true;
                    self.busy[executor] += 1;
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
        match &self.state.node(v).work {
            Some(Work::Spread(spread)) => {
                let spread = spread.clone();
                return self.spread(v, &spread);
            }
            Some(Work::Grow(step)) => {
                let step = step
                    .clone()
                    .downcast::<Step>()
                    .expect("a growth step's work is a `Step`");
                return self.grow(v, &step);
            }
            _ => {}
        }
        self.state
            .transition(v, Transition::Started { attempt }, self.now);
        let graph = &*self.info.graph;
        let node = self.state.node(v);
        let work = node.work.as_ref().expect("tasks have a function");
        if let Some(error) = &self.no_deadline {
            let error = anyhow::Error::msg(error.clone());
            return self.fail(v, error, self.now);
        }
        // The timer starts before the first poll: the timeout counts from there, and without
        // a timer (no tokio runtime) the attempt fails before its task runs at all, for good:
        // a retry would fail the same way.
        let deadline = match node.options.timeout.map(|after| (timer(after), after)) {
            None => None,
            Some((Ok(timer), after)) => Some((timer, after)),
            Some((Err(error), after)) => {
                let error = error.context(format!("the task has a timeout of {after:?}"));
                return self.fail(v, error, self.now);
            }
        };
        let info = &self.info;
        let state = &self.state;
        let values = &self.state.values;
        #[cfg(feature = "tracing")]
        let trace = &self.trace;
        let started = catch_unwind(AssertUnwindSafe(|| {
            let _task = enter_task(v, attempt);
            let call = Call {
                graph: &info.graph,
                added: &state.added,
                node: v,
                deps: state.deps(v),
                values,
            };
            let job = work.call(call)?;
            #[cfg(feature = "tracing")]
            let job = match trace {
                Some(trace) => trace.instrument(v, job),
                None => job,
            };
            let mut running = if node.executor == INLINE {
                // Polled right here: no call through the trait object, no wrapper to mark
                // the attempt (this poll marks it).
                Inline::polled(job)
            } else {
                let key = Attempt {
                    run: &info.key,
                    task: state.name(v),
                    number: attempt,
                };
                let job = scoped(job, info.clone(), v, attempt);
                graph.executors.get(state.placement(v)).start(key, job)?
            };
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
        match outcome {
            Ok(value) => {
                self.end(v);
                self.completed(v, value, now);
            }
            Err(error) if error.is::<Cancelled>() => {
                self.end(v);
                self.state.transition(v, Transition::Cancelled, now);
                self.skip_descendants(v, now);
            }
            Err(error) if attempt <= self.state.node(v).options.retries => {
                let backoff = self.state.node(v).options.backoff_before(attempt + 1);
                let state = if backoff.is_zero() {
                    Flight::Now
                } else {
                    match timer(backoff) {
                        Ok(sleep) => Flight::Backoff(sleep),
                        Err(no_timer) => return self.fail(v, error.context(no_timer), now),
                    }
                };
                self.state
                    .transition(v, Transition::Retrying { error, backoff }, now);
                self.in_flight.push(InFlight {
                    node: v,
                    attempt: attempt + 1,
                    state,
                });
            }
            Err(error) => self.fail(v, error, now),
        }
    }

    /// Task `v` has its value: its users that have all their inputs now are ready.
    #[allow(
        clippy::inline_always,
        reason = "measured: out of line, a completion costs about 45 more instructions"
    )]
    #[inline(always)]
    fn completed(&mut self, v: u32, value: Value, now: Instant) {
        self.state.transition(v, Transition::Completed(value), now);
        let Self {
            info,
            missing,
            state,
            ready,
            ..
        } = self;
        let graph = &*info.graph;
        if !state.added.has(v) {
            for &s in graph.successors(v) {
                let missing = &mut missing[s as usize];
                if *missing != NOT_WAITING {
                    *missing -= 1;
                    if *missing == 0 {
                        make_ready(state, ready, s, now);
                    }
                }
            }
        }
        if self.growing {
            self.completed_added(v, now);
        }
    }

    /// The users task `v` has beyond the graph's edges (tasks the run added, a map) after it
    /// completed: out of line, so that a run that adds nothing does not carry it.
    #[inline(never)]
    fn completed_added(&mut self, v: u32, now: Instant) {
        let mut next = self.waiters.take(v);
        while let Some((s, after)) = self.waiters.next(next) {
            next = after;
            {
                let missing = &mut self.missing[s as usize];
                if *missing != NOT_WAITING {
                    *missing -= 1;
                    if *missing == 0 {
                        make_ready(&mut self.state, &mut self.ready, s, now);
                    }
                }
            }
        }
        let Some(map) = self.state.added.feeds(v) else {
            return;
        };
        let missing = &mut self.missing[map as usize];
        if *missing != NOT_WAITING {
            *missing -= 1;
            if *missing == 0 {
                self.gather(map, now);
            }
        }
    }

    /// Map task `v` spreads over its collection: one task per item, ready at once (the
    /// collection is there), and `v` waits for them without room on its executor. It starts
    /// only when they are all done, and completes at once with their values; if one of them
    /// fails, it is skipped like any other user of a failed task. A collection it cannot
    /// spread over fails it.
    fn spread(&mut self, v: u32, spread: &Arc<dyn Spread>) {
        let now = self.now;
        self.end(v);
        let source = self.state.deps(v)[0];
        let value = self.state.values[source as usize]
            .clone()
            .expect("a map starts once its collection is there");
        let width = match spread.width(&value) {
            Ok(width) => width,
            Err(error) => return self.spread_failed(v, error, now),
        };
        let tasks = self.state.records.len() - 1;
        if width > self.max_tasks.saturating_sub(tasks) {
            let error = anyhow::anyhow!(
                "its {width} items would make the run's {tasks} tasks more than its limit of {} \
                 (RunOptions::max_tasks)",
                self.max_tasks
            );
            return self.spread_failed(v, error, now);
        }
        let first = index(self.state.records.len());
        let node = self.state.node(v);
        let item = Node {
            work: Some(spread.item(source, first)),
            executor: node.executor,
            options: node.options,
            output: spread.item_output(),
        };
        self.growing = true;
        let names_from = self.state.added.text_len();
        let map_name = self.state.name(v).to_owned();
        if let Some(error) = self.clash(&map_name, width) {
            return self.spread_failed(v, error, now);
        }
        let item = self.state.added.template(item);
        // `name[i]`: the map's name, brackets and up to 10 digits.
        self.state.reserve(width, width * (map_name.len() + 12));
        self.missing.reserve(width);
        let mut waiting = width;
        // Items are reused only if the map may reuse and its collection is unchanged.
        let reuse = self.may_reuse(v) && self.unchanged(source);
        for i in 0..width {
            let s = self.state.add(
                item,
                |text| item_name(text, &map_name, i),
                &[source],
                By::Task(v),
                v,
                now,
            );
            self.reusable_as(s, false);
            if let Some(value) = self.reused(s, reuse) {
                // The run this one repeats completed the item already, from the same list.
                self.missing.push(NOT_WAITING);
                self.state
                    .transition(s, Transition::Given(value, Origin::Reused), now);
                waiting -= 1;
                continue;
            }
            self.missing.push(0);
            make_ready(&mut self.state, &mut self.ready, s, now);
        }
        let (text, spans) = self.state.added.names_since(names_from, first);
        self.info.add_names(text, spans);
        self.missing[v as usize] = index(waiting);
        self.state.spread(v, first, index(width));
        if waiting == 0 {
            self.gather(v, now);
        }
    }

    /// The graph has tags, declared tags or rules: the run watches its tasks for them.
    fn watch_growth(&mut self, growing: &Growing) {
        self.state.watch = true;
        self.growing = true;
        for (v, tag) in &growing.tags {
            self.rules.tag_task(*v, tag);
        }
        for (v, tag) in &growing.adds {
            self.rules.source(*v, core::slice::from_ref(tag));
        }
        for rule in &growing.rules {
            let rule = rule
                .clone()
                .downcast::<RuleDef>()
                .expect("a graph's rules are `RuleDef`s");
            self.register(rule);
        }
    }

    /// Registers rule `def` for the rest of the run; a rule naming a task the run does not
    /// have is failed at once.
    fn register(&mut self, def: Arc<RuleDef>) {
        let state = &self.state;
        let graph = &*self.info.graph;
        let task_named =
            |name: &str| graph.lookup(name).is_some() || state.added.lookup(name).is_some();
        let result = self.rules.register(
            def.clone(),
            |task| task.find(graph, &state.added),
            |v| state.records[v as usize].state,
            |v| state.name(v).to_owned(),
            &task_named,
        );
        if let Err(problem) = result {
            self.rules
                .failed(def, anyhow::anyhow!(problem), &task_named);
        }
    }

    /// Growth step `v` runs: it gathers what to add, which is added if all of it can be, and
    /// completes with its value; otherwise it fails and adds nothing.
    fn grow(&mut self, v: u32, step: &Step) {
        let now = self.now;
        self.end(v);
        self.state
            .transition(v, Transition::Started { attempt: 1 }, now);
        let mut pending = Pending::new(next_builder_id(), index(self.state.records.len()));
        let adds = self.rules.declared(v);
        let view = View {
            graph: &self.info.graph,
            state: &self.state,
            rules: &self.rules,
            adder: self.state.name(v),
            adds: &adds,
        };
        let call = Call {
            graph: &self.info.graph,
            added: &self.state.added,
            node: v,
            deps: self.state.deps(v),
            values: &self.state.values,
        };
        let grown = catch_unwind(AssertUnwindSafe(|| {
            let _task = enter_task(v, 1);
            (step.0)(call, &mut pending, &view)
        }));
        self.now = Instant::now();
        let now = self.now;
        let grown = match grown {
            Ok(Ok(value)) => self.commit(By::Task(v), pending, now).map(|()| value),
            Ok(Err(error)) => Err(error),
            Err(payload) => Err(panicked(&*payload)),
        };
        match grown {
            Ok(value) => self.completed(v, value, now),
            Err(error) => self.fail_here(v, error, now),
        }
    }

    /// Adds what a growth step or rule asked for, if all of it can be added: its tasks (ready
    /// at once if their inputs are there, skipped at once if one failed) and its rules.
    fn commit(&mut self, by: By<'_>, pending: Pending, now: Instant) -> Result<(), anyhow::Error> {
        let Pending {
            id,
            first,
            tasks,
            deps,
            rules,
            read,
            mut problems,
            ..
        } = pending;
        let total = self.state.records.len() - 1;
        if tasks.len() > self.max_tasks.saturating_sub(total) {
            problems.push(format!(
                "its {} tasks would make the run's {total} tasks more than its limit of {} \
                 (RunOptions::max_tasks)",
                tasks.len(),
                self.max_tasks
            ));
        }
        // What it adds may declare only tags it declared itself: those cannot have settled.
        let declared = match by {
            By::Task(v) => self.rules.declared(v),
            By::Rule(r, _) => self.rules.all[r as usize].def.adds.to_vec(),
        };
        for tag in tasks
            .iter()
            .flat_map(NewTask::adds)
            .chain(rules.iter().flat_map(|rule| &*rule.adds))
        {
            if !declared.contains(tag) {
                problems.push(format!(
                    "what it adds declares tag `{tag}`, which it did not declare itself: \
                     declare it with `adds(\"{tag}\")`"
                ));
            }
        }
        // Its tasks may reuse the values of the run this one repeats only if it is a growth step
        // that may reuse, its inputs are unchanged, and it read nothing else (what it read
        // then may not be what it reads now). A rule's tasks never do: what a rule adds
        // depends on when it fired.
        let reuse = match by {
            By::Task(v) => {
                self.may_reuse(v)
                    && !read.get()
                    && self.state.deps(v).iter().all(|&d| self.unchanged(d))
            }
            By::Rule(..) => false,
        };
        let names = self.check_names(by, &tasks, &mut problems);
        let derived = tasks
            .iter()
            .filter(|task| matches!(task.name, NewName::Derived(..)))
            .count();
        let adder_name = match by {
            By::Task(v) => self.state.name(v).to_owned(),
            By::Rule(_, name) => name.to_owned(),
        };
        if !problems.is_empty() {
            let mut message = String::from("it cannot grow the graph: ");
            message.push_str(&problems.join("; "));
            return Err(anyhow::Error::msg(message));
        }
        self.growing = true;
        self.state.watch |= tasks.iter().any(|task| task.tagging.is_some()) || !rules.is_empty();
        let count = index(tasks.len());
        let names_from = self.state.added.text_len();
        self.state.reserve(tasks.len(), names.0.len());
        self.missing.reserve(tasks.len());
        let (text, spans) = &names;
        for (task, &(start, end)) in tasks.into_iter().zip(spans) {
            let name = &text[start as usize..end as usize];
            let inputs = &deps[task.deps.start as usize..task.deps.end as usize];
            let given = matches!(task.name, NewName::Given(_));
            let s = self.add_grown(task, name, inputs, by, reuse, now);
            if given {
                self.state.added.index_given(s);
            }
        }
        let rule = match by {
            By::Rule(rule, _) => Some(rule),
            By::Task(_) => None,
        };
        self.state.added.add_step(
            id,
            first,
            count,
            rule,
            (derived > 0).then_some(adder_name.as_str()),
        );
        let (text, spans) = self.state.added.names_since(names_from, first);
        self.info.add_names(text, spans);
        for rule in rules {
            self.register(rule);
        }
        Ok(())
    }

    /// Writes the names of `tasks` (added by `by`) and checks that no other task has one of
    /// them, each problem in `problems`: the names, one after the other, and their spans.
    fn check_names(
        &self,
        by: By<'_>,
        tasks: &[NewTask],
        problems: &mut Vec<String>,
    ) -> (String, Vec<(u32, u32)>) {
        let adder = match by {
            By::Task(v) => self.state.name(v),
            By::Rule(_, name) => name,
        };
        let (text, spans) = write_names(adder, tasks);
        let graph = &*self.info.graph;
        let run = &self.state.added;
        let name = |k: usize| {
            let (start, end) = spans[k];
            &text[start as usize..end as usize]
        };
        // Derived names differ from each other (each base has its own suffixes), so only given
        // names are checked against the step's own, unless a given one has a `/` as derived
        // ones do. A derived name can be another task's only if that one's name starts like
        // it, up to one of its `/`s: that is checked once per base.
        let slow = tasks
            .iter()
            .any(|task| matches!(&task.name, NewName::Given(name) if name.contains('/')));
        let mut own = crate::graph::NameIndex::default();
        let mut last: Option<(Base, bool)> = None;
        for (k, task) in tasks.iter().enumerate() {
            let this = name(k);
            let (check_own, check_others) = match task.name {
                NewName::Given(_) => (true, true),
                NewName::Derived(base, _) => {
                    let may_clash = match last {
                        Some((last, may_clash)) if last == base => may_clash,
                        _ => {
                            let may_clash = this.match_indices('/').any(|(at, _)| {
                                graph.has_prefix(&this[..at]) || run.has_prefix(&this[..at])
                            });
                            last = Some((base, may_clash));
                            may_clash
                        }
                    };
                    (slow, may_clash)
                }
            };
            let in_step = check_own && {
                let taken = own.get(this, |k| name(k as usize)).is_some();
                if !taken {
                    own.insert(this, index(k), |k| name(k as usize));
                }
                taken
            };
            if in_step
                || (check_others && (graph.lookup(this).is_some() || run.lookup(this).is_some()))
            {
                problems.push(format!(
                    "it adds a task called `{this}`, a name another task has: name it otherwise"
                ));
            }
        }
        (text, spans)
    }

    /// Adds `task`, called `name`, with inputs `deps`, on behalf of `by`: ready if its inputs
    /// are there, skipped if one of them failed, given its value if the run this one repeats
    /// completed it.
    fn add_grown(
        &mut self,
        task: NewTask,
        name: &str,
        deps: &[u32],
        by: By<'_>,
        reuse: bool,
        now: Instant,
    ) -> u32 {
        let NewTask { node, tagging, .. } = task;
        let template = self.state.added.template(node);
        let s = self
            .state
            .add(template, |text| text.push_str(name), deps, by, 0, now);
        self.reusable_as(s, reuse);
        let tagging = tagging.as_deref();
        for tag in tagging.map_or(&[][..], |tagging| &tagging.tags) {
            self.rules.tag_task(s, tag);
        }
        if let Some(adds) = tagging
            .map(|tagging| &tagging.adds)
            .filter(|adds| !adds.is_empty())
        {
            self.rules.source(s, adds);
        }
        self.missing.push(NOT_WAITING);
        if let Some(value) = self.reused(s, reuse) {
            self.state
                .transition(s, Transition::Given(value, Origin::Reused), now);
            return s;
        }
        let mut missing = 0;
        let mut failed = None;
        for &d in deps {
            match self.state.records[d as usize].state {
                TaskState::Done(Status::Completed) => {}
                TaskState::Done(_) => failed = failed.or(Some(d)),
                _ => {
                    missing += 1;
                    self.waiters.push(d, s);
                }
            }
        }
        if let Some(because) = failed {
            self.state
                .transition(s, Transition::Skipped { because }, now);
            // The inputs it waits for find it skipped, not waiting.
            return s;
        }
        self.missing[s as usize] = missing;
        if missing == 0 {
            make_ready(&mut self.state, &mut self.ready, s, now);
        }
        s
    }

    /// The rules and tags hear of the tasks done since they last did; the rules whose
    /// conditions now hold fire, in the order they came to hold.
    fn settle(&mut self) {
        loop {
            let settled = core::mem::take(&mut self.state.settled);
            for &v in &settled {
                let status = self.state.records[v as usize].status();
                let state = &self.state;
                self.rules.done(v, status, |v| state.name(v).to_owned());
            }
            // Keep the queue's room.
            let mut settled = settled;
            settled.clear();
            if self.state.settled.is_empty() {
                self.state.settled = settled;
            }
            self.rules.settle();
            let Some(r) = self.rules.due.pop_front() else {
                if self.state.settled.is_empty() {
                    return;
                }
                continue;
            };
            self.fire(r);
        }
    }

    /// Rule `r`'s conditions hold: its body runs, and what it asks for is added if all of it
    /// can be; otherwise the rule failed.
    fn fire(&mut self, r: usize) {
        let def = self.rules.all[r].def.clone();
        let name = self.rules.all[r].name.clone();
        if self.stopped {
            let why = "the run was stopped before it could fire".into();
            return self.rules.fired(r, Fate::Never(why));
        }
        let mut pending = Pending::new(next_builder_id(), index(self.state.records.len()));
        let view = View {
            graph: &self.info.graph,
            state: &self.state,
            rules: &self.rules,
            adder: &name,
            adds: &def.adds,
        };
        let body = catch_unwind(AssertUnwindSafe(|| (def.body)(&mut pending, &view)));
        self.now = Instant::now();
        let now = self.now;
        let rule = By::Rule(index(r), &name);
        let fate = match body {
            Ok(Ok(())) => match self.commit(rule, pending, now) {
                Ok(()) => Fate::Fired,
                Err(error) => Fate::Failed(Arc::new(error)),
            },
            Ok(Err(error)) => Fate::Failed(Arc::new(error)),
            Err(payload) => Fate::Failed(Arc::new(panicked(&*payload))),
        };
        self.rules.fired(r, fate);
    }

    /// Nothing runs and nothing is ready: rules that wait for tasks can never fire now, and
    /// giving up on them may settle tags that other rules wait for. Whether that made
    /// something ready (the run goes on).
    fn quiesce(&mut self) -> bool {
        if !self.rules.waiting() {
            return false;
        }
        for all in [false, true] {
            let state = &self.state;
            self.rules.give_up(all, |v| state.name(v).to_owned());
            self.settle();
            if self.ready.iter().any(|queue| !queue.is_empty()) {
                return true;
            }
        }
        false
    }

    /// The value added task `v` had in the run this one repeats, if it completed there and
    /// may be reused: `reuse` says whether what added it may reuse, and the task must have
    /// the same inputs, unchanged, and a value of its type. A growth step is never reused: it
    /// runs again to add its tasks again.
    fn reused(&self, v: u32, reuse: bool) -> Option<Value> {
        if !reuse || self.earlier.is_empty() {
            return None;
        }
        let node = self.state.node(v);
        let deps = self.state.deps(v);
        if matches!(node.work, Some(Work::Grow(_))) || !deps.iter().all(|&d| self.unchanged(d)) {
            return None;
        }
        let earlier = self.earlier.get(self.state.name(v))?;
        if earlier.inputs != inputs_hash(deps.iter().map(|&d| self.state.name(d))) {
            return None;
        }
        let inner: &(dyn core::any::Any + Send + Sync) = &*earlier.value;
        (inner.type_id() == node.output.id).then(|| earlier.value.clone())
    }

    /// Whether node `v` has the value it had in the run this one repeats (the parameter is
    /// taken as the same, as for the graph's own tasks).
    fn unchanged(&self, v: u32) -> bool {
        v == 0
            || self
                .state
                .records
                .get(v as usize)
                .is_some_and(|record| record.origin == Origin::Reused)
    }

    /// Whether what node `v` adds may reuse values of the run this one repeats.
    fn may_reuse(&self, v: u32) -> bool {
        self.reusable.get(v as usize).copied().unwrap_or(false)
    }

    /// Records whether what added node `v` adds may reuse values (only in a rerun).
    fn reusable_as(&mut self, v: u32, reuse: bool) {
        if !self.earlier.is_empty() {
            self.reusable.resize(v as usize, false);
            self.reusable.push(reuse);
        }
    }

    /// Map task `v` cannot spread: it fails (its one attempt starting and failing at once).
    fn spread_failed(&mut self, v: u32, error: anyhow::Error, now: Instant) {
        self.state
            .transition(v, Transition::Started { attempt: 1 }, now);
        self.fail_here(v, error, now);
    }

    /// Why the items of a map called `map` cannot have their names, if a task of the graph
    /// already has one of them (the graph's names are checked when it is built; items' only
    /// here, and only in a graph with a name that could be an item's).
    fn clash(&self, map: &str, width: usize) -> Option<anyhow::Error> {
        let graph = &*self.info.graph;
        let added = &self.state.added;
        if !graph.has_bracketed_name() && !added.has_bracketed_name() {
            return None;
        }
        let mut name = String::new();
        (0..width).find_map(|i| {
            name.clear();
            item_name(&mut name, map, i);
            let taken = graph.lookup(&name).is_some() || added.lookup(&name).is_some();
            taken.then(|| {
                anyhow::anyhow!(
                    "its item {i} would be called `{name}`, the name of another task: rename \
                     one of them"
                )
            })
        })
    }

    /// Map task `v`'s items all completed: it starts, and completes with their values.
    fn gather(&mut self, v: u32, now: Instant) {
        let Some(Work::Spread(spread)) = self.state.node(v).work.clone() else {
            unreachable!("only maps gather")
        };
        self.state
            .transition(v, Transition::Started { attempt: 1 }, now);
        let values = &self.state.values;
        let mut items = self.state.added.items(v).map(|s| {
            values[s as usize]
                .as_ref()
                .expect("a map gathers once its items completed")
        });
        match spread.gather(&mut items) {
            Ok(value) => self.completed(v, value, now),
            Err(error) => self.fail_here(v, error, now),
        }
    }

    /// Task `v` failed for good: its descendants are skipped; with fail-fast, the run stops.
    fn fail(&mut self, v: u32, error: anyhow::Error, now: Instant) {
        self.end(v);
        self.fail_here(v, error, now);
    }

    /// Task `v`, which takes no room on its executor, failed for good.
    fn fail_here(&mut self, v: u32, error: anyhow::Error, now: Instant) {
        self.state.transition(v, Transition::Failed(error), now);
        self.skip_descendants(v, now);
        if self.fail_fast {
            self.stop(now);
        }
    }

    /// Skips every task that depends on `v`, directly or not, and has not started.
    fn skip_descendants(&mut self, v: u32, now: Instant) {
        let Self {
            info,
            missing,
            state,
            stack,
            waiters,
            ..
        } = self;
        let graph = &*info.graph;
        let mut users = |state: &RunState, v: u32, stack: &mut Vec<u32>| {
            if !state.added.has(v) {
                stack.extend_from_slice(graph.successors(v));
            }
            stack.extend(state.added.feeds(v));
            let mut next = waiters.take(v);
            while let Some((s, after)) = waiters.next(next) {
                stack.push(s);
                next = after;
            }
        };
        users(state, v, stack);
        while let Some(s) = stack.pop() {
            // A user of a failed task has an input missing for good: it is waiting, or not
            // started by this run, or already skipped.
            let missing = &mut missing[s as usize];
            if *missing != NOT_WAITING {
                *missing = NOT_WAITING;
                state.transition(s, Transition::Skipped { because: v }, now);
                users(state, s, stack);
            }
        }
    }

    /// Cancels every task in flight and starts no other.
    fn stop(&mut self, now: Instant) {
        self.stopped = true;
        let in_flight = core::mem::take(&mut self.in_flight);
        for task in &in_flight {
            self.state.transition(task.node, Transition::Cancelled, now);
        }
        // Drops the tasks' futures, aborts spawned tasks; blocking closures that have not
        // started are not started.
        drop(in_flight);
        for queue in &mut *self.ready {
            queue.clear();
        }
        self.busy.fill(0);
        // Ready and waiting tasks get no further: they did not run.
        self.missing.fill(NOT_WAITING);
    }

    /// Task `v` no longer takes room on its executor.
    fn end(&mut self, v: u32) {
        let placement = self.state.placement(v);
        self.busy[usize::from(placement)] -= 1;
    }

    fn finish(&mut self) -> Report {
        let finished = Instant::now();
        self.state.finish(finished);
        let state = &mut self.state;
        let added = core::mem::take(&mut state.added);
        Report {
            base: self.info.graph.clone(),
            added: (!added.is_empty()).then(|| Box::new(added)),
            rules: self.rules.records(),
            whole: std::sync::OnceLock::new(),
            key: state.key.clone(),
            values: core::mem::take(&mut state.values).into_boxed_slice(),
            records: core::mem::take(&mut state.records).into_boxed_slice(),
            started: state.started.expect("the run started"),
            finished,
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some((handle, id)) = &self.cancel {
            handle.unwatch(*id);
        }
        // A run that finished told its live status so; one dropped before says it here.
        self.state.dropped();
    }
}

/// Task `v` has all its inputs: it joins the ready queue of its executor. A free function, so
/// that a completion's walk over its users can call it while it borrows the graph and the
/// counts of missing inputs.
#[inline]
fn make_ready(state: &mut RunState, ready: &mut [VecDeque<u32>], v: u32, now: Instant) {
    let placement = state.placement(v);
    state.transition(v, Transition::Ready, now);
    ready[usize::from(placement)].push_back(v);
}

/// The added tasks waiting for each input: per node, a list threaded through one array, so
/// that an input with many waiting users costs no allocation of its own.
#[derive(Default)]
struct Waiters {
    /// Per node, its first edge (`NONE`: none).
    head: Vec<u32>,
    /// Each edge: the waiting task, and the next edge of the same input.
    edges: Vec<(u32, u32)>,
}

impl Waiters {
    const NONE: u32 = u32::MAX;

    /// Task `user` waits for `input`.
    fn push(&mut self, input: u32, user: u32) {
        let at = input as usize;
        if at >= self.head.len() {
            self.head.resize(at + 1, Self::NONE);
        }
        self.edges.push((user, self.head[at]));
        self.head[at] = index(self.edges.len() - 1);
    }

    /// The first edge of the tasks waiting for `input`, which no longer has any.
    fn take(&mut self, input: u32) -> u32 {
        self.head
            .get_mut(input as usize)
            .map_or(Self::NONE, |head| core::mem::replace(head, Self::NONE))
    }

    /// The task of edge `edge` and the next edge, if `edge` is one.
    fn next(&self, edge: u32) -> Option<(u32, u32)> {
        self.edges.get(edge as usize).copied()
    }
}

/// The names of `tasks`, added by `adder`, one after the other, and their spans. Tasks added in
/// a loop share their base: its text is written once and copied.
fn write_names(adder: &str, tasks: &[NewTask]) -> (String, Vec<(u32, u32)>) {
    let mut text = String::new();
    let mut spans = Vec::with_capacity(tasks.len());
    let mut last: Option<(Base, usize, usize)> = None;
    for task in tasks {
        let start = text.len();
        match (&task.name, last) {
            (NewName::Derived(base, suffix), Some((last, from, to))) if *base == last => {
                text.extend_from_within(from..to);
                if *suffix > 1 {
                    text.push('#');
                    push_decimal(&mut text, *suffix);
                }
            }
            (NewName::Derived(base, suffix), _) => {
                Pending::write_name(&mut text, adder, &NewName::Derived(*base, 1));
                last = Some((*base, start, text.len()));
                if *suffix > 1 {
                    text.push('#');
                    push_decimal(&mut text, *suffix);
                }
            }
            (name, _) => Pending::write_name(&mut text, adder, name),
        }
        spans.push((index(start), index(text.len())));
    }
    (text, spans)
}

/// Writes the name of item `i` of the map called `map`: `map[i]`.
fn item_name(text: &mut String, map: &str, i: usize) {
    text.push_str(map);
    text.push('[');
    push_decimal(text, index(i));
    text.push(']');
}

/// An instant far enough away to stand for never.
fn far_future() -> Instant {
    Instant::now() + Duration::from_hours(24 * 365 * 30)
}

/// A tokio timer that fires `after` from now (far in the future for a huge `after`), or the
/// error of making one outside a tokio runtime with time enabled.
fn timer(after: Duration) -> Result<Pin<Box<Sleep>>, anyhow::Error> {
    make_timer(|| sleep(after))
}

/// A tokio timer that fires at `at`; see [`timer`].
fn timer_at(at: Instant) -> Result<Pin<Box<Sleep>>, anyhow::Error> {
    make_timer(|| sleep_until(at))
}

fn make_timer(sleep: impl FnOnce() -> Sleep) -> Result<Pin<Box<Sleep>>, anyhow::Error> {
    const NO_TIMER: &str = "it needs tokio's timer: run the graph inside a tokio runtime with \
                            time enabled";
    if tokio::runtime::Handle::try_current().is_err() {
        anyhow::bail!(NO_TIMER);
    }
    // A runtime without time panics when asked for a timer.
    catch_unwind(AssertUnwindSafe(|| Box::pin(sleep())))
        .map_err(|payload| panicked(&*payload).context(NO_TIMER))
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

enum Wake {
    /// The attempt ended.
    Finished(Outcome),
    /// Time for the attempt.
    Retry,
}

impl Future for InFlight {
    type Output = (u32, u32, Wake);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let event = match &mut this.state {
            Flight::Running { running, deadline } => {
                let polled = catch_unwind(AssertUnwindSafe(|| {
                    let _task = enter_task(this.node, this.attempt);
                    Pin::new(&mut *running).poll(cx)
                }));
                match polled {
                    Ok(Poll::Ready(outcome)) => Wake::Finished(outcome),
                    Err(payload) => Wake::Finished(Err(panicked(&*payload))),
                    Ok(Poll::Pending) => match deadline {
                        Some((sleep, after)) => {
                            core::task::ready!(sleep.as_mut().poll(cx));
                            Wake::Finished(Err(TimedOut { after: *after }.into()))
                        }
                        None => return Poll::Pending,
                    },
                }
            }
            Flight::Backoff(sleep) => {
                core::task::ready!(sleep.as_mut().poll(cx));
                Wake::Retry
            }
            Flight::Now => Wake::Retry,
        };
        Poll::Ready((this.node, this.attempt, event))
    }
}
