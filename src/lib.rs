//! Run a graph of async tasks with the most parallelism there is.
//!
//! Write which task needs which, and [`dag!`] checks the graph at compile time (a cycle is a
//! compile error that names it) and generates the code that starts every task the moment its
//! inputs are ready: for series-parallel graphs, the nested joins a careful person writes by
//! hand; for every other graph, the same plus a few single-task slots, so that no task waits
//! for one it does not need.
//!
//! ```
//! use dagjoin::dag;
//!
//! async fn fetch_user(id: u32) -> String { format!("user{id}") }
//! async fn fetch_orders(id: u32) -> Vec<u32> { vec![id * 10, id * 10 + 1] }
//! async fn price(orders: &[u32]) -> u32 { orders.iter().sum() }
//! async fn render(user: String, total: u32) -> String { format!("{user}: {total}") }
//!
//! # futures::executor::block_on(async {
//! let id = 7;
//! let page = dag! {
//!     user   = fetch_user(id);          // `user` and `orders` start at once
//!     orders = fetch_orders(id);
//!     total  = price(&orders);          // starts when `orders` is done
//!     page   = render(user, total);     // starts when both are done
//!     page
//! }
//! .await;
//! assert_eq!(page, "user7: 141");
//! # });
//! ```
//!
//! See [`dag!`] for the language, and the crate's README for how the schedule is computed
//! and what it costs.

/// Declares a graph of async tasks and runs each the moment its inputs are ready.
///
/// # Statements
///
/// A statement `name = EXPR;` declares a node. `EXPR` is any expression whose value is a
/// future (or [`IntoFuture`](core::future::IntoFuture)); the node's value is that future's
/// output. Statements may come in any order. An optional trailing expression, which may use
/// any node, is what the whole graph resolves to; without one it resolves to `()`.
///
/// A node depends on every other node whose name appears in its expression: in arguments,
/// method receivers, closures, nested blocks and `async` blocks, and in the arguments of
/// macro calls such as `vec![a, b]` or `format!("{a}")`. A name that the expression binds
/// itself (a closure parameter, a `let`, a `match` arm) is not a node there. Every other
/// identifier is an ordinary variable from the surrounding scope: that is how parameters
/// enter a graph.
///
/// The expression of a node is evaluated once all the nodes it uses have their values, at
/// that moment and never later. No node waits for a node it does not use.
///
/// # The future
///
/// `dag! { .. }` is an expression of type `impl Future<Output = T>`, lazy like an `async`
/// block: nothing runs until it is polled. Like an `async` block it borrows the variables it
/// captures; write `move;` first to make it own them, for example to return it from a
/// closure:
///
/// ```
/// use dagjoin::dag;
/// # async fn double(x: u64) -> u64 { x * 2 }
/// # async fn add(a: u64, b: u64) -> u64 { a + b }
///
/// let graph = |x: u64| dag! {
///     move;
///     a = double(x);
///     b = double(a);
///     c = add(a, b);
///     c
/// };
/// # futures::executor::block_on(async {
/// assert_eq!(graph(1).await, 6);
/// assert_eq!(graph(10).await, 60);
/// # });
/// ```
///
/// Everything runs on the task that polls the future: it works on any executor and needs no
/// `Send` bounds of its own.
///
/// # Values
///
/// - A node used by value by one other node (or the trailing expression) is moved there.
/// - A node used by value by several is cloned for all but one of them; use `Arc` for values
///   that are costly to clone. Each consumer gets its own value, so inside one expression the
///   usual rules apply (`f(a, a)` needs `a: Copy`, as in plain Rust).
/// - `&name`, a method call `name.method()`, a field `name.field` and an index `name[i]`
///   borrow the value: no clone. A consumer that only borrows shares the value with the
///   others; one that moves it waits for the borrowers if they run before it, and otherwise
///   gets a clone.
/// - Inside a `move` closure or an `async move` block a node is taken by value.
///
/// ```
/// use std::sync::Arc;
/// use dagjoin::dag;
/// # async fn load() -> Arc<Vec<u8>> { Arc::new(vec![1, 2, 3]) }
/// # async fn checksum(data: &[u8]) -> u32 { data.iter().map(|&b| u32::from(b)).sum() }
/// # async fn store(data: Arc<Vec<u8>>) -> usize { data.len() }
///
/// # futures::executor::block_on(async {
/// let (sum, len) = dag! {
///     data = load();
///     sum  = checksum(&data);      // borrows
///     len  = store(data.clone());  // an explicit clone of the `Arc`
///     (sum, len)
/// }
/// .await;
/// assert_eq!((sum, len), (6, 3));
/// # });
/// ```
///
/// # Compile errors
///
/// A dependency cycle (`` dependency cycle: `a` -> `b` -> `a` ``, at the reference that closes
/// it), a node that uses itself, a name defined twice, an attribute on a node and malformed
/// statements are compile errors pointing at the tokens to fix, all of them at once.
///
/// ```compile_fail
/// # async fn f(x: u32) -> u32 { x }
/// let _ = dagjoin::dag! {
///     a = f(b);
///     b = f(a);
/// };
/// ```
#[macro_export]
macro_rules! dag {
    ($($body:tt)*) => {
        $crate::__private::dag_impl! { $crate; $($body)* }
    };
}

/// Not public API: what the code generated by [`dag!`] names. It may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use dag_macros::dag_impl;
    #[cfg(feature = "anyhow")]
    pub use dag_runtime::{anyhow, node_error};
    pub use dag_runtime::{branch, join, join_wide, try_join, try_join_wide, Slot};
    #[cfg(feature = "tokio")]
    pub use dag_runtime::{spawn, spawn_blocking};
}
