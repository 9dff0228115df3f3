//! Counts heap allocations with a counting global allocator (this test binary only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use dag_runtime::{branch, join, join_wide, try_join, try_join_wide, Slot};

/// Counts the allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System`; counting touches only a `const`-initialised thread-local
// without destructor, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Returns `f`'s result and the number of allocations it made.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (result, ALLOCATIONS.with(Cell::get) - before)
}

/// Polls `future` to completion with a waker that does nothing.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Clones its waker, wakes the clone, and returns `Pending` once, then is ready.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            Poll::Ready(())
        } else {
            let waker = cx.waker().clone();
            waker.wake();
            Poll::Pending
        }
    })
    .await;
}

async fn leaf(n: u32) -> u32 {
    let local = n;
    let borrow = &local;
    yield_now().await;
    yield_now().await;
    *borrow
}

/// [`leaf`], which fails if `n` is 0.
async fn try_leaf(n: u32) -> Result<u32, &'static str> {
    match leaf(n).await {
        0 => Err("zero"),
        n => Ok(n),
    }
}

// One test, so that nothing else runs on this thread meanwhile.
#[test]
fn joins_and_slots_allocate_as_documented() {
    let (output, count) =
        allocations(|| run(join((branch(leaf(1)), (branch(leaf(2)), branch(leaf(3)))))));
    assert_eq!(
        (output, count),
        ((1, (2, 3)), 0),
        "`join` allocates nothing"
    );

    for _ in 0..3 {
        let (mut wide, count) = allocations(|| {
            Box::pin(join_wide((
                branch(leaf(1)),
                (branch(leaf(2)), branch(leaf(3))),
            )))
        });
        assert_eq!(
            count, 1,
            "only the `Box`: `join_wide` does not allocate before its first poll"
        );
        let (output, count) = allocations(|| run(wide.as_mut()));
        assert_eq!(
            (output, count),
            ((1, (2, 3)), 1),
            "`join_wide` allocates once per run"
        );
    }
    let (output, count) = allocations(|| run(join_wide(())));
    assert_eq!(
        (output, count),
        ((), 0),
        "an empty `join_wide` allocates nothing"
    );

    let (output, count) = allocations(|| {
        run(try_join((
            branch(try_leaf(1)),
            (branch(try_leaf(2)), branch(try_leaf(3))),
        )))
    });
    assert_eq!(
        (output, count),
        (Ok((1, (2, 3))), 0),
        "`try_join` allocates nothing"
    );
    let (output, count) = allocations(|| {
        run(try_join((
            branch(try_leaf(1)),
            (
                branch(try_leaf(0)),
                branch(std::future::pending::<Result<u32, _>>()),
            ),
        )))
    });
    assert_eq!(
        (output, count),
        (Err("zero"), 0),
        "a failing `try_join` allocates nothing"
    );
    let (output, count) = allocations(|| {
        run(try_join_wide((
            branch(try_leaf(1)),
            (
                branch(try_leaf(0)),
                branch(std::future::pending::<Result<u32, _>>()),
            ),
        )))
    });
    assert_eq!(
        (output, count),
        (Err("zero"), 1),
        "`try_join_wide` allocates once per run"
    );

    let (output, count) = allocations(|| {
        let slot = Slot::<u32, 2>::new(2);
        run(join((
            branch(async {
                yield_now().await;
                slot.set(7);
            }),
            branch(async {
                slot.wait(0).await;
                slot.take_shared()
            }),
            branch(async {
                slot.wait(1).await;
                slot.take_shared()
            }),
        )))
    });
    assert_eq!((output, count), (((), 7, 7), 0), "slots allocate nothing");
}
