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
//!     branch(async { Err::<u32, _>(format!("task `b` failed")) }),
//!     branch(core::future::pending::<Result<u32, String>>()),
//! ));
//! assert_eq!(failed.await, Err("task `b` failed".to_owned()));
//! # });
//! ```
//!
//! # Source layout
//!
//! The module is split by concept, and its files import one another in one direction only:
//!
//! - `ready`: the unsafe part of the wide joins, their ready set: one shared allocation per
//!   join, the leaves' own wakers ([`Leaves`]) and their `RawWakerVTable` functions. Imports no
//!   other file of the module.
//! - `branch`: the [`Branches`] and [`TryBranches`] traits, [`Branch`], and their impls for `()`
//!   and tuples (one macro implements both traits for a tuple). Imports `ready`.
//! - `tuple`: [`join()`]. Imports `branch`.
//! - `wide`: [`join_wide()`], and the polling of only the leaves that woke, which is generic over
//!   the error type. Imports `branch` and `ready`.
//! - `try_join`: both fail-fast joins, [`try_join()`] and [`try_join_wide()`]. Imports `branch`
//!   and `wide`.
//!
//! Nothing imports `try_join`: what the fail-fast joins need is below them, `TryBranches` in
//! `branch` (its tuple impls cannot leave the macro that writes the `Branches` ones) and the
//! wide polling in `wide` (which knows no error type). So no file imports one that imports it
//! back. Both fail-fast joins share a file, rather than each sitting next to its plain join,
//! because they are one concept (first error at once) and their tests run both on the same
//! branches.

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

mod branch;
mod ready;
#[cfg(test)]
mod test_support;
mod try_join;
mod tuple;
mod wide;

pub use branch::{branch, Branch, BranchResult, Branches, TryBranches};
pub use ready::Leaves;
pub use try_join::{try_join, try_join_wide, TryJoin, TryWideJoin};
pub use tuple::{join, Join};
pub use wide::{join_wide, WideJoin};
