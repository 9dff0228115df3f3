//! Joins: run a set of branches concurrently, in one task, and return all their outputs.
//!
//! A join takes a [`Branches`]: a [`Branch`] (one future) or a tuple of up to 16 `Branches`,
//! nested as deep as needed. [`join()`] polls every unfinished branch on every wake-up, which is
//! the cheapest for a few dozen branches and never allocates. [`join_wide()`] gives each branch
//! its own waker and polls only the branches that woke, for one allocation per run.
//!
//! [`try_join()`] and [`try_join_wide()`] are their fail-fast versions, for branches whose
//! futures output `Result<_, E>` (a [`TryBranches<E>`]): they return the first error as soon as
//! a branch fails, and otherwise all the `Ok` values, in the same shape.
//!
//! ```
//! use dag_runtime::{branch, join, join_wide, try_join, try_join_wide};
//!
//! # futures::executor::block_on(async {
//! let (a, (b, c)) = join((branch(async { 1 }), (branch(async { 'b' }), branch(async { "c" })))).await;
//! assert_eq!((a, b, c), (1, 'b', "c"));
//! assert_eq!(join_wide((branch(async { 1 }), branch(async { 2 }))).await, (1, 2));
//!
//! let ok = try_join((branch(async { Ok::<_, String>(1) }), branch(async { Ok('b') })));
//! assert_eq!(ok.await, Ok((1, 'b')));
//! let failed = try_join_wide((
//!     branch(async { Ok(1) }),
//!     branch(async { Err::<u32, _>(format!("node `b` failed")) }),
//!     branch(core::future::pending::<Result<u32, String>>()),
//! ));
//! assert_eq!(failed.await, Err("node `b` failed".to_owned()));
//! # });
//! ```

use core::alloc::Layout;
use core::convert::Infallible;
use core::fmt;
use core::future::{Future, IntoFuture};
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::alloc::{alloc, dealloc, handle_alloc_error};

use atomic_waker::AtomicWaker;

/// Projects a pinned value to one of its fields (structural pinning).
///
/// Only for fields that are pinned structurally: the containing type (a tuple, [`Join`]) never
/// moves the field out, has no `Drop` impl, and is `Unpin` only if the field is.
macro_rules! pin_field {
    ($pinned:expr, $field:tt) => {{
        let pinned: Pin<&mut _> = $pinned;
        // SAFETY: the field is pinned structurally (see the macro's contract), so a pinned
        // container makes a pinned field; the closure only borrows it.
        unsafe { Pin::map_unchecked_mut(pinned, |container| &mut container.$field) }
    }};
}

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

/// The state of a [`WideJoin`] or [`TryWideJoin`].
enum WideState {
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
    fn poll<B: Branches, E>(
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
    fn fields(&self, debug: &mut fmt::DebugStruct<'_, '_>, len: usize) {
        debug.field("leaves", &len);
        match self {
            WideState::Start => debug.field("state", &format_args!("not started")),
            WideState::Running { remaining, .. } => debug.field("remaining", remaining),
            WideState::Done => debug.field("state", &format_args!("done")),
        };
    }
}

/// The wakers of some of a [`WideJoin`]'s leaves (a contiguous range in depth-first order),
/// handed to [`Branches::poll_all_with`].
#[derive(Clone, Copy)]
pub struct Leaves<'a> {
    shared: &'a Shared,
    start: usize,
    len: usize,
}

impl<'a> Leaves<'a> {
    /// The number of leaves.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no leaves.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Splits into the first `mid` leaves and the others.
    ///
    /// # Panics
    ///
    /// If `mid > self.len()`.
    #[inline]
    pub fn split_at(self, mid: usize) -> (Leaves<'a>, Leaves<'a>) {
        assert!(
            mid <= self.len,
            "split point {mid} out of range for {} leaves",
            self.len
        );
        let first = Leaves { len: mid, ..self };
        let rest = Leaves {
            start: self.start + mid,
            len: self.len - mid,
            ..self
        };
        (first, rest)
    }

