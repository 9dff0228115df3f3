//! [`join_wide()`]: polls only the branches that woke, each with its own waker from the ready
//! set. [`WideState`] is that polling, which the fail-fast [`try_join_wide()`] shares.
//!
//! [`try_join_wide()`]: super::try_join_wide()

use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::branch::Branches;
use super::ready::{Leaves, Shared};

/// Future returned by [`join_wide()`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct WideJoin<B> {
    branches: B,
    state: WideState,
}

/// Runs `branches` concurrently, polling only the leaves that woke; returns their outputs, in
/// the same shape.
///
/// The first poll makes one allocation that gives every leaf its own waker, then polls every
/// leaf; later polls cost the number of leaves that woke (plus one word per 4096 leaves).
pub fn join_wide<B: Branches>(branches: B) -> WideJoin<B> {
    WideJoin {
        branches,
        state: WideState::Start,
    }
}

impl<B> WideJoin<B> {
    fn project(self: Pin<&mut Self>) -> (Pin<&mut B>, &mut WideState) {
        // SAFETY: `branches` is pinned structurally: it is never moved out, `WideJoin` has no
        // `Drop` impl and is `Unpin` only if `B` is (`WideState` is `Unpin`). `state` is not
        // pinned.
        unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.branches), &mut this.state)
        }
    }
}

impl<B: Branches> Future for WideJoin<B> {
    type Output = B::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        let (mut branches, state) = self.project();
        let poll = state.poll(
            branches.as_mut(),
            cx,
            |branches, leaves| Ok::<_, Infallible>(branches.poll_all_with(leaves)),
            |_, _| None,
        );
        match poll {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(branches.take_output()),
            Poll::Ready(Err(never)) => match never {},
        }
    }
}

impl<B: Branches> fmt::Debug for WideJoin<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("WideJoin");
        self.state.fields(&mut debug, B::LEN);
        debug.finish_non_exhaustive()
    }
}

/// The state of a [`WideJoin`] or [`TryWideJoin`].
///
/// [`TryWideJoin`]: super::TryWideJoin
pub(super) enum WideState {
    /// Not polled yet.
    Start,
    /// Polled; `remaining` leaves are not done.
    Running { shared: Shared, remaining: usize },
    /// The output was returned.
    Done,
}

