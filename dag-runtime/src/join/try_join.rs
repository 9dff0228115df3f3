//! The fail-fast joins, [`try_join()`] and [`try_join_wide()`]: they return the first error of a
//! [`TryBranches`] at once. `try_join_wide()` polls with the wide join's [`WideState`].

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::branch::{Branches, TryBranches};
use super::wide::WideState;

/// Future returned by [`try_join()`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct TryJoin<B, E> {
    branches: B,
    done: bool,
    error: PhantomData<fn() -> E>,
}

/// Runs `branches` concurrently until one fails; returns the first error, or all their `Ok`
/// values in the same shape.
///
/// The poll in which a leaf completes with `Err(e)` returns `Err(e)` at once, without polling the
/// leaves after it; the others are dropped with the `TryJoin`. Only the leaf that has just
/// completed is checked. Every poll polls every unfinished leaf, as [`join()`] does. Allocates
/// nothing.
///
/// [`join()`]: super::join()
pub fn try_join<B: TryBranches<E>, E>(branches: B) -> TryJoin<B, E> {
    TryJoin {
        branches,
        done: false,
        error: PhantomData,
    }
}

impl<B, E> TryJoin<B, E> {
    fn project(self: Pin<&mut Self>) -> (Pin<&mut B>, &mut bool) {
        // SAFETY: `branches` is pinned structurally: it is never moved out, `TryJoin` has no
        // `Drop` impl and is `Unpin` only if `B` is (the other fields are `Unpin`). `done` is
        // not pinned.
        unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.branches), &mut this.done)
        }
    }
}

impl<B: TryBranches<E>, E> Future for TryJoin<B, E> {
    type Output = Result<B::Ok, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut branches, done) = self.project();
        assert!(!*done, "`TryJoin` polled after completion");
        let output = match branches.as_mut().try_poll_all(cx) {
            Ok(false) => return Poll::Pending,
            Ok(true) => Ok(branches.take_ok()),
            Err(error) => Err(error),
        };
        *done = true;
        Poll::Ready(output)
    }
}

impl<B: Branches, E> fmt::Debug for TryJoin<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryJoin")
            .field("leaves", &B::LEN)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Future returned by [`try_join_wide()`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct TryWideJoin<B, E> {
    branches: B,
    state: WideState,
    error: PhantomData<fn() -> E>,
}

/// Runs `branches` concurrently until one fails, polling only the leaves that woke; returns the
/// first error, or all their `Ok` values in the same shape.
///
/// Fails fast as [`try_join()`] does (only the leaf that has just completed is checked), and
/// polls and allocates as [`join_wide()`] does.
///
/// [`join_wide()`]: super::join_wide()
pub fn try_join_wide<B: TryBranches<E>, E>(branches: B) -> TryWideJoin<B, E> {
    TryWideJoin {
        branches,
        state: WideState::Start,
        error: PhantomData,
    }
}

impl<B, E> TryWideJoin<B, E> {
    fn project(self: Pin<&mut Self>) -> (Pin<&mut B>, &mut WideState) {
        // SAFETY: `branches` is pinned structurally: it is never moved out, `TryWideJoin` has no
        // `Drop` impl and is `Unpin` only if `B` is (the other fields are `Unpin`). `state` is
        // not pinned.
        unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.branches), &mut this.state)
        }
    }
}

impl<B: TryBranches<E>, E> Future for TryWideJoin<B, E> {
    type Output = Result<B::Ok, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut branches, state) = self.project();
        let poll = state.poll(
            branches.as_mut(),
            cx,
            TryBranches::try_poll_all_with,
            TryBranches::take_error,
        );
        poll.map_ok(|()| branches.take_ok())
    }
}

