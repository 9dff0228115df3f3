//! The progress bar (feature `progress`), drawn to indicatif's in-memory terminal, through a
//! terminal that counts how often it is drawn.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dagjoin::runtime::{GraphBuilder, NamedGraphBuilder, Progress, RunOptions};
use indicatif::{InMemoryTerm, ProgressDrawTarget, TermLike};

/// An in-memory terminal that counts its flushes (one per draw).
#[derive(Debug, Clone)]
struct Counted {
    term: InMemoryTerm,
    draws: Arc<AtomicUsize>,
}

impl TermLike for Counted {
    fn width(&self) -> u16 {
        self.term.width()
    }
    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.term.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.term.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.term.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.term.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        self.term.write_line(s)
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        self.term.write_str(s)
    }
    fn clear_line(&self) -> io::Result<()> {
        self.term.clear_line()
    }
    fn flush(&self) -> io::Result<()> {
        self.draws.fetch_add(1, Ordering::SeqCst);
        self.term.flush()
    }
}

fn terminal() -> (Progress, Counted) {
    let term = Counted {
        term: InMemoryTerm::new(4, 160),
        draws: Arc::default(),
    };
    let progress = Progress::with_draw_target(ProgressDrawTarget::term_like_with_hz(
        Box::new(term.clone()),
        20,
    ));
    (progress, term)
}

#[tokio::test(start_paused = true)]
async fn the_bar_counts_completed_failed_skipped_and_running_tasks() {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("download", |_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .task("broken", |_| async {
            anyhow::bail!("no") as anyhow::Result<()>
        })
        .task("after_broken", |_| async { Ok(()) })
        .task("quick", |_| async { Ok(()) })
        .depends("after_broken", ["broken"]);
    let graph = builder.build().unwrap();
    let (progress, term) = terminal();
    let run = tokio::spawn(graph.run_with((), RunOptions::new().progress(&progress)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Mid-run: the counts so far, and the task still running, by name (drawn now rather
    // than at the ticker's next tick).
    progress.bar().force_draw();
    let line = term.term.contents();
    assert!(
        line.contains("] 3/4 1 completed, 1 failed, 1 skipped or not run, 1 running: download"),
        "{line}"
    );
    run.await.unwrap();
    let line = term.term.contents();
    assert!(
        line.contains("] 4/4 2 completed, 1 failed, 1 skipped or not run"),
        "{line}"
    );
    assert!(!line.contains("running"), "{line}");
}

#[test]
fn ten_thousand_quick_tasks_are_drawn_a_few_times_only() {
    let mut g = GraphBuilder::<()>::new();
    let mut last = g.add(|| async { 0_u64 }, ());
    for _ in 1..10_000 {
        last = g.add(|x: u64| async move { x + 1 }, last);
    }
    let graph = g.build().unwrap();
    let (progress, term) = terminal();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let report = runtime.block_on(graph.run_with((), RunOptions::new().progress(&progress)));
    let took = started.elapsed();
    assert_eq!(report.get(&last).unwrap(), &9_999);
    let line = term.term.contents();
    assert!(line.contains("] 10000/10000 10000 completed"), "{line}");
    // At most 20 draws a second, whatever the speed of the tasks (plus the first and the
    // last draw); a generous bound for a slow machine.
    let draws = term.draws.load(Ordering::SeqCst);
    let most = 2 + 20 * (usize::try_from(took.as_secs()).unwrap() + 1);
    assert!(draws <= most, "{draws} draws in {took:?}");
}

#[test]
fn nothing_is_drawn_without_a_terminal() {
    let progress = Progress::with_draw_target(ProgressDrawTarget::hidden());
    let mut builder = NamedGraphBuilder::new();
    builder.task("a", |_| async { Ok(()) });
    let report = futures::executor::block_on(
        builder
            .build()
            .unwrap()
            .run_with((), RunOptions::new().progress(&progress)),
    );
    assert!(report.is_complete());
    assert!(progress.bar().is_hidden());
    assert_eq!(progress.position(), (1, 1));
}

/// The threads of this process named `name` (Linux).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter(|task| {
            let comm = task.as_ref().unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|comm| comm.trim() == name)
        })
        .count()
}

#[test]
fn a_long_run_is_redrawn_while_it_goes_on_and_the_drawing_thread_ends_after() {
    let mut builder = NamedGraphBuilder::new();
    builder.task("slow", |_| async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(())
    });
    let graph = builder.build().unwrap();
    let (progress, term) = terminal();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(graph.run_with((), RunOptions::new().progress(&progress)));
    assert!(report.is_complete());
    // About 12 draws at 20 a second; a few are enough to show it is redrawn without events.
    let draws = term.draws.load(Ordering::SeqCst);
    assert!(draws >= 4, "{draws} draws in 600ms");
    // The thread that drew waits a while for another run, then ends.
    let waited = std::time::Instant::now();
    while threads_named("dagjoin-progress") > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the drawing thread is still there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn runs_one_after_another_share_the_bar_and_each_starts_from_nothing() {
    let (progress, term) = terminal();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for tasks in [3, 5] {
        let mut builder = NamedGraphBuilder::new();
        for i in 0..tasks {
            builder.task(format!("t{i}"), |_| async { Ok(()) });
        }
        let graph = builder.build().unwrap();
        let report = runtime.block_on(graph.run_with((), RunOptions::new().progress(&progress)));
        assert!(report.is_complete());
        assert_eq!(progress.position(), (tasks, tasks));
        let line = term.term.contents();
        assert!(
            line.contains(&format!("] {tasks}/{tasks} {tasks} completed")),
            "{line}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_total_grows_with_the_tasks_a_run_adds_and_names_them_while_they_run() {
    let mut g = GraphBuilder::<()>::new();
    let items = g.named("list").add(|| async { vec![1_u64, 2, 3, 4] }, ());
    let slow = g.named("wait").map(
        |x: u64| async move {
            tokio::time::sleep(Duration::from_secs(x)).await;
            x
        },
        items,
    );
    g.named("sum")
        .add(|v: Vec<u64>| async move { v.iter().sum::<u64>() }, slow);
    let graph = g.build().unwrap();
    let (progress, term) = terminal();
    let run = tokio::spawn(graph.run_with((), RunOptions::new().progress(&progress)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    progress.bar().force_draw();
    let line = term.term.contents();
    // `list` and `wait[0]` are done, three items run; the map waits for them, `sum` for it.
    assert!(
        line.contains("] 2/7 2 completed, 3 running: wait[1], wait[2], wait[3]"),
        "{line}"
    );
    run.await.unwrap();
    assert_eq!(progress.position(), (7, 7));
    let line = term.term.contents();
    assert!(line.contains("] 7/7 7 completed"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn a_map_skipped_after_a_failed_item_is_not_left_running() {
    let mut g = GraphBuilder::<()>::new();
    let items = g.add(|| async { vec![1_u32, 2] }, ());
    let checked = g.named("check").try_map(
        |x: u32| async move {
            anyhow::ensure!(x != 2, "bad");
            Ok(x)
        },
        items,
    );
    g.add(|v: Vec<u32>| async move { v.len() }, checked);
    let (progress, term) = terminal();
    let report = g
        .build()
        .unwrap()
        .run_with((), RunOptions::new().progress(&progress))
        .await;
    assert!(!report.is_complete());
    let line = term.term.contents();
    assert!(
        line.contains("] 5/5 2 completed, 1 failed, 2 skipped or not run"),
        "{line}"
    );
    assert!(!line.contains("running"), "{line}");
}