impl WideState {
    /// Polls the leaves of `branches` that need it: all of them, with `poll_all_with`, on the
    /// first poll, then the leaves that woke, calling `completed` on each leaf that this
    /// completes. Returns `Ok` once all leaves are done, or the first error that
    /// `poll_all_with` or `completed` returns.
    pub(super) fn poll<B: Branches, E>(
        &mut self,
        mut branches: Pin<&mut B>,
        cx: &mut Context<'_>,
        poll_all_with: impl FnOnce(Pin<&mut B>, Leaves<'_>) -> Result<bool, E>,
        mut completed: impl FnMut(Pin<&mut B>, usize) -> Option<E>,
    ) -> Poll<Result<(), E>> {
        match self {
            WideState::Start if B::LEN == 0 => {}
            WideState::Start => {
                let shared = Shared::new(B::LEN);
                shared.header().parent.register(cx.waker());
                let remaining = match poll_all_with(branches.as_mut(), shared.leaves()) {
                    Ok(true) => 0,
                    Ok(false) => (0..B::LEN).filter(|&i| !shared.entry(i).is_done()).count(),
                    Err(error) => {
                        *self = WideState::Done;
                        return Poll::Ready(Err(error));
                    }
                };
                *self = WideState::Running { shared, remaining };
            }
            WideState::Running { shared, .. } => shared.header().parent.register(cx.waker()),
            WideState::Done => panic!("a wide join was polled after completion"),
        }
        if let WideState::Running { shared, remaining } = self {
            // Poll the leaves that woke (also during this loop, e.g. woken by a sibling), at most
            // about `LEN` polls: a leaf that keeps waking itself must not starve the executor.
            // A leaf left in the ready set woke after `register`, so it woke this task too.
            let mut budget = B::LEN;
            let mut error = None;
            while *remaining > 0 && budget > 0 {
                let polled = shared.drain(|index| {
                    let leaves = shared.leaves();
                    // After an error, the leaves left in the drained words are not polled.
                    if error.is_none()
                        && !shared.entry(index).is_done()
                        && leaves.poll(index, |cx| branches.as_mut().poll_index(index, cx))
                    {
                        *remaining -= 1;
                        error = completed(branches.as_mut(), index);
                    }
                });
                if let Some(error) = error {
                    *self = WideState::Done;
                    return Poll::Ready(Err(error));
                }
                if polled == 0 {
                    break;
                }
                budget = budget.saturating_sub(polled);
            }
            if *remaining > 0 {
                return Poll::Pending;
            }
        }
        *self = WideState::Done;
        Poll::Ready(Ok(()))
    }

    /// Adds the `Debug` fields of a wide join of `len` leaves in this state.
    pub(super) fn fields(&self, debug: &mut fmt::DebugStruct<'_, '_>, len: usize) {
        debug.field("leaves", &len);
        match self {
            WideState::Start => debug.field("state", &format_args!("not started")),
            WideState::Running { remaining, .. } => debug.field("remaining", remaining),
            WideState::Done => debug.field("state", &format_args!("done")),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::branch::branch;
    use crate::join::test_support::{
        assert_send, block_on, countdown, four, poll_once, self_borrowing, sixteen, Gates, Parent,
    };
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::Waker;

    /// A leaf that hands a clone of each waker it is polled with to `wakers`, and is ready
    /// on its second poll.
    struct Stash<'a> {
        wakers: &'a Mutex<Vec<Waker>>,
        polled: bool,
    }

    impl Future for Stash<'_> {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.wakers.lock().unwrap().push(cx.waker().clone());
            if std::mem::replace(&mut self.polled, true) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn join_wide_returns_outputs_in_shape() {
        block_on(join_wide(()));
        assert_eq!(block_on(join_wide(branch(async { 1 }))), 1);
        let nested = join_wide((
            (branch(self_borrowing(1)), ((), branch(async { 2 }))),
            branch(core::future::ready(3)),
            (branch(self_borrowing(4)),),
        ));
        assert_send(&nested);
        assert_eq!(block_on(nested), ((2, ((), 2)), 3, (8,)));
    }

    #[test]
    fn join_wide_polls_each_leaf_until_ready_and_never_after() {
        let polls: [AtomicUsize; 3] = Default::default();
        let output = block_on(join_wide((
            countdown(3, &polls[0]),
            (countdown(1, &polls[1]), countdown(5, &polls[2])),
        )));
        assert_eq!(output, (3, (1, 5)));
        assert_eq!(
            polls.each_ref().map(|n| n.load(Ordering::Relaxed)),
            [3, 1, 5]
        );
    }

    #[test]
    fn join_wide_polls_only_the_leaf_that_woke() {
        const LEN: usize = 16 * 16 * 4;
        let gates = Gates::new(LEN);
        let mut next = 0;
        let mut gate = || {
            next += 1;
            gates.gate(next - 1)
        };
        let mut join = Box::pin(join_wide(sixteen!(sixteen!(four!(gate())))));
        assert!(format!("{join:?}").contains("not started"));
        let parent = Arc::new(Parent::default());
        let waker = Waker::from(parent.clone());

        assert!(poll_once(join.as_mut(), &waker).is_pending());
        assert_eq!(gates.total_polls(), LEN);
        assert!(format!("{join:?}").contains(&format!("remaining: {LEN}")));
        // Open the gates in a scrambled order (389 is prime to LEN), one at a time.
        for (k, id) in (0..LEN).map(|k| k * 389 % LEN).enumerate() {
            gates.open(id);
            assert_eq!(parent.wakes(), k + 1);
            let poll = poll_once(join.as_mut(), &waker);
            assert_eq!(gates.polls(id), 2);
            assert_eq!(gates.total_polls(), LEN + k + 1);
            if k + 1 < LEN {
                assert!(poll.is_pending());
            } else {
                let Poll::Ready(output) = poll else {
                    panic!("not ready")
                };
                assert_eq!(
                    (output.0 .0 .0, output.0 .1 .2, output.15 .15 .3),
                    (0, 6, LEN - 1)
                );
            }
        }
        assert!(format!("{join:?}").contains("done"));
    }

    #[test]
    fn join_wide_polls_not_unpin_futures() {
        let mut join = pin!(join_wide((
            (branch(self_borrowing(1)),),
            branch(self_borrowing(2))
        )));
        let parent = Arc::new(Parent::default());
        let waker = Waker::from(parent.clone());
        // Each leaf woke itself in the first poll and was polled again in the same call.
        assert_eq!(poll_once(join.as_mut(), &waker), Poll::Ready(((2,), 4)));
        assert!(parent.wakes() <= 2);
    }

    #[test]
    fn wakers_outlive_the_join() {
        let wakers = Mutex::new(Vec::new());
        let parent = Arc::new(Parent::default());
        let waker = Waker::from(parent.clone());
        let stash = || {
            branch(Stash {
                wakers: &wakers,
                polled: false,
            })
        };
        let mut join = Box::pin(join_wide((stash(), stash())));
        assert!(poll_once(join.as_mut(), &waker).is_pending());
        let first: Vec<Waker> = wakers.lock().unwrap().clone();
        assert_eq!(first.len(), 2);

        first[0].wake_by_ref();
        assert_eq!(parent.wakes(), 1);
        assert!(poll_once(join.as_mut(), &waker).is_pending());
        // Leaf 0 is done: its wakers do nothing.
        first[0].wake_by_ref();
        let clone = first[0].clone();
        clone.wake();
        assert_eq!(parent.wakes(), 1);
        let clone = first[1].clone();
        clone.wake();
        assert_eq!(parent.wakes(), 2);
        assert_eq!(poll_once(join.as_mut(), &waker), Poll::Ready(((), ())));

        // Wakers woken after the join was dropped keep the allocation alive.
        drop(join);
        for waker in wakers.lock().unwrap().iter() {
            waker.wake_by_ref();
            let clone = waker.clone();
            clone.wake();
        }
        assert_eq!(parent.wakes(), 2);
        assert!(Arc::strong_count(&parent) > 2);
        // Freed with the last waker (which drops the join's stored waker).
        drop(first);
        wakers.lock().unwrap().clear();
        assert_eq!(Arc::strong_count(&parent), 2);
    }

    #[test]
    fn pending_join_dropped_then_woken() {
        let wakers = Mutex::new(Vec::new());
        let parent = Arc::new(Parent::default());
        let mut join = Box::pin(join_wide(branch(Stash {
            wakers: &wakers,
            polled: false,
        })));
        assert!(poll_once(join.as_mut(), &Waker::from(parent.clone())).is_pending());
        drop(join);
        let stashed = wakers.lock().unwrap().pop().unwrap();
        stashed.wake_by_ref();
        assert_eq!(parent.wakes(), 1);
        stashed.wake();
        assert_eq!(Arc::strong_count(&parent), 1);
    }

    #[test]
    #[should_panic(expected = "polled after completion")]
    fn join_wide_polled_after_completion_panics() {
        let mut join = pin!(join_wide(branch(async {})));
        let waker = Waker::noop();
        assert!(poll_once(join.as_mut(), waker).is_ready());
        let _ = poll_once(join.as_mut(), waker);
    }

    #[test]
    fn wakers_woken_from_other_threads() {
        const LEN: usize = 16 * 16;
        for _ in 0..20 {
            let gates = Gates::new(LEN);
            let mut next = 0;
            let mut gate = || {
                next += 1;
                gates.gate(next - 1)
            };
            let join = join_wide(sixteen!(sixteen!(gate())));
            std::thread::scope(|scope| {
                for thread in 0..4 {
                    let gates = &gates;
                    scope.spawn(move || {
                        // Wait for the join's first poll, then open a quarter of the gates.
                        while gates.polls(LEN - 1) == 0 {
                            std::thread::yield_now();
                        }
                        for id in (thread..LEN).step_by(4) {
                            gates.open(id);
                        }
                    });
                }
                let output = block_on(join);
                assert_eq!((output.0 .0, output.15 .15), (0, LEN - 1));
            });
            assert!(gates.total_polls() <= 2 * LEN);
        }
    }
}