    /// Polls leaf `index` (in `0..len()`): calls `poll` with a context holding that leaf's own
    /// waker; `poll` returns whether the leaf is done.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()`.
    #[inline]
    pub fn poll(self, index: usize, poll: impl FnOnce(&mut Context<'_>) -> bool) -> bool {
        assert!(
            index < self.len,
            "leaf index {index} out of range for {} leaves",
            self.len
        );
        let index = self.start + index;
        let data = self
            .shared
            .entry_ptr(index)
            .as_ptr()
            .cast_const()
            .cast::<()>();
        // SAFETY: `data` points to the entry of leaf `index`, as `VTABLE` requires. A waker made
        // from it owns a reference to the allocation; this one borrows the reference of
        // `self.shared` instead, which outlives it: it is never dropped (`ManuallyDrop`) and only
        // lent to `poll` (which can clone it: clones take their own reference).
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) });
        let done = poll(&mut Context::from_waker(&waker));
        if done {
            self.shared.entry(index).done.store(true, Ordering::Relaxed);
        }
        done
    }
}

impl fmt::Debug for Leaves<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaves")
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

/// A reference (counted) to what a [`WideJoin`] shares with its leaves' wakers: one allocation
/// holding a [`Header`], then an [`Entry`] per leaf (at [`ENTRIES`]), then the ready set: a
/// word of 64 bits per 64 leaves, then a summary word of 64 bits per 64 words (at
/// `Header::words`). A leaf's waker points to its entry.
struct Shared {
    header: NonNull<Header>,
}

struct Header {
    /// References: the join's, and one per leaf waker.
    refs: AtomicUsize,
    /// The join's task.
    parent: AtomicWaker,
    /// The number of leaves.
    len: usize,
    /// Offset of the ready set from the start of the allocation.
    words: usize,
}

struct Entry {
    /// This entry's leaf: `self` is entry `index`.
    index: usize,
    /// Set by the join when the leaf is done, after which its waker does nothing.
    done: AtomicBool,
}

impl Entry {
    #[inline]
    fn is_done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }
}

/// Offset of the entries from the start of the allocation.
const ENTRIES: usize = size_of::<Header>().next_multiple_of(align_of::<Entry>());

/// Past it, a reference count would overflow (as `Arc` does, abort).
const MAX_REFS: usize = isize::MAX.unsigned_abs();

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_waker, wake, wake_by_ref, drop_waker);

// SAFETY: `Shared` is a reference-counted pointer, like `Arc<Header>`, to data that is only
// accessed through shared references and is `Send + Sync` (atomics, `AtomicWaker`, and fields
// written once before the allocation is shared).
unsafe impl Send for Shared {}
// SAFETY: see `Send`.
unsafe impl Sync for Shared {}

impl Shared {
    /// Allocates the shared data of `len` leaves, none ready.
    fn new(len: usize) -> Shared {
        let (layout, words) = Self::layout(len);
        // SAFETY: `layout` is not zero-sized: it holds a `Header`.
        let base = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(base) else {
            handle_alloc_error(layout)
        };
        // SAFETY: `base` is a fresh allocation of `layout`, which places a `Header` at 0, `len`
        // entries at `ENTRIES`, and the ready set's words at `words`, each aligned.
        unsafe {
            base.cast::<Header>().write(Header {
                refs: AtomicUsize::new(1),
                parent: AtomicWaker::new(),
                len,
                words,
            });
            let entries = base.add(ENTRIES).cast::<Entry>();
            for index in 0..len {
                entries.add(index).write(Entry {
                    index,
                    done: AtomicBool::new(false),
                });
            }
            let (leaf_words, summary_words) = Self::word_counts(len);
            // All-zero bytes are a valid `AtomicU64` of 0.
            base.add(words)
                .cast::<AtomicU64>()
                .write_bytes(0, leaf_words + summary_words);
        }
        Shared {
            header: base.cast(),
        }
    }

