//! Graphs that grow while they run: maps of run-time width, under paused time.

use std::time::Duration;

use dagjoin::runtime::{EventKind, GraphBuilder, RunOptions, Status};
use tokio::time::{sleep, Instant};

/// A producer of `width` items after 50 ms, a map of 100 ms per item, and a reduce (a sum);
/// the report, the map's handle, the sum's handle.
async fn map_reduce(
    width: u64,
    options: RunOptions,
) -> (dagjoin::runtime::Report, Vec<u64>, u64, Duration) {
    let mut g = GraphBuilder::<()>::new();
    let items = g.named("list").add(
        move || async move {
            sleep(Duration::from_millis(50)).await;
            (0..width).collect::<Vec<u64>>()
        },
        (),
    );
    let squares = g.named("square").map(
        |x: u64| async move {
            sleep(Duration::from_millis(100)).await;
            x * x
        },
        items,
    );
    let sum = g.named("sum").add(
        |squares: Vec<u64>| async move { squares.iter().sum::<u64>() },
        squares,
    );
    let graph = g.build().unwrap();
    let started = Instant::now();
    let report = graph.run_with((), options).await;
    let took = started.elapsed();
    let values = report.get(&squares).unwrap().clone();
    let total = *report.get(&sum).unwrap();
    (report, values, total, took)
}

