//! The branches of a join: the [`Branches`] and [`TryBranches`] traits, a [`Branch`] (one
//! leaf), and their impls for `()` and tuples. Every join takes these.

use core::fmt;
use core::future::{Future, IntoFuture};
use core::mem;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::ready::Leaves;

/// A heterogeneous set of branches that a join polls.
///
/// Implemented for [`Branch`] (one leaf) and for tuples of `Branches` of arity 0 to 16, nested
/// arbitrarily: `((branch(a), branch(b)), branch(c))` has three leaves, numbered 0 to 2 in
/// depth-first order, and outputs `((A, B), C)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a set of join branches",
    note = "wrap each future in `branch(..)` and group branches in tuples of at most 16"
)]
pub trait Branches {
    /// The number of leaves.
    const LEN: usize;

    /// The outputs: a leaf's future's output, or a tuple of the children's outputs.
    type Output;

    /// Polls every leaf that is not done yet; returns whether all leaves are done.
    fn poll_all(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool;

    /// Polls leaf `index` (in `0..LEN`, depth-first) unless it is done; returns whether it is
    /// done, now or before.
    fn poll_index(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> bool;

    /// Like [`poll_all`](Branches::poll_all), but polls leaf `i` with the waker of `leaves`'s
    /// leaf `i` (`leaves` has `LEN` leaves).
    fn poll_all_with(self: Pin<&mut Self>, leaves: Leaves<'_>) -> bool;

    /// Takes every leaf's output. Called once, after all leaves are done.
    fn take_output(self: Pin<&mut Self>) -> Self::Output;
}

/// A set of join branches whose futures all output `Result<_, E>`: what the fail-fast joins
/// [`try_join()`] and [`try_join_wide()`] take.
///
/// Implemented for a [`Branch`] whose future outputs `Result<T, E>` (a [`BranchResult<E>`]),
/// for `()`, and for tuples of `TryBranches<E>` of arity 1 to 16, nested arbitrarily, like
/// [`Branches`]. The error type is a parameter of the trait, not an associated type, so that
/// `()` fits in a fallible join of any error type.
///
/// A join polls leaves with [`Branches`]'s methods or the `try_` ones below, and checks only a
/// leaf that has just completed, once: the `try_` methods check the leaves they see complete,
/// and a join that polls leaf `i` with [`poll_index`](Branches::poll_index) calls
/// [`take_error`](TryBranches::take_error) when it completes.
///
/// [`try_join()`]: super::try_join()
/// [`try_join_wide()`]: super::try_join_wide()
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a set of fallible join branches that fail with `{E}`",
    label = "every branch of this fallible join must output `Result<_, {E}>`",
    note = "every branch of a fallible join must output `Result<_, E>` with the same error type `E`: convert the errors to one type (for example with `map_err`)",
    note = "wrap each future in `branch(..)` and group branches in tuples of at most 16"
)]
pub trait TryBranches<E>: Branches {
    /// The leaves' `Ok` values, in the shape of [`Branches::Output`].
    type Ok;

    /// Like [`poll_all`](Branches::poll_all), but when a leaf completes with an error, returns
    /// the error at once, without polling the leaves after it.
    ///
    /// # Errors
    ///
    /// The error of the first leaf (in depth-first order) that completed with one.
    fn try_poll_all(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Result<bool, E>;

    /// Like [`poll_all_with`](Branches::poll_all_with), but when a leaf completes with an error,
    /// returns the error at once, without polling the leaves after it.
    ///
    /// # Errors
    ///
    /// The error of the first leaf (in depth-first order) that completed with one.
    fn try_poll_all_with(self: Pin<&mut Self>, leaves: Leaves<'_>) -> Result<bool, E>;

    /// Checks leaf `index` (in `0..LEN`, depth-first), which has just completed
    /// ([`poll_index`](Branches::poll_index) returned `true` for it for the first time): if its
    /// output is an error, takes and returns it. Costs what `poll_index` does.
    fn take_error(self: Pin<&mut Self>, index: usize) -> Option<E>;

    /// Takes every leaf's `Ok` value. Called once, after all leaves are done and none failed.
    fn take_ok(self: Pin<&mut Self>) -> Self::Ok;
}

/// The output of a leaf of a fallible join: implemented only for `Result<T, E>`.
///
/// A [`Branch`] is a [`TryBranches<E>`] if its future's output is a `BranchResult<E>`: that
/// bound, rather than one on the future's `Output`, lets a wrong output type (not a `Result`,
/// or another error type) be reported with this trait's message.
#[diagnostic::on_unimplemented(
    message = "a branch of a fallible join outputs `{Self}`, not `Result<_, {E}>`",
    label = "this branch's future must output `Result<_, {E}>`",
    note = "every branch of a fallible join must output `Result<_, E>` with the same error type `E`: convert the errors to one type (for example with `map_err`)"
)]
pub trait BranchResult<E> {
    /// The `Ok` type.
    type Ok;