    /// The allocation's layout for `len` leaves, and the offset of the ready set.
    fn layout(len: usize) -> (Layout, usize) {
        const TOO_WIDE: &str = "too many leaves in a `WideJoin`";
        let (leaf_words, summary_words) = Self::word_counts(len);
        let entries = Layout::array::<Entry>(len).expect(TOO_WIDE);
        let words = Layout::array::<AtomicU64>(leaf_words + summary_words).expect(TOO_WIDE);
        let (layout, entries) = Layout::new::<Header>().extend(entries).expect(TOO_WIDE);
        debug_assert_eq!(entries, ENTRIES);
        let (layout, words) = layout.extend(words).expect(TOO_WIDE);
        (layout.pad_to_align(), words)
    }

    /// The number of ready-set words and of summary words for `len` leaves.
    fn word_counts(len: usize) -> (usize, usize) {
        let words = len.div_ceil(64);
        (words, words.div_ceil(64))
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while `self` holds a reference; the header is only ever
        // accessed through shared references.
        unsafe { self.header.as_ref() }
    }

    /// A pointer to the entry of leaf `index`, valid for the whole allocation (to go back to
    /// the header from a waker).
    #[inline]
    fn entry_ptr(&self, index: usize) -> NonNull<Entry> {
        assert!(index < self.header().len, "leaf index out of range");
        // SAFETY: entry `index` is inside the allocation (`index < len`).
        unsafe {
            self.header
                .cast::<u8>()
                .add(ENTRIES)
                .cast::<Entry>()
                .add(index)
        }
    }

    #[inline]
    fn entry(&self, index: usize) -> &Entry {
        // SAFETY: `entry_ptr` is in bounds and initialised; entries are only accessed shared.
        unsafe { self.entry_ptr(index).as_ref() }
    }

    /// The ready set: its words, and its summary words.
    fn words(&self) -> (&[AtomicU64], &[AtomicU64]) {
        let header = self.header();
        let (leaf_words, summary_words) = Self::word_counts(header.len);
        // SAFETY: the allocation holds `leaf_words + summary_words` initialised words at
        // `header.words`; they are only accessed shared.
        let words = unsafe {
            let start = self
                .header
                .cast::<u8>()
                .add(header.words)
                .cast::<AtomicU64>();
            core::slice::from_raw_parts(start.as_ptr(), leaf_words + summary_words)
        };
        words.split_at(leaf_words)
    }

    /// All the leaves.
    #[inline]
    fn leaves(&self) -> Leaves<'_> {
        Leaves {
            shared: self,
            start: 0,
            len: self.header().len,
        }
    }

    /// Wakes leaf `index` unless it is done: marks it ready and wakes the join's task.
    fn wake_leaf(&self, index: usize) {
        if self.entry(index).is_done() {
            return;
        }
        let (words, summary) = self.words();
        let word = index / 64;
        // Release: the drain that takes the bit sees what happened before the wake. The
        // first bit set in a word (since the drain took it) sets the word's summary bit, after
        // it, so a drain that sees the summary bit then sees the word's bits.
        if words[word].fetch_or(1 << (index % 64), Ordering::AcqRel) == 0 {
            summary[word / 64].fetch_or(1 << (word % 64), Ordering::Release);
        }
        self.header().parent.wake();
    }

    /// Takes the ready set, calls `poll` on each ready leaf in increasing order, returns how
    /// many there were. Costs one load per summary word, plus the ready leaves.
    fn drain(&self, mut poll: impl FnMut(usize)) -> usize {
        let (words, summary) = self.words();
        let mut count = 0;
        for (s, summary_word) in summary.iter().enumerate() {
            if summary_word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut summary_bits = summary_word.swap(0, Ordering::Acquire);
            while summary_bits != 0 {
                let word = s * 64 + summary_bits.trailing_zeros() as usize;
                summary_bits &= summary_bits - 1;
                let mut bits = words[word].swap(0, Ordering::Acquire);
                while bits != 0 {
                    poll(word * 64 + bits.trailing_zeros() as usize);
                    bits &= bits - 1;
                    count += 1;
                }
            }
        }
        count
    }

    /// Borrows the reference owned by the waker whose data pointer is `data`, and returns the
    /// waker's leaf.
    ///
    /// # Safety
    ///
    /// `data` is the data pointer of a live waker made by [`Leaves::poll`] (or cloned from one).
    unsafe fn from_waker(data: *const ()) -> (ManuallyDrop<Shared>, usize) {
        let entry = data.cast::<Entry>();
        // SAFETY: `data` points to an entry, which holds its index, inside an allocation kept
        // alive by the waker; it was derived from the allocation's pointer, so going back to
        // the header stays inside the allocation.
        unsafe {
            let index = (*entry).index;
            let header = entry.sub(index).byte_sub(ENTRIES).cast::<Header>();
            let shared = Shared {
                header: NonNull::new_unchecked(header.cast_mut()),
            };
            (ManuallyDrop::new(shared), index)
        }
    }
}

