//! A series-parallel graph's future against the same schedule written by hand with nested
//! `futures::join!`: the seed graph and the 100-node graph of the benchmarks
//! (`benches/generated/sp100.rs`).

use core::future::Future;

use dagjoin::dag;
use futures::executor::block_on;

#[rustfmt::skip]
#[path = "../benches/generated/sp100.rs"]
mod sp100;

#[allow(
    dead_code,
    reason = "the benchmarks' poll loop and tasks; these tests use only the tasks"
)]
#[path = "../benches/support/tasks.rs"]
mod tasks;
use tasks::{tasks, Work};

#[path = "../benches/support/yield_once.rs"]
mod yield_once;
use yield_once::YieldOnce;

async fn fast_a() -> u64 {
    YieldOnce(false).await;
    1
}

async fn slow_b(a: u64) -> u64 {
    YieldOnce(false).await;
    a + 10
}

async fn slow_a() -> u64 {
    YieldOnce(false).await;
    2
}

async fn fast_b() -> u64 {
    YieldOnce(false).await;
    3
}

async fn fast_c(sa: u64, fb: u64) -> u64 {
    YieldOnce(false).await;
    sa * fb
}

async fn end_task(b: u64, c: u64) -> u64 {
    YieldOnce(false).await;
    b + c
}

fn seed_with_dag() -> impl Future<Output = u64> {
    dag! {
        a   = fast_a();
        b   = slow_b(a);
        sa  = slow_a();
        fb  = fast_b();
        c   = fast_c(sa, fb);
        end = end_task(b, c);
        end
    }
}

#[allow(
    clippy::manual_async_fn,
    reason = "returns the future itself, like `seed_with_dag`"
)]
fn seed_by_hand() -> impl Future<Output = u64> {
    async {
        let (b, c) = futures::join!(
            async {
                let a = fast_a().await;
                slow_b(a).await
            },
            async {
                let (sa, fb) = futures::join!(slow_a(), fast_b());
                fast_c(sa, fb).await
            },
        );
        end_task(b, c).await
    }
}

#[test]
fn seed_graph_is_no_larger_than_by_hand() {
    let (with_dag, by_hand) = (seed_with_dag(), seed_by_hand());
    assert!(
        size_of_val(&with_dag) <= size_of_val(&by_hand),
        "dag! {} bytes, by hand {}",
        size_of_val(&with_dag),
        size_of_val(&by_hand)
    );
    assert_eq!(block_on(with_dag), block_on(by_hand));
}

/// The temporaries of a node's expression live until the node's future is done, as in
/// `let x = f(&[a, b]).await;`, so a node may return a future that borrows one
/// (`len(&format!(..))`). `futures::join!` drops them once it has made the futures (and rejects
/// such nodes), so the hand-written graph does not hold the input arrays of `task(i, &[a, b])`
/// while its joins run: that is the whole difference left, under a tenth of the future. Written
/// by hand so that every node could borrow a temporary (each in an `async` block), the graph's
/// future is larger than the `dag!`'s.
#[test]
fn series_parallel_graph_of_100_nodes_is_within_its_temporaries_of_by_hand() {
    let task = tasks(Work::Yield);
    let (with_dag, by_hand) = (sp100::with_dag(task), sp100::by_hand(task));
    let borrowing = sp100::by_hand_borrowing(task);
    assert!(
        size_of_val(&with_dag) * 10 <= size_of_val(&by_hand) * 11,
        "dag! {} bytes, by hand {}",
        size_of_val(&with_dag),
        size_of_val(&by_hand)
    );
    assert!(
        size_of_val(&with_dag) <= size_of_val(&borrowing),
        "dag! {} bytes, by hand with async blocks {}",
        size_of_val(&with_dag),
        size_of_val(&borrowing)
    );
    let value = block_on(with_dag);
    assert_eq!(value, block_on(by_hand));
    assert_eq!(value, block_on(borrowing));
    let edges: usize = sp100::DEPS.iter().map(|d| d.len()).sum();
    assert_eq!((sp100::DEPS.len(), edges), (sp100::NODES, sp100::EDGES));
}
