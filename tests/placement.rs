//! `#[spawn]` and `#[blocking]` nodes: parallel on several threads, cancelled with the graph,
//! and panics that reach the caller with their message.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dagjoin::dag;

mod common;
use common::DropGuard;

/// Arrives at a rendezvous of `n` and waits (spinning, on this thread) until all `n` have
/// arrived or `limit` passes. Only threads running at the same time can all get through.
fn rendezvous(count: &AtomicUsize, n: usize, limit: Duration) -> bool {
    count.fetch_add(1, Ordering::SeqCst);
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < n {
        if start.elapsed() > limit {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_nodes_run_in_parallel_on_two_threads() {
    let count = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (count.clone(), count.clone());
    let (a, b) = dag! {
        #[spawn]
        a = async move { (rendezvous(&c1, 2, Duration::from_secs(30)), std::thread::current().id()) };
        #[spawn]
        b = async move { (rendezvous(&c2, 2, Duration::from_secs(30)), std::thread::current().id()) };
        (a, b)
    }
    .await;
    assert!(
        a.0 && b.0,
        "both spawned nodes were running at the same time"
    );
    assert_ne!(a.1, b.1, "on two threads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn blocking_nodes_overlap() {
    let count = AtomicUsize::new(0);
    let count = &*Box::leak(Box::new(count));
    let (a, b, sum) = dag! {
        #[blocking]
        a = rendezvous(count, 2, Duration::from_secs(30));
        #[blocking]
        b = rendezvous(count, 2, Duration::from_secs(30));
        #[blocking]
        sum = (1..=100u64).sum::<u64>();
        (a, b, sum)
    }
    .await;
    assert!(a && b, "the two blocking closures ran at the same time");
    assert_eq!(sum, 5050);
}

#[tokio::test]
async fn spawned_and_blocking_nodes_take_inputs_and_feed_others() {
    let out = dag! {
        a = async { 20u64 };
        #[spawn]
        b = async move { a + 1 };
        #[blocking]
        c = a * 2;
        d = async { b + c };
        d
    }
    .await;
    assert_eq!(out, 61);
}

#[tokio::test]
async fn dropping_the_graph_aborts_spawned_nodes() {
    let dropped = Arc::new(AtomicBool::new(false));
    let started = Arc::new(tokio::sync::Notify::new());
    let guard = DropGuard(dropped.clone());
    let signal = started.clone();
    let graph = dag! {
        move;
        #[spawn]
        forever = async move {
            let _guard = guard;
            signal.notify_one();
            std::future::pending::<()>().await;
        };
        forever
    };
    let run = tokio::spawn(graph);
    started.notified().await;
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    // The spawned node's task is aborted with the graph; give the runtime a moment to drop it.
    for _ in 0..100 {
        if dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(dropped.load(Ordering::SeqCst), "no task outlives the graph");
}

fn panic_message(err: tokio::task::JoinError) -> String {
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn panics_reach_the_caller_with_their_message() {
    let inline = tokio::spawn(dag! {
        a = async { 1 };
        b = async move { if a == 1 { panic!("inline node broke") } else { a } };
        b
    });
    assert_eq!(
        panic_message(inline.await.unwrap_err()),
        "inline node broke"
    );

    let spawned = tokio::spawn(dag! {
        a = async { 1 };
        #[spawn]
        b = async move { if a == 1 { panic!("spawned node broke") } else { a } };
        b
    });
    assert_eq!(
        panic_message(spawned.await.unwrap_err()),
        "spawned node broke"
    );

    let blocking = tokio::spawn(dag! {
        #[blocking]
        b = if 1 + 1 == 2 { panic!("blocking node broke") } else { 0 };
        b
    });
    assert_eq!(
        panic_message(blocking.await.unwrap_err()),
        "blocking node broke"
    );
}

#[tokio::test]
async fn an_owning_graph_can_be_spawned() {
    let name = String::from("dag");
    let handle = tokio::spawn(dag! {
        move;
        a = async { name.len() };
        #[spawn]
        b = async move { a * 2 };
        b
    });
    assert_eq!(handle.await.unwrap(), 6);
}
