//! [`join()`]: polls every unfinished branch on every wake-up.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::branch::Branches;

/// Future returned by [`join()`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Join<B> {
    branches: B,
}

/// Runs `branches` concurrently; returns their outputs, in the same shape.
///
/// Every poll polls every unfinished leaf: the cheapest for a few dozen branches. Allocates
/// nothing.
pub fn join<B: Branches>(branches: B) -> Join<B> {
    Join { branches }
}

impl<B: Branches> Future for Join<B> {
    type Output = B::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
        let mut branches = pin_field!(self.as_mut(), branches);
        if branches.as_mut().poll_all(cx) {
            Poll::Ready(branches.take_output())
        } else {
            Poll::Pending
        }
    }
}

impl<B: Branches> fmt::Debug for Join<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join")
            .field("leaves", &B::LEN)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::branch::branch;
    use crate::join::test_support::{
        assert_send, block_on, countdown, poll_once, self_borrowing, sixteen,
    };
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Waker;

    fn leaf_count<B: Branches>(_: &B) -> usize {
        B::LEN
    }

    #[test]
    fn join_returns_outputs_in_shape() {
        block_on(join(()));
        assert_eq!(block_on(join(branch(async { 1 }))), 1);
        assert_eq!(
            block_on(join((
                branch(async { 1 }),
                branch(async { 'b' }),
                branch(async { "c" })
            ))),
            (1, 'b', "c")
        );
        let nested = join((
            (branch(async { 1 }), ((), branch(async { 2 }))),
            branch(core::future::ready(3)),
            (branch(async { 4 }),),
        ));
        assert_send(&nested);
        assert_eq!(block_on(nested), ((1, ((), 2)), 3, (4,)));
        let wide = (
            sixteen!(branch(core::future::ready(1))),
            sixteen!(()),
            ((),),
        );
        assert_eq!(leaf_count(&wide), 16);
        assert_eq!(block_on(join(wide)).0 .15, 1);
    }

    #[test]
    fn join_polls_not_unpin_futures() {
        let output = block_on(join((
            branch(self_borrowing(1)),
            (branch(self_borrowing(2)), branch(self_borrowing(3))),
        )));
        assert_eq!(output, (2, (4, 6)));
    }

    #[test]
    fn join_polls_each_leaf_until_ready_and_never_after() {
        let polls: [AtomicUsize; 3] = Default::default();
        let output = block_on(join((
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
    #[should_panic(expected = "polled after it completed")]
    fn join_polled_after_completion_panics() {
        let mut join = pin!(join(branch(async {})));
        let waker = Waker::noop();
        assert!(poll_once(join.as_mut(), waker).is_ready());
        let _ = poll_once(join.as_mut(), waker);
    }

    #[test]
    fn debug_output() {
        let branch = branch(async { 1 });
        assert_eq!(format!("{branch:?}"), "Branch(running)");
        assert_eq!(
            format!("{:?}", join((branch, ()))),
            "Join { leaves: 1, .. }"
        );
    }
}