#[tokio::test(start_paused = true)]
async fn a_map_of_five_items_runs_them_all_at_once_then_the_reduce() {
    let (report, squares, sum, took) = map_reduce(5, RunOptions::new()).await;
    assert_eq!(squares, vec![0, 1, 4, 9, 16]);
    assert_eq!(sum, 30);
    assert_eq!(took, Duration::from_millis(150));
    assert!(report.is_complete(), "{report:#}");
    // The graph's three tasks and the five items, named after the map.
    assert_eq!(report.count(Status::Completed), 8);
    assert_eq!(report.task("square").unwrap().added_by(), None);
    assert_eq!(
        report.task("square").unwrap().dependencies(),
        [
            "list",
            "square[0]",
            "square[1]",
            "square[2]",
            "square[3]",
            "square[4]"
        ]
    );
    for i in 0..5 {
        let item = report.task(&format!("square[{i}]")).unwrap();
        assert_eq!(item.status(), Status::Completed);
        assert_eq!(item.dependencies(), ["list"]);
        assert_eq!(item.added_by(), Some("square"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_map_of_no_items_gives_the_reduce_an_empty_vec() {
    let (report, squares, sum, took) = map_reduce(0, RunOptions::new()).await;
    assert!(squares.is_empty());
    assert_eq!(sum, 0);
    assert_eq!(took, Duration::from_millis(50));
    assert_eq!(report.count(Status::Completed), 3);
}

#[tokio::test(start_paused = true)]
async fn a_map_of_a_thousand_items_ends_at_150_ms() {
    let (report, squares, sum, took) = map_reduce(1000, RunOptions::new()).await;
    assert_eq!(squares.len(), 1000);
    assert_eq!(squares[999], 999 * 999);
    assert_eq!(sum, (0..1000_u64).map(|x| x * x).sum::<u64>());
    assert_eq!(took, Duration::from_millis(150));
    assert_eq!(report.count(Status::Completed), 1003);
}

#[tokio::test(start_paused = true)]
async fn a_map_holds_no_room_while_its_items_run() {
    // One task in flight at a time: the map must not keep the only room while it waits.
    let (report, squares, _, took) = map_reduce(3, RunOptions::new().max_in_flight(1)).await;
    assert_eq!(squares, vec![0, 1, 4]);
    assert_eq!(took, Duration::from_millis(50 + 3 * 100));
    assert!(report.is_complete());
}

#[tokio::test(start_paused = true)]
async fn a_failed_item_skips_the_map_and_its_users_and_the_others_run_on() {
    let mut g = GraphBuilder::<()>::new();
    let items = g.add(|| async { vec![1_u32, 2, 3] }, ());
    let checked = g.named("check").try_map(
        |x: u32| async move {
            sleep(Duration::from_millis(10 * u64::from(x))).await;
            anyhow::ensure!(x != 2, "item {x} is bad");
            Ok(x)
        },
        items,
    );
    let after = g
        .named("after")
        .add(|v: Vec<u32>| async move { v.len() }, checked);
    let report = g.build().unwrap().run(()).await;
    assert_eq!(report.task("check[1]").unwrap().status(), Status::Failed);
    assert_eq!(report.task("check[0]").unwrap().status(), Status::Completed);
    assert_eq!(report.task("check[2]").unwrap().status(), Status::Completed);
    assert_eq!(report.task("check").unwrap().status(), Status::Skipped);
    assert_eq!(report.task("after").unwrap().status(), Status::Skipped);
    assert!(report.get(&after).is_err());
    assert_eq!(
        report.task("check").unwrap().skipped_because(),
        Some("check[1]")
    );
    let error = format!("{:#}", report.check().unwrap_err());
    assert!(error.contains("task `check[1]` failed"), "{error}");
    assert!(error.contains("item 2 is bad"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn added_tasks_have_events_of_their_own() {
    let mut g = GraphBuilder::<()>::new();
    let items = g.named("list").add(|| async { vec![1_u8, 2] }, ());
    g.named("double").map(|x: u8| async move { x * 2 }, items);
    let mut run = g.build().unwrap().run(());
    let events = run.events();
    let report = run.await;
    assert!(report.is_complete());
    let events: Vec<_> = futures::StreamExt::collect::<Vec<_>>(events).await;
    let added: Vec<String> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Added { task, by } => Some(format!("{task} by {by}")),
            _ => None,
        })
        .collect();
    assert_eq!(added, ["double[0] by double", "double[1] by double"]);
    let completed: Vec<&str> = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Completed { .. }))
        .filter_map(|event| event.task())
        .collect();
    assert_eq!(completed, ["list", "double[0]", "double[1]", "double"]);
}

#[tokio::test(start_paused = true)]
async fn a_map_that_would_pass_the_runs_limit_of_tasks_fails_saying_so() {
    let mut g = GraphBuilder::<()>::new();
    let items = g
        .named("list")
        .add(|| async { (0..1000_u64).collect::<Vec<_>>() }, ());
    let squares = g.named("square").map(|x: u64| async move { x * x }, items);
    g.named("sum")
        .add(|v: Vec<u64>| async move { v.iter().sum::<u64>() }, squares);
    let options = RunOptions::new().max_tasks(100);
    let report = g.build().unwrap().run_with((), options).await;
    let map = report.task("square").unwrap();
    assert_eq!(map.status(), Status::Failed);
    let error = format!("{:#}", map.error().unwrap());
    assert_eq!(
        error,
        "its 1000 items would make the run's 3 tasks more than its limit of 100 \
         (RunOptions::max_tasks)"
    );
    assert_eq!(report.task("sum").unwrap().status(), Status::Skipped);
    // Nothing was added.
    assert_eq!(report.tasks().len(), 3);
}

#[test]
fn a_hundred_thousand_added_tasks_run() {
    // Adding tasks costs the same for the last as for the first: were it to grow with the
    // tasks added so far, this run would take minutes rather than a moment.
    let mut g = GraphBuilder::<()>::new();
    let items = g.add(|| async { (0..100_000_u64).collect::<Vec<_>>() }, ());
    let incremented = g.named("inc").map(|x: u64| async move { x + 1 }, items);
    let sum = g.add(
        |v: Vec<u64>| async move { v.iter().sum::<u64>() },
        incremented,
    );
    let report = futures::executor::block_on(g.build().unwrap().run(()));
    assert_eq!(*report.get(&sum).unwrap(), (1..=100_000_u64).sum::<u64>());
    assert_eq!(report.tasks().len(), 100_003);
    assert_eq!(report.task("inc[99999]").unwrap().added_by(), Some("inc"));
}

#[tokio::test(start_paused = true)]
async fn a_live_status_taken_after_a_map_spread_sees_its_items() {
    let mut g = GraphBuilder::<()>::new();
    let items = g.named("list").add(|| async { vec![1_u64, 2] }, ());
    g.named("wait").map(
        |x: u64| async move {
            sleep(Duration::from_secs(x)).await;
            x
        },
        items,
    );
    let mut run = g.build().unwrap().run(());
    // The first poll runs `list` and spreads the map; only then is the status asked for.
    assert!(futures::poll!(&mut run).is_pending());
    let status = run.status();
    let snapshot = status.snapshot();
    let seen: Vec<(&str, String)> = snapshot
        .tasks
        .iter()
        .map(|task| (task.name.as_str(), task.state.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            ("list", "completed".to_owned()),
            // Waiting for its items.
            ("wait", "waiting".to_owned()),
            ("wait[0]", "running".to_owned()),
            ("wait[1]", "running".to_owned()),
        ]
    );
    assert!(status.to_mermaid().contains("t3 --> t2"));
    let report = run.await;
    assert!(report.is_complete());
    assert_eq!(status.snapshot().done(Status::Completed), 4);
}

#[tokio::test(start_paused = true)]
async fn an_item_named_like_a_task_of_the_graph_fails_the_map_saying_so() {
    let mut g = GraphBuilder::<()>::new();
    let items = g.named("list").add(|| async { vec![1_u64, 2] }, ());
    g.named("m[1]").add(|| async { 0_u64 }, ());
    g.named("m").map(|x: u64| async move { x }, items);
    let report = g.build().unwrap().run(()).await;
    let map = report.task("m").unwrap();
    assert_eq!(map.status(), Status::Failed);
    assert_eq!(
        map.error().unwrap().to_string(),
        "its item 1 would be called `m[1]`, the name of another task: rename one of them"
    );
    // The graph's own task is untouched, and nothing was added.
    assert_eq!(report.value::<u64>("m[1]").unwrap(), &0);
    assert_eq!(report.tasks().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn again_after_a_failed_item_reruns_only_that_item() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let broken = Arc::new(AtomicBool::new(true));
    let lists = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut g = GraphBuilder::<()>::new();
    let counted = lists.clone();
    let items = g.named("list").add(
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { vec![1_u32, 2, 3] }
        },
        (),
    );
    let flag = broken.clone();
    let items_run = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let item_runs = items_run.clone();
    let checked = g.named("check").try_map(
        move |x: u32| {
            item_runs.fetch_add(1, Ordering::SeqCst);
            let broken = flag.load(Ordering::SeqCst);
            async move {
                anyhow::ensure!(!(broken && x == 2), "item {x} is bad");
                Ok(x * 10)
            }
        },
        items,
    );
    let sum = g
        .named("sum")
        .add(|v: Vec<u32>| async move { v.iter().sum::<u32>() }, checked);
    let graph = g.build().unwrap();
    let first = graph.run(()).await;
    assert_eq!(first.task("check").unwrap().status(), Status::Skipped);

    broken.store(false, Ordering::SeqCst);
    let second = graph.again(&first).run(()).unwrap().await;
    assert!(second.is_complete(), "{second:#}");
    assert_eq!(second.get(&sum).unwrap(), &60);
    // The list is reused; the map spreads again, and only its failed item runs again.
    assert_eq!(lists.load(Ordering::SeqCst), 1);
    assert!(second.task("list").unwrap().reused());
    assert_eq!(items_run.load(Ordering::SeqCst), 3 + 1);
    assert!(second.task("check[0]").unwrap().reused());
    assert!(second.task("check[2]").unwrap().reused());
    assert!(second.task("check[1]").unwrap().ran());
    assert_eq!(second.tasks().len(), 6);
}
