//! A progress bar for runs (feature `progress`, on indicatif): one line that counts completed,
//! failed, skipped and running tasks against the total, with the elapsed time and the names
//! of a few running tasks.
//!
//! One more observer of a run's events. It keeps its counts itself, a store or two per event
//! and no lock, and the bar reads them when it draws: 20 times a second while the run goes
//! on, on a thread of its own, however fast or slow tasks finish, and not at all when
//! stderr is not a terminal.

use core::fmt;
use core::time::Duration;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::event::{Event, EventKind, TaskName};
use crate::graph::GraphInner;
use crate::options::Observer;

/// How many running tasks the line names.
const NAMED: usize = 3;

/// How often the bar is drawn while a run goes on.
const EVERY: Duration = Duration::from_millis(50);

/// How many ticks the drawing thread waits for another run before it ends (a second).
const LINGER: u32 = 20;

/// The width of the bar, in characters.
const WIDTH: u64 = 30;

/// A progress bar that follows runs given it with
/// [`RunOptions::progress`](crate::RunOptions::progress).
///
/// ```
/// use dagjoin::runtime::{NamedGraphBuilder, Progress, RunOptions};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let mut builder = NamedGraphBuilder::new();
/// builder.task("a", |_| async { Ok(()) }).task("b", |_| async { Ok(()) });
/// let progress = Progress::new(); // on stderr, drawn only if it is a terminal
/// let report = builder.build().unwrap().run_with((), RunOptions::new().progress(&progress)).await;
/// assert!(report.is_complete());
/// assert_eq!(progress.position(), (2, 2));
/// # });
/// ```
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    shared: Arc<Shared>,
}

/// What the bar's clones, its runs and its drawing thread share.
#[derive(Default)]
struct Shared {
    shown: Mutex<Shown>,
}

#[derive(Default)]
struct Shown {
    /// The run the bar shows, once one has started.
    watch: Option<Arc<Watch>>,
    /// Whether that run goes on.
    running: bool,
    /// Whether a thread draws the bar. It ticks 20 times a second, draws while a run goes on
    /// and ends after a second without one: back-to-back runs share one thread rather than
    /// start one each, and a run's start wakes nothing (a thread started or woken per run
    /// would cost a run of 10,000 quick tasks a tenth of its time or more).
    drawing: bool,
}

/// What a bar knows of one run: written by the run alone, read by whoever draws.
///
/// Only the run writes, one event at a time (its observers are called from its own poll, which
/// `&mut` makes sequential), so each count is a relaxed load and store, not a read-modify-write:
/// a few instructions per event, where a lock or an atomic add would cost several times as
/// many. The drawer reads them relaxed: a line may mix counts from either side of an event, and
/// the next draw is right again.
struct Watch {
    graph: Arc<GraphInner>,
    total: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    cancelled: AtomicU64,
    running: AtomicU64,
    /// Whether each task is running, by node: the drawer names the first few it finds.
    is_running: Box<[AtomicBool]>,
    /// The tasks the run added (nodes from `is_running.len()` on): name, and whether it runs.
    added: Mutex<Vec<(Box<str>, bool)>>,
}

impl Progress {
    /// A bar on stderr, drawn at most 20 times a second, hidden when stderr is not a terminal.
    pub fn new() -> Self {
        Self::with_draw_target(ProgressDrawTarget::stderr_with_hz(20))
    }

