//! Graphs without spawned or blocking nodes run without heap allocation; a wide join
//! allocates once per run. Counted with a global allocator, in one test so that nothing else
//! allocates on the way.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use dagjoin::dag;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Polls to completion with a no-op waker (the futures here never wait on anything outside
/// the graph) and returns the output and the allocations made while polling.
fn run<F: Future>(future: F) -> (F::Output, usize) {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let out = loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            break out;
        }
    };
    (out, ALLOCATIONS.load(Ordering::SeqCst) - before)
}

/// Ready at the second poll, so that branches really wait for each other.
async fn val(x: u64) -> u64 {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
    x
}

#[test]
fn graphs_run_without_allocating() {
    let (out, allocations) = run(dag! {
        a   = val(1);
        b   = val(a + 10);
        sa  = val(2);
        fb  = val(3);
        c   = val(sa * fb);
        end = val(b + c);
        end
    });
    assert_eq!(out, 17);
    assert_eq!(allocations, 0, "series-parallel graph");

    let (out, allocations) = run(dag! {
        a = val(1);
        b = val(2);
        c = val(a + b);
        d = val(b * 10);
        e = val(c + d);
        f = val(d + 1);
        (e, f)
    });
    assert_eq!(out, (23, 21));
    assert_eq!(allocations, 0, "graph with slots");

    let (out, allocations) = run(dag! {
        n0 = val(0); n1 = val(1); n2 = val(2); n3 = val(3); n4 = val(4); n5 = val(5);
        n6 = val(6); n7 = val(7); n8 = val(8); n9 = val(9); n10 = val(10); n11 = val(11);
        n12 = val(12); n13 = val(13); n14 = val(14); n15 = val(15); n16 = val(16);
        n17 = val(17); n18 = val(18); n19 = val(19); n20 = val(20); n21 = val(21);
        n22 = val(22); n23 = val(23); n24 = val(24); n25 = val(25); n26 = val(26);
        n27 = val(27); n28 = val(28); n29 = val(29); n30 = val(30); n31 = val(31);
        n32 = val(32); n33 = val(33); n34 = val(34); n35 = val(35);
        n0 + n1 + n2 + n3 + n4 + n5 + n6 + n7 + n8 + n9 + n10 + n11 + n12 + n13 + n14
            + n15 + n16 + n17 + n18 + n19 + n20 + n21 + n22 + n23 + n24 + n25 + n26
            + n27 + n28 + n29 + n30 + n31 + n32 + n33 + n34 + n35
    });
    assert_eq!(out, (0..36).sum());
    assert_eq!(
        allocations, 1,
        "a join of more than 32 branches allocates its wake-up set once"
    );
}