    /// Whether it is an `Err`.
    fn is_err(&self) -> bool;

    /// Converts to the `Result`.
    ///
    /// # Errors
    ///
    /// The error it holds.
    fn into_result(self) -> Result<Self::Ok, E>;
}

impl<T, E> BranchResult<E> for Result<T, E> {
    type Ok = T;

    fn is_err(&self) -> bool {
        Result::is_err(self)
    }

    fn into_result(self) -> Self {
        self
    }
}

/// One leaf of a join: a future, then its output, then nothing once the output is taken.
pub struct Branch<F: Future> {
    state: BranchState<F>,
}

enum BranchState<F: Future> {
    Running(F),
    Done(F::Output),
    Taken,
}

/// Makes a leaf of a join from a future.
pub fn branch<F: IntoFuture>(future: F) -> Branch<F::IntoFuture> {
    Branch {
        state: BranchState::Running(future.into_future()),
    }
}

// The future is pinned structurally, the output is not.
impl<F: Future + Unpin> Unpin for Branch<F> {}

impl<F: Future> Branch<F> {
    /// Polls the future unless it is done; returns whether it is done.
    fn poll_leaf(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        // SAFETY: `Branch` pins its future structurally: it is never moved, only dropped in place
        // (by `Pin::set` below, or with the branch). Nothing else is pinned.
        let state = unsafe { &mut self.as_mut().get_unchecked_mut().state };
        match state {
            BranchState::Running(future) => {
                // SAFETY: see above; `future` is pinned because `self` is.
                let future = unsafe { Pin::new_unchecked(future) };
                let Poll::Ready(output) = future.poll(cx) else {
                    return false;
                };
                self.set(Branch {
                    state: BranchState::Done(output),
                });
                true
            }
            BranchState::Done(_) | BranchState::Taken => true,
        }
    }

    fn take(self: Pin<&mut Self>) -> F::Output {
        // SAFETY: only a `Done` state is moved out (below), and it holds no pinned data.
        let state = unsafe { &mut self.get_unchecked_mut().state };
        assert!(
            matches!(state, BranchState::Done(_)),
            "a branch's output was taken before it was ready or twice: \
             a join was polled after it completed"
        );
        match mem::replace(state, BranchState::Taken) {
            BranchState::Done(output) => output,
            BranchState::Running(_) | BranchState::Taken => unreachable!(),
        }
    }
}

impl<F: Future> Branches for Branch<F> {
    const LEN: usize = 1;
    type Output = F::Output;

    fn poll_all(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        self.poll_leaf(cx)
    }

    fn poll_index(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> bool {
        assert_eq!(index, 0, "leaf index out of range for a single branch");
        self.poll_leaf(cx)
    }

    fn poll_all_with(self: Pin<&mut Self>, leaves: Leaves<'_>) -> bool {
        leaves.poll(0, |cx| self.poll_leaf(cx))
    }

    fn take_output(self: Pin<&mut Self>) -> F::Output {
        self.take()
    }
}

impl<F: Future> Branch<F> {
    fn is_running(&self) -> bool {
        matches!(self.state, BranchState::Running(_))
    }

    /// Takes the output if it is an error (the branch is then taken), else leaves it.
    fn take_if_error<E>(self: Pin<&mut Self>) -> Option<E>
    where
        F::Output: BranchResult<E>,
    {
        // SAFETY: only a `Done` state is moved out (below), and it holds no pinned data.
        let state = unsafe { &mut self.get_unchecked_mut().state };
        if !matches!(state, BranchState::Done(output) if output.is_err()) {
            return None;
        }
        match mem::replace(state, BranchState::Taken) {
            BranchState::Done(output) => output.into_result().err(),
            BranchState::Running(_) | BranchState::Taken => unreachable!(),
        }
    }

