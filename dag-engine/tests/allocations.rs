//! Counts heap allocations with a counting global allocator (this test binary only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

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

// One test, so that nothing else runs on this thread meanwhile.
#[test]
fn the_engine_allocates_per_task_only_for_values_and_pending_futures() {
    use dagjoin::runtime::GraphBuilder;

    const TASKS: usize = 1000;
    // Building: stateless task functions, generated names and dependency lists take no
    // allocation of their own; what remains is the amortised growth of the builder's arrays.
    let (graph, build) = allocations(|| {
        let mut g = GraphBuilder::<u64>::new();
        let mut prev = g.param();
        for _ in 0..TASKS {
            prev = g.add(|x: u64| async move { x + 1 }, prev);
        }
        (g.build().unwrap(), prev)
    });
    assert!(build < 100, "{build} allocations to build {TASKS} tasks");

    // Running: each task's value and its boxed future (freed after its first poll when it
    // finishes then), plus a fixed number for the run's tables.
    let (graph, last) = graph;
    let (report, run_allocations) = allocations(|| run(graph.run(1)));
    assert_eq!(report.get(&last), Ok(&(TASKS as u64 + 1)));
    assert!(
        run_allocations <= 2 * TASKS + 20,
        "{run_allocations} allocations to run {TASKS} tasks"
    );
}