impl Clone for Shared {
    fn clone(&self) -> Shared {
        if self.header().refs.fetch_add(1, Ordering::Relaxed) > MAX_REFS {
            std::process::abort();
        }
        Shared {
            header: self.header,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // As `Arc`: Release, and Acquire before freeing, so every use happens before the free.
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let (layout, _) = Self::layout(self.header().len);
        // SAFETY: that was the last reference, so nothing else can reach the allocation. Only
        // the header needs dropping (its `AtomicWaker`); entries and words are plain data.
        unsafe {
            self.header.drop_in_place();
            dealloc(self.header.as_ptr().cast(), layout);
        }
    }
}

/// `RawWakerVTable::clone` for leaf wakers: takes another reference.
///
/// # Safety (of the four vtable functions)
///
/// `data` is the data pointer of a live leaf waker, made by [`Leaves::poll`] or cloned.
unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: see the vtable functions' contract.
    let (shared, _) = unsafe { Shared::from_waker(data) };
    mem::forget(Shared::clone(&shared));
    RawWaker::new(data, &VTABLE)
}

/// `RawWakerVTable::wake`: wakes, then drops the waker's reference.
unsafe fn wake(data: *const ()) {
    // SAFETY: see `clone_waker`; the waker is consumed after it woke.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

/// `RawWakerVTable::wake_by_ref`: marks the leaf ready and wakes the join's task.
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: see `clone_waker`.
    let (shared, index) = unsafe { Shared::from_waker(data) };
    shared.wake_leaf(index);
}