impl<B: Branches, E> fmt::Debug for TryWideJoin<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("TryWideJoin");
        self.state.fields(&mut debug, B::LEN);
        debug.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::branch::{branch, Branch};
    use crate::join::test_support::{
        assert_send, block_on, four, poll_once, self_borrowing, sixteen, ten, try_countdown, Gates,
        Parent,
    };
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Waker;

    /// Sets its flag when dropped.
    struct DropGuard<'a>(&'a AtomicBool);

    impl Drop for DropGuard<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A leaf that never completes and sets `dropped` when it is dropped.
    fn never(dropped: &AtomicBool) -> Branch<impl Future<Output = Result<u32, &'static str>> + '_> {
        let guard = DropGuard(dropped);
        branch(async move {
            let _guard = guard;
            core::future::pending().await
        })
    }

    fn poll_counts<const N: usize>(polls: &[AtomicUsize; N]) -> [usize; N] {
        polls.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    #[test]
    fn try_joins_return_ok_values_in_shape() {
        let ok = || async { Ok::<_, &str>(1) };
        let nested = || {
            (
                branch(ok()),
                (
                    (),
                    (branch(async { Ok('b') }), branch(self_borrowing_ok(3))),
                ),
                (branch(core::future::ready(Ok("d"))),),
            )
        };
        let expected = Ok((1, ((), ('b', 6)), ("d",)));
        let flat = try_join(nested());
        assert_send(&flat);
        assert_eq!(block_on(flat), expected);
        let wide = try_join_wide(nested());
        assert_send(&wide);
        assert_eq!(block_on(wide), expected);

        assert_eq!(block_on(try_join::<_, u8>(())), Ok(()));
        assert_eq!(block_on(try_join_wide::<_, u8>(((), ()))), Ok(((), ())));
        assert_eq!(block_on(try_join(branch(ok()))), Ok(1));
        assert_eq!(block_on(try_join_wide(branch(ok()))), Ok(1));
        let wide = sixteen!(four!(branch(ok())));
        assert_eq!(block_on(try_join_wide(wide)).map(|v| v.15 .3), Ok(1));
    }

    /// [`self_borrowing`], fallible.
    async fn self_borrowing_ok(n: u32) -> Result<u32, &'static str> {
        Ok(self_borrowing(n).await)
    }

    #[test]
    fn try_join_returns_the_first_error_at_once() {
        let polls: [AtomicUsize; 3] = Default::default();
        let dropped = AtomicBool::new(false);
        let mut join = Box::pin(try_join((
            never(&dropped),
            (
                try_countdown(1, &polls[0], Ok(1)),
                try_countdown(2, &polls[1], Err::<u32, _>("second")),
            ),
            try_countdown(5, &polls[2], Ok(3)),
        )));
        let waker = Waker::noop();
        assert!(poll_once(join.as_mut(), waker).is_pending());
        assert_eq!(poll_counts(&polls), [1, 1, 1]);
        assert!(format!("{join:?}").contains("done: false"));
        // Leaf 2 fails: the leaf after it is not polled, the pending one is not dropped yet.
        assert_eq!(poll_once(join.as_mut(), waker), Poll::Ready(Err("second")));
        assert_eq!(poll_counts(&polls), [1, 2, 1]);
        assert!(format!("{join:?}").contains("done: true"));
        assert!(!dropped.load(Ordering::SeqCst));
        drop(join);
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[test]
    fn try_joins_return_errors_from_nested_tuples() {
        for wide in [false, true] {
            let polls: [AtomicUsize; 4] = Default::default();
            let dropped = AtomicBool::new(false);
            let branches = (
                (
                    try_countdown(2, &polls[0], Ok::<_, &str>(0)),
                    (
                        (),
                        (
                            never(&dropped),
                            (try_countdown(3, &polls[1], Err::<u32, _>("deep")),),
                        ),
                    ),
                ),
                try_countdown(1, &polls[2], Ok(2)),
                ((try_countdown(9, &polls[3], Ok(3)),),),
            );
            let output = if wide {
                block_on(try_join_wide(branches))
            } else {
                block_on(try_join(branches))
            };
            assert_eq!(output, Err("deep"));
            // The last leaf was not polled in the poll in which the deep one failed.
            assert_eq!(poll_counts(&polls), [2, 3, 1, 2], "wide: {wide}");
            assert!(dropped.load(Ordering::SeqCst));
        }
    }

    #[test]
    fn try_joins_fail_in_their_first_poll() {
        let polls: [AtomicUsize; 2] = Default::default();
        let dropped = AtomicBool::new(false);
        let mut join = pin!(try_join_wide((
            (
                never(&dropped),
                try_countdown(1, &polls[0], Err::<u32, _>("one"))
            ),
            try_countdown(1, &polls[1], Err::<u32, _>("two")),
        )));
        assert_eq!(
            poll_once(join.as_mut(), Waker::noop()),
            Poll::Ready(Err("one"))
        );
        assert_eq!(poll_counts(&polls), [1, 0]);
        assert!(format!("{join:?}").contains("done"));

        let polls: [AtomicUsize; 2] = Default::default();
        let mut join = pin!(try_join((
            try_countdown(1, &polls[0], Err::<u8, _>(1)),
            try_countdown(1, &polls[1], Ok::<_, i32>(2)),
        )));
        assert_eq!(poll_once(join.as_mut(), Waker::noop()), Poll::Ready(Err(1)));
        assert_eq!(poll_counts(&polls), [1, 0]);
    }

    #[test]
    fn try_join_wide_fails_at_the_leaf_that_woke() {
        const LEN: usize = 1000;
        let gates = Gates::new(LEN);
        let fail = |id| matches!(id, 700 | 800);
        let mut next = 0;
        let mut gate = || {
            next += 1;
            gates.try_gate(next - 1, fail)
        };
        let mut join = Box::pin(try_join_wide(ten!(ten!(ten!(gate())))));
        let parent = Arc::new(Parent::default());
        let waker = Waker::from(parent.clone());

        assert!(poll_once(join.as_mut(), &waker).is_pending());
        assert_eq!(gates.total_polls(), LEN);
        // 300 leaves complete, in a scrambled order (389 is prime to LEN), one at a time.
        let opened: Vec<usize> = (0..LEN)
            .map(|k| k * 389 % LEN)
            .filter(|&id| !matches!(id, 700 | 800 | 900))
            .take(300)
            .collect();
        for (k, &id) in opened.iter().enumerate() {
            gates.open(id);
            assert!(poll_once(join.as_mut(), &waker).is_pending());
            assert_eq!(gates.polls(id), 2);
            assert_eq!(gates.total_polls(), LEN + k + 1);
        }
        assert!(format!("{join:?}").contains("remaining: 700"));
        // Leaves 700 (fails), 800 (fails) and 900 wake together: the poll stops at 700.
        for id in [900, 800, 700] {
            gates.open(id);
        }
        assert_eq!(poll_once(join.as_mut(), &waker), Poll::Ready(Err(700)));
        assert_eq!(gates.polls(700), 2);
        assert_eq!((gates.polls(800), gates.polls(900)), (1, 1));
        assert_eq!(gates.total_polls(), LEN + opened.len() + 1);
        assert!(format!("{join:?}").contains("done"));
    }

    #[test]
    #[should_panic(expected = "polled after completion")]
    fn try_join_polled_after_completion_panics() {
        let mut join = pin!(try_join(branch(async { Err::<(), ()>(()) })));
        let waker = Waker::noop();
        assert!(poll_once(join.as_mut(), waker).is_ready());
        let _ = poll_once(join.as_mut(), waker);
    }

    #[test]
    #[should_panic(expected = "polled after completion")]
    fn try_join_wide_polled_after_completion_panics() {
        let mut join = pin!(try_join_wide(branch(async { Err::<(), ()>(()) })));
        let waker = Waker::noop();
        assert!(poll_once(join.as_mut(), waker).is_ready());
        let _ = poll_once(join.as_mut(), waker);
    }

    #[test]
    fn try_debug_output() {
        let leaf = || branch(async { Ok::<_, ()>(1) });
        assert_eq!(
            format!("{:?}", try_join((leaf(), leaf()))),
            "TryJoin { leaves: 2, done: false, .. }"
        );
        assert_eq!(
            format!("{:?}", try_join_wide((leaf(), leaf()))),
            "TryWideJoin { leaves: 2, state: not started, .. }"
        );
    }
}
