//! The tasks of the generated graphs and a loop that polls a future to completion, shared by
//! the benchmarks, the size tests and `instructions.sh` (each includes this file with `#[path]`).

use core::future::Future;
use core::pin::{pin, Pin};
use core::task::{Context, Poll, Waker};

/// Polls `future` to completion with a no-op waker. Only for futures that are ready again
/// whenever they are polled after returning `Pending`, as all futures here are.
pub fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// The tasks of a generated graph: `tasks(work)(i, inputs)` is the task of node `i`. It
/// combines the inputs and the index at once; the future holds only the result.
///
/// What the task does (`work`) is a run-time flag, not a type, so that each graph is compiled
/// once for both kinds of task: the `layered1000` graph alone takes a minute or two to optimize.
pub fn tasks(work: Work) -> impl Fn(usize, &[u64]) -> Task + Copy {
    move |i, inputs| Task {
        value: inputs
            .iter()
            .fold(0u64, |acc, x| acc.wrapping_mul(31).wrapping_add(*x))
            .wrapping_add(i as u64),
        yield_first: work == Work::Yield,
    }
}

/// What a task of a generated graph does before it returns its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Nothing.
    Zero,
    /// Return `Pending` once, after waking itself.
    Yield,
}

/// A task of a generated graph.
pub struct Task {
    value: u64,
    yield_first: bool,
}

impl Future for Task {
    type Output = u64;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        if self.yield_first {
            self.yield_first = false;
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(self.value)
        }
    }
}