/// `RawWakerVTable::drop`: drops the waker's reference.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: see `clone_waker`; this is the waker's own reference, dropped once.
    let (shared, _) = unsafe { Shared::from_waker(data) };
    drop(ManuallyDrop::into_inner(shared));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;

    /// Repeats an expression (evaluated each time, in order) into a tuple.
    macro_rules! four {
        ($e:expr) => {
            ($e, $e, $e, $e)
        };
    }
    macro_rules! ten {
        ($e:expr) => {
            ($e, $e, $e, $e, $e, $e, $e, $e, $e, $e)
        };
    }
    macro_rules! sixteen {
        ($e:expr) => {
            (
                $e, $e, $e, $e, $e, $e, $e, $e, $e, $e, $e, $e, $e, $e, $e, $e,
            )
        };
    }

    /// A leaf that is ready after `left` polls (waking itself before), counts its polls, and
    /// panics if polled after it was ready.
    struct Countdown<'a> {
        left: usize,
        polls: &'a AtomicUsize,
    }

    fn countdown(left: usize, polls: &AtomicUsize) -> Branch<Countdown<'_>> {
        branch(Countdown { left, polls })
    }

    impl Future for Countdown<'_> {
        type Output = usize;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            assert!(self.left > 0, "polled after ready");
            self.left -= 1;
            let polls = self.polls.fetch_add(1, Ordering::Relaxed) + 1;
            if self.left == 0 {
                Poll::Ready(polls)
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Wakes itself and returns `Pending` once, then is ready.
    #[derive(Default)]
    struct YieldNow(bool);

    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// A `!Unpin` future: holds a borrow of its own local across an await.
    async fn self_borrowing(n: u32) -> u32 {
        let local = [n, n];
        let borrow = &local;
        YieldNow::default().await;
        borrow[0] + borrow[1]
    }

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Parent {
        wakes: AtomicUsize,
    }

    impl Wake for Parent {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Parent {
        fn wakes(&self) -> usize {
            self.wakes.load(Ordering::SeqCst)
        }
    }

    /// Leaves that each wait for their own gate to open.
    struct Gates {
        gates: Vec<Mutex<(bool, Option<Waker>)>>,
        polls: Vec<AtomicUsize>,
    }

    struct Gate<'a> {
        gates: &'a Gates,
        id: usize,
    }

    impl Gates {
        fn new(len: usize) -> Gates {
            Gates {
                gates: (0..len).map(|_| Mutex::default()).collect(),
                polls: (0..len).map(|_| AtomicUsize::new(0)).collect(),
            }
        }

        fn gate(&self, id: usize) -> Branch<Gate<'_>> {
            branch(Gate { gates: self, id })
        }

        fn open(&self, id: usize) {
            let waker = {
                let mut gate = self.gates[id].lock().unwrap();
                gate.0 = true;
                gate.1.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }

        fn polls(&self, id: usize) -> usize {
            self.polls[id].load(Ordering::SeqCst)
        }

        fn total_polls(&self) -> usize {
            (0..self.polls.len()).map(|id| self.polls(id)).sum()
        }
    }

    impl Future for Gate<'_> {
        type Output = usize;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            self.gates.polls[self.id].fetch_add(1, Ordering::SeqCst);
            let mut gate = self.gates.gates[self.id].lock().unwrap();
            if gate.0 {
                return Poll::Ready(self.id);
            }
            gate.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }

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

    impl Gates {
        /// A leaf that waits for gate `id`, then fails with `Err(id)` if `fail(id)`, else
        /// returns `Ok(id)`.
        fn try_gate(
            &self,
            id: usize,
            fail: fn(usize) -> bool,
        ) -> Branch<impl Future<Output = Result<usize, usize>> + '_> {
            let gate = Gate { gates: self, id };
            branch(async move {
                let id = gate.await;
                if fail(id) {
                    Err(id)
                } else {
                    Ok(id)
                }
            })
        }
    }

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

    /// A countdown leaf (ready after `left` polls) that outputs `result`.
    fn try_countdown<'a, T: 'a, E: 'a>(
        left: usize,
        polls: &'a AtomicUsize,
        result: Result<T, E>,
    ) -> Branch<impl Future<Output = Result<T, E>> + 'a> {
        branch(async move {
            Countdown { left, polls }.await;
            result
        })
    }

    fn poll_counts<const N: usize>(polls: &[AtomicUsize; N]) -> [usize; N] {
        polls.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    fn poll_once<F: Future>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(waker))
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        futures::executor::block_on(future)
    }

    fn assert_send<T: Send>(_: &T) {}

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
    #[should_panic(expected = "polled after it completed")]
    fn join_polled_after_completion_panics() {
        let mut join = pin!(join(branch(async {})));
        let waker = Waker::noop();
        assert!(poll_once(join.as_mut(), waker).is_ready());
        let _ = poll_once(join.as_mut(), waker);
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

    #[test]
    fn ready_set_drains_marked_leaves_in_order() {
        let len = 10_000;
        let shared = Shared::new(len);
        let mut marked = vec![9_999, 0, 63, 64, 4_095, 4_096, 5_000, 8_191, 8_192, 64];
        for &index in &marked {
            shared.wake_leaf(index);
        }
        marked.sort_unstable();
        marked.dedup();
        let mut drained = Vec::new();
        assert_eq!(shared.drain(|index| drained.push(index)), marked.len());
        assert_eq!(drained, marked);
        assert_eq!(shared.drain(|_| unreachable!()), 0);
        assert_eq!(shared.leaves().split_at(3).1.len(), len - 3);
        assert!(format!("{:?}", shared.leaves()).contains("10000"));
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
