//! A progress bar for runs (feature `progress`, on indicatif): one line that counts completed,
//! failed, skipped and running tasks against the total, with the elapsed time and the names
//! of a few running tasks.
//!
//! One more observer of a run's events. It keeps its counts itself (a few additions per
//! event, under a lock no one else takes for long), and the bar reads them when it draws:
//! 20 times a second while the run goes on, on indicatif's ticker thread, however fast or slow
//! tasks finish, and not at all when stderr is not a terminal.

use core::fmt;
use core::time::Duration;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::event::{Event, EventKind};

/// How many running tasks the line names.
const NAMED: usize = 3;

/// How often the bar is drawn while a run goes on.
const EVERY: Duration = Duration::from_millis(50);

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
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: u64,
    completed: u64,
    failed: u64,
    skipped: u64,
    cancelled: u64,
    running: u64,
    /// A few running tasks, by node, with their names.
    named: Vec<(u32, String)>,
    /// Names no longer shown, kept so that naming the next task allocates nothing.
    spare: Vec<String>,
}

impl Progress {
    /// A bar on stderr, drawn at most 20 times a second, hidden when stderr is not a terminal.
    pub fn new() -> Self {
        Self::with_draw_target(ProgressDrawTarget::stderr_with_hz(20))
    }

    /// A bar drawn to `target` (a terminal of your own, or indicatif's in-memory terminal).
    pub fn with_draw_target(target: ProgressDrawTarget) -> Self {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let bar = ProgressBar::with_draw_target(None, target);
        let shown = counts.clone();
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} {tasks}")
                .expect("the template is valid")
                .with_key(
                    "tasks",
                    move |_: &ProgressState, out: &mut dyn fmt::Write| {
                        let _ = lock(&shown).write_line(out);
                    },
                ),
        );
        Self { bar, counts }
    }

    /// How many tasks are done (in any way) of how many.
    pub fn position(&self) -> (u64, u64) {
        let counts = lock(&self.counts);
        (counts.done(), counts.total)
    }

    /// The indicatif bar, to style it or read it.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Keeps up with `event`.
    pub(crate) fn observe(&self, event: &Event<'_>) {
        let mut counts = lock(&self.counts);
        let mut end = false;
        match &event.kind {
            EventKind::RunStarted { tasks, .. } => {
                let mut spare = core::mem::take(&mut counts.spare);
                spare.extend(counts.named.drain(..).map(|(_, name)| name));
                *counts = Counts {
                    total: u64::try_from(*tasks).unwrap_or(u64::MAX),
                    spare,
                    ..Counts::default()
                };
                drop(counts);
                self.bar.reset();
                self.bar.enable_steady_tick(EVERY);
                return;
            }
            EventKind::Started {
                task, attempt: 1, ..
            } => {
                counts.running += 1;
                if counts.named.len() < NAMED {
                    if let Some(v) = task.node() {
                        let mut name = counts.spare.pop().unwrap_or_default();
                        name.clear();
                        name.push_str(task.as_str());
                        counts.named.push((v, name));
                    }
                }
            }
            EventKind::Completed { task, attempt } => {
                counts.completed += 1;
                if *attempt > 0 {
                    counts.stopped(task);
                }
            }
            EventKind::Failed { task, .. } => {
                counts.failed += 1;
                counts.stopped(task);
            }
            EventKind::Cancelled { task, .. } => {
                counts.cancelled += 1;
                counts.stopped(task);
            }
            EventKind::Skipped { .. } | EventKind::NotRun { .. } => counts.skipped += 1,
            EventKind::RunFinished { .. } => end = true,
            _ => {}
        }
        drop(counts);
        if end {
            self.bar.disable_steady_tick();
            self.bar.finish();
        }
    }
}

fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Counts {
    fn done(&self) -> u64 {
        self.completed + self.failed + self.skipped + self.cancelled
    }

    /// A running task stopped.
    fn stopped(&mut self, task: &crate::TaskName<'_>) {
        self.running = self.running.saturating_sub(1);
        if let Some(v) = task.node() {
            if let Some(at) = self.named.iter().position(|(n, _)| *n == v) {
                let (_, name) = self.named.swap_remove(at);
                self.spare.push(name);
            }
        }
    }

    /// `[=====>     ] 3/10 2 completed, 1 failed, 4 running: a, b, c, ..`
    fn write_line(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let done = self.done();
        let filled = (done * WIDTH)
            .checked_div(self.total)
            .map_or(WIDTH, |filled| filled.min(WIDTH));
        out.write_char('[')?;
        for i in 0..WIDTH {
            out.write_char(match i.cmp(&filled) {
                core::cmp::Ordering::Less => '=',
                core::cmp::Ordering::Equal if filled < WIDTH => '>',
                _ => ' ',
            })?;
        }
        write!(out, "] {done}/{} {} completed", self.total, self.completed)?;
        for (count, what) in [
            (self.failed, "failed"),
            (self.skipped, "skipped or not run"),
            (self.cancelled, "cancelled"),
        ] {
            if count > 0 {
                write!(out, ", {count} {what}")?;
            }
        }
        if self.running > 0 {
            write!(out, ", {} running", self.running)?;
            for (i, (_, name)) in self.named.iter().enumerate() {
                out.write_str(if i == 0 { ": " } else { ", " })?;
                out.write_str(name)?;
            }
            if self.running > self.named.len() as u64 {
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