    /// Polls the future unless it is done; returns whether it is done, or its error if it has
    /// just completed with one.
    fn try_poll_leaf<E>(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Result<bool, E>
    where
        F::Output: BranchResult<E>,
    {
        if !self.is_running() {
            // Checked when it completed.
            return Ok(true);
        }
        if !self.as_mut().poll_leaf(cx) {
            return Ok(false);
        }
        self.take_if_error().map_or(Ok(true), Err)
    }
}

impl<E, F: Future<Output: BranchResult<E>>> TryBranches<E> for Branch<F> {
    type Ok = <F::Output as BranchResult<E>>::Ok;

    fn try_poll_all(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Result<bool, E> {
        self.try_poll_leaf(cx)
    }

    fn try_poll_all_with(self: Pin<&mut Self>, leaves: Leaves<'_>) -> Result<bool, E> {
        let mut error = None;
        let done = leaves.poll(0, |cx| {
            self.try_poll_leaf(cx).unwrap_or_else(|e| {
                error = Some(e);
                true
            })
        });
        error.map_or(Ok(done), Err)
    }

    fn take_error(self: Pin<&mut Self>, index: usize) -> Option<E> {
        assert_eq!(index, 0, "leaf index out of range for a single branch");
        self.take_if_error()
    }

    fn take_ok(self: Pin<&mut Self>) -> Self::Ok {
        match self.take().into_result() {
            Ok(value) => value,
            Err(_) => unreachable!("a failed branch's error was not taken"),
        }
    }
}

impl<F: Future> fmt::Debug for Branch<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            BranchState::Running(_) => "running",
            BranchState::Done(_) => "done",
            BranchState::Taken => "taken",
        };
        f.debug_tuple("Branch")
            .field(&format_args!("{state}"))
            .finish()
    }
}

impl Branches for () {
    const LEN: usize = 0;
    type Output = ();

    fn poll_all(self: Pin<&mut Self>, _: &mut Context<'_>) -> bool {
        true
    }

    fn poll_index(self: Pin<&mut Self>, index: usize, _: &mut Context<'_>) -> bool {
        panic!("leaf index {index} out of range for no branches")
    }

    fn poll_all_with(self: Pin<&mut Self>, _: Leaves<'_>) -> bool {
        true
    }

    fn take_output(self: Pin<&mut Self>) {}
}

impl<E> TryBranches<E> for () {
    type Ok = ();

    fn try_poll_all(self: Pin<&mut Self>, _: &mut Context<'_>) -> Result<bool, E> {
        Ok(true)
    }

    fn try_poll_all_with(self: Pin<&mut Self>, _: Leaves<'_>) -> Result<bool, E> {
        Ok(true)
    }

    fn take_error(self: Pin<&mut Self>, index: usize) -> Option<E> {
        panic!("leaf index {index} out of range for no branches")
    }