    /// A bar drawn to `target` (a terminal of your own, or indicatif's in-memory terminal).
    pub fn with_draw_target(target: ProgressDrawTarget) -> Self {
        let shared = Arc::new(Shared::default());
        let bar = ProgressBar::with_draw_target(None, target);
        let drawn = shared.clone();
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} {tasks}")
                .expect("the template is valid")
                .with_key(
                    "tasks",
                    move |_: &ProgressState, out: &mut dyn fmt::Write| {
                        let watch = lock(&drawn.shown).watch.clone();
                        if let Some(watch) = watch {
                            let _ = watch.write_line(out);
                        }
                    },
                ),
        );
        Self { bar, shared }
    }

    /// How many tasks of the run shown are done (in any way), of how many.
    pub fn position(&self) -> (u64, u64) {
        lock(&self.shared.shown)
            .watch
            .as_deref()
            .map_or((0, 0), |watch| {
                (watch.done(), watch.total.load(Ordering::Relaxed))
            })
    }

    /// The indicatif bar, to style it or read it.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// An observer of a run of `graph` that shows it on this bar from the moment it starts
    /// (a run started later takes the bar over).
    pub(crate) fn watch(&self, graph: &Arc<GraphInner>) -> Observer {
        let watch = Arc::new(Watch {
            graph: graph.clone(),
            total: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            running: AtomicU64::new(0),
            is_running: (0..graph.len()).map(|_| AtomicBool::new(false)).collect(),
            added: Mutex::default(),
        });
        let progress = self.clone();
        Arc::new(move |event: &Event<'_>| progress.observe(&watch, event))
    }

    /// Keeps `watch` up with `event`.
    fn observe(&self, watch: &Arc<Watch>, event: &Event<'_>) {
        match &event.kind {
            EventKind::Started {
                task, attempt: 1, ..
            } => {
                bump(&watch.running);
                watch.set_running(task, true);
            }
            EventKind::Completed { task, attempt } => {
                bump(&watch.completed);
                if *attempt > 0 {
                    watch.stopped(task);
                }
            }
            EventKind::Failed { task, .. } => {
                bump(&watch.failed);
                watch.stopped(task);
            }
            EventKind::Cancelled { task, .. } => {
                bump(&watch.cancelled);
                watch.stopped(task);
            }
            EventKind::Skipped { .. } | EventKind::NotRun { .. } => bump(&watch.skipped),
            EventKind::Added { task, .. } => {
                bump(&watch.total);
                lock(&watch.added).push((task.as_str().into(), false));
            }
            EventKind::RunStarted { tasks, .. } => {
                watch
                    .total
                    .store(u64::try_from(*tasks).unwrap_or(u64::MAX), Ordering::Relaxed);
                self.bar.reset();
                let mut shown = lock(&self.shared.shown);
                shown.watch = Some(watch.clone());
                shown.running = true;
                if !shown.drawing && !self.bar.is_hidden() {
                    shown.drawing = true;
                    drop(shown);
                    self.draw_in_background();
                }
            }
            EventKind::RunFinished { .. } => {
                lock(&self.shared.shown).running = false;
                self.bar.finish();
            }
            // Readiness and retries change no count.
            EventKind::Ready { .. } | EventKind::Retrying { .. } | EventKind::Started { .. } => {}
        }
    }

    /// Starts the thread that draws the bar while a run goes on. It holds the bar weakly, and
    /// ends when the bar is gone or no run has started for a while.
    fn draw_in_background(&self) {
        let shared = self.shared.clone();
        let bar = self.bar.downgrade();
        let spawned = std::thread::Builder::new()
            .name("dagjoin-progress".into())
            .spawn(move || {
                let mut idle = 0;
                loop {
                    std::thread::sleep(EVERY);
                    let mut shown = lock(&shared.shown);
                    if !shown.running {
                        idle += 1;
                        if idle == LINGER {
                            shown.drawing = false;
                            return;
                        }
                        continue;
                    }
                    idle = 0;
                    drop(shown);
                    let Some(bar) = bar.upgrade() else {
                        lock(&shared.shown).drawing = false;
                        return;
                    };
                    bar.tick();
                }
            });
        if spawned.is_err() {
            // No thread to draw with: the bar is drawn at the run's end only.
            lock(&self.shared.shown).drawing = false;
        }
    }
}

/// Changes a count only its run writes (see [`Watch`]).
fn update(count: &AtomicU64, change: impl FnOnce(u64) -> u64) {
    count.store(change(count.load(Ordering::Relaxed)), Ordering::Relaxed);
}

fn bump(count: &AtomicU64) {
    update(count, |n| n.saturating_add(1));
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Watch {
    fn done(&self) -> u64 {
        [
            &self.completed,
            &self.failed,
            &self.skipped,
            &self.cancelled,
        ]
        .into_iter()
        .map(|count| count.load(Ordering::Relaxed))
        .sum()
    }

    fn set_running(&self, task: &TaskName<'_>, running: bool) {
        let Some(v) = task.node() else { return };
        if let Some(flag) = self.is_running.get(v as usize) {
            flag.store(running, Ordering::Relaxed);
        } else if let Some(added) = lock(&self.added).get_mut(v as usize - self.is_running.len()) {
            added.1 = running;
        }
    }

    /// A running task stopped.
    fn stopped(&self, task: &TaskName<'_>) {
        update(&self.running, |n| n.saturating_sub(1));
        self.set_running(task, false);
    }

    /// `[=====>     ] 3/10 2 completed, 1 failed, 4 running: a, b, c, ..`
    fn write_line(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let total = self.total.load(Ordering::Relaxed);
        let done = self.done();
        let filled = (done * WIDTH)
            .checked_div(total)
            .map_or(WIDTH, |filled| filled.min(WIDTH));
        out.write_char('[')?;
        for i in 0..WIDTH {
            out.write_char(match i.cmp(&filled) {
                core::cmp::Ordering::Less => '=',
                core::cmp::Ordering::Equal if filled < WIDTH => '>',
                _ => ' ',
            })?;
        }
        let count = |count: &AtomicU64| count.load(Ordering::Relaxed);
        write!(out, "] {done}/{total} {} completed", count(&self.completed))?;
        for (n, what) in [
            (count(&self.failed), "failed"),
            (count(&self.skipped), "skipped or not run"),
            (count(&self.cancelled), "cancelled"),
        ] {
            if n > 0 {
                write!(out, ", {n} {what}")?;
            }
        }
        let running = count(&self.running);
        if running > 0 {
            write!(out, ", {running} running")?;
            let added = lock(&self.added);
            let graph = &self.graph;
            let running_tasks = self
                .is_running
                .iter()
                .enumerate()
                .filter(|(_, flag)| flag.load(Ordering::Relaxed))
                .map(|(v, _)| graph.name(crate::graph::index(v)))
                .chain(
                    added
                        .iter()
                        .filter(|(_, running)| *running)
                        .map(|(name, _)| &**name),
                );
            let mut named = 0_u64;
            for name in running_tasks.take(NAMED) {
                out.write_str(if named == 0 { ": " } else { ", " })?;
                out.write_str(name)?;
                named += 1;
            }
            if running > named {
                out.write_str(", ..")?;
            }
        }
        Ok(())
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Progress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Progress")
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}