    fn take_ok(self: Pin<&mut Self>) {}
}

/// Implements `Branches` and `TryBranches` for the tuple of the given `(field type)` pairs.
macro_rules! impl_branches_for_tuple {
    ($(($index:tt $T:ident))+) => {
        impl<$($T: Branches),+> Branches for ($($T,)+) {
            const LEN: usize = 0 $(+ $T::LEN)+;
            type Output = ($($T::Output,)+);

            fn poll_all(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
                let mut done = true;
                $(done &= pin_field!(self.as_mut(), $index).poll_all(cx);)+
                done
            }

            fn poll_index(mut self: Pin<&mut Self>, mut index: usize, cx: &mut Context<'_>) -> bool {
                $(
                    if index < $T::LEN {
                        return pin_field!(self.as_mut(), $index).poll_index(index, cx);
                    }
                    index -= $T::LEN;
                )+
                panic!("leaf index {} out of range for {} branches", index + Self::LEN, Self::LEN)
            }

            fn poll_all_with(mut self: Pin<&mut Self>, leaves: Leaves<'_>) -> bool {
                let mut done = true;
                let mut rest = leaves;
                $(
                    let (first, tail) = rest.split_at($T::LEN);
                    done &= pin_field!(self.as_mut(), $index).poll_all_with(first);
                    rest = tail;
                )+
                debug_assert!(rest.is_empty());
                done
            }

            fn take_output(mut self: Pin<&mut Self>) -> Self::Output {
                ($(pin_field!(self.as_mut(), $index).take_output(),)+)
            }
        }

        impl<Error, $($T: TryBranches<Error>),+> TryBranches<Error> for ($($T,)+) {
            type Ok = ($($T::Ok,)+);

            fn try_poll_all(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Result<bool, Error> {
                let mut done = true;
                $(done &= pin_field!(self.as_mut(), $index).try_poll_all(cx)?;)+
                Ok(done)
            }

            fn try_poll_all_with(mut self: Pin<&mut Self>, leaves: Leaves<'_>) -> Result<bool, Error> {
                let mut done = true;
                let mut rest = leaves;
                $(
                    let (first, tail) = rest.split_at($T::LEN);
                    done &= pin_field!(self.as_mut(), $index).try_poll_all_with(first)?;
                    rest = tail;
                )+
                debug_assert!(rest.is_empty());
                Ok(done)
            }

            fn take_error(mut self: Pin<&mut Self>, mut index: usize) -> Option<Error> {
                $(
                    if index < $T::LEN {
                        return pin_field!(self.as_mut(), $index).take_error(index);
                    }
                    index -= $T::LEN;
                )+
                panic!("leaf index {} out of range for {} branches", index + Self::LEN, Self::LEN)
            }

            fn take_ok(mut self: Pin<&mut Self>) -> Self::Ok {
                ($(pin_field!(self.as_mut(), $index).take_ok(),)+)
            }
        }
    };
}

/// Implements `Branches` and `TryBranches` for every prefix of the given tuple fields.
macro_rules! impl_branches_for_tuples {
    ([$($done:tt)*]) => {};
    ([$($done:tt)*] $next:tt $($rest:tt)*) => {
        impl_branches_for_tuple!($($done)* $next);
        impl_branches_for_tuples!([$($done)* $next] $($rest)*);
    };
}

impl_branches_for_tuples!([] (0 A) (1 B) (2 C) (3 D) (4 E) (5 F) (6 G) (7 H) (8 I) (9 J) (10 K)
    (11 L) (12 M) (13 N) (14 O) (15 P));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::join::test_support::{countdown, self_borrowing};
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Waker;

    #[test]
    fn poll_index_polls_only_that_leaf() {
        let polls: [AtomicUsize; 5] = Default::default();
        let mut branches = pin!((
            countdown(9, &polls[0]),
            ((countdown(9, &polls[1]), countdown(9, &polls[2])), ()),
            ((), (countdown(1, &polls[3]),), countdown(9, &polls[4])),
            branch(self_borrowing(5)),
        ));
        let mut cx = Context::from_waker(Waker::noop());
        for (index, expected_done) in [(2, false), (4, false), (3, true), (3, true), (0, false)] {
            assert_eq!(branches.as_mut().poll_index(index, &mut cx), expected_done);
        }
        let counts = polls.each_ref().map(|n| n.load(Ordering::Relaxed));
        assert_eq!(counts, [1, 0, 1, 1, 1]);
        assert!(!branches.as_mut().poll_index(5, &mut cx));
        assert!(branches.as_mut().poll_index(5, &mut cx));
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn poll_index_out_of_range_panics() {
        let polls = AtomicUsize::new(0);
        let mut branches = pin!((countdown(1, &polls), ((), countdown(1, &polls))));
        branches
            .as_mut()
            .poll_index(2, &mut Context::from_waker(Waker::noop()));
    }

    #[test]
    fn take_error_takes_only_that_leaf_s_error() {
        let mut branches = pin!((
            branch(core::future::ready(Ok::<u8, u8>(1))),
            ((), (branch(core::future::ready(Err::<u8, u8>(2))),)),
        ));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(branches.as_mut().poll_index(1, &mut cx));
        assert_eq!(branches.as_mut().take_error(1), Some(2));
        assert!(branches.as_mut().poll_index(0, &mut cx));
        assert_eq!(branches.as_mut().take_error(0), None);
        // The `Ok` value stays, the error was taken.
        assert_eq!(format!("{:?}", branches.0), "Branch(done)");
        assert_eq!(format!("{:?}", branches.1 .1 .0), "Branch(taken)");
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn take_error_out_of_range_panics() {
        let mut branches = pin!((branch(async { Ok::<(), ()>(()) }), ((),)));
        branches.as_mut().take_error(1);
    }
}
