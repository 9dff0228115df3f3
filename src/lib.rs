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
/// A statement `name = EXPR;` declares a task. `EXPR` is any expression whose value is a
/// future (or [`IntoFuture`](core::future::IntoFuture)); the task's value is that future's
/// output. Statements may come in any order. An optional trailing expression, which may use
/// any task, is what the whole graph resolves to; without one it resolves to `()`.
///
/// A task depends on every other task whose name appears in its expression: in arguments,
/// method receivers, closures, nested blocks and `async` blocks, and in the arguments of
/// macro calls such as `vec![a, b]` or `format!("{a}")`. A name that the expression binds
/// itself (a closure parameter, a `let`, a `match` arm) is not a task there. Every other
/// identifier is an ordinary variable from the surrounding scope: that is how parameters
/// enter a graph.
///
/// In macro calls, every argument naming a task is a use, and so is `{name}` in the format
/// string of the format macros of std, `log`, `tracing`, `anyhow` and `eyre` (`format!`,
/// `println!`, `info!`, `bail!`, ..); in other macros a string literal is text, so pass the
/// task as an argument (`my_log!("{}", name)`). A `dag!` inside a task hides the names it
/// defines; `stringify!`, `concat!`, `env!` and the like use nothing. Arguments that are not
/// expressions are read token by token, where every identifier naming a task is a use, even
/// one the macro binds (a `tokio::select!` branch `a = fut => ..`): give those another name.
///
/// A task may have doc comments (`/// ..`); its only other attributes are those of
/// [placement](#placement).
///
/// The expression of a task is evaluated once all the tasks it uses have their values, at
/// that moment and never later. No task waits for a task it does not use.
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
/// - A task used by value by one other task (or the trailing expression) is moved there.
/// - A task used by value by several is cloned for all but one of them; use `Arc` for values
///   that are costly to clone. Each consumer gets its own value, so inside one expression the
///   usual rules apply (`f(a, a)` needs `a: Copy`, as in plain Rust).
/// - `&name`, a method call `name.method()`, a field `name.field` and an index `name[i]`
///   borrow the value: no clone. A consumer that only borrows shares the value with the
///   others; one that moves it waits for the borrowers if they run before it, and otherwise
///   gets a clone. A method that takes `self` (`name.into_bytes()`) or a field moved out of
///   the value moves out of the task itself, which works for its only consumer; where others
///   use it too, write the call by value (`String::into_bytes(name)`) to get a clone.
/// - Inside a `move` closure or an `async move` block a task is taken by value.
/// - `name(..)` calls the function (or closure) of that name from the surrounding scope, even
///   when a task has the same name; call a task holding a closure as `(name)(..)`.
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
/// # Fallible tasks
///
/// `name = EXPR?;` awaits, then applies `?` (only there: a `?` inside a task's expression may
/// apply to a block the task is wrapped in, so make the fallible step a task of its own). A
/// graph with any `?` task resolves to `Result<T, E>`, the trailing expression wrapped in `Ok` for you, like a `try` block. `E` is
/// [`anyhow::Error`](https://docs.rs/anyhow) by default, so tasks with different error types
/// mix freely, and the error names the task that failed:
///
/// ```
/// use dagjoin::dag;
/// # async fn fetch_user(id: u32) -> Result<String, std::io::Error> {
/// #     Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"))
/// # }
/// # async fn parse(s: &str) -> Result<u32, std::num::ParseIntError> { s.parse() }
///
/// # #[cfg(feature = "anyhow")]
/// # futures::executor::block_on(async {
/// let err = dag! {
///     fetch_user = fetch_user(7)?;     // `fetch_user(..)` calls the function
///     n          = parse("12")?;
///     (fetch_user, n)
/// }
/// .await
/// .unwrap_err();
/// assert_eq!(format!("{err:#}"), "task `fetch_user` failed: connection refused");
/// # });
/// ```
///
/// A library that must not expose `anyhow` names its own error type first in the body with
/// `type Error = MyError;`; each task's error is converted with `From`, as `?` does.
///
/// The first error ends the run at that moment: tasks in flight are dropped (cancelled) then,
/// and tasks that have not started never start.
///
/// # Placement
///
/// By default a task is polled on the graph's own task: concurrency without threads. Two
/// attributes move a task elsewhere (feature `tokio`, on by default):
///
/// - `#[spawn]` runs the task's future as its own tokio task, in parallel with the rest on a
///   multi-threaded runtime. The future must be `Send + 'static`: it takes its inputs by value
///   (`&name` in a spawned task is a compile error).
/// - `#[blocking]` runs a synchronous expression on tokio's blocking pool, for CPU-bound or
///   blocking work. The expression becomes a `move` closure, so it owns every task it names.
///
/// Dropping the graph's future aborts its spawned tasks; a blocking closure that is already
/// running cannot be interrupted and its result is discarded. A panic in any task reaches the
/// task awaiting the graph with its original message.
///
/// ```
/// use dagjoin::dag;
/// # async fn download(n: u64) -> Vec<u8> { vec![1; n as usize] }
///
/// # #[cfg(feature = "tokio")]
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let out = dag! {
///     data = download(1000);
///     #[blocking]
///     sum  = data.iter().map(|&b| u64::from(b)).sum::<u64>();
///     #[spawn]
///     len  = async move { data.len() };
///     (sum, len)
/// }
/// .await;
/// assert_eq!(out, (1000, 1000));
/// # });
/// ```
///
/// # Compile errors
///
/// A dependency cycle (`` dependency cycle: `a` -> `b` -> `a` ``, at the reference that closes
/// it), a task that uses itself, a name defined twice, an unknown or repeated attribute,
/// `&name` into a `#[spawn]` task, `&mut name` of a task, misplaced or repeated options and
/// malformed statements are compile errors pointing at the tokens to fix, all of them at once.
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

#[cfg(feature = "engine")]
pub use dag_engine as runtime;

/// Not public API: what the code generated by [`dag!`] names. It may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use dag_macros::dag_impl;
    #[cfg(feature = "anyhow")]
    pub use dag_runtime::{anyhow, task_error};
    pub use dag_runtime::{branch, join, join_wide, try_join, try_join_wide, Owned, Slot};
    #[cfg(feature = "tokio")]
    pub use dag_runtime::{spawn, spawn_blocking};

    /// The graph's future, unchanged. Returning `dag! { .. }` from a function then does not
    /// read as a hand-written `async fn` to lints such as `clippy::manual_async_fn`.
    #[inline]
    pub fn dag<F: core::future::Future>(future: F) -> F {
        future
    }

    #[cfg(not(feature = "tokio"))]
    pub use self::disabled::{spawn, spawn_blocking};

    #[cfg(not(feature = "anyhow"))]
    pub use self::disabled::{anyhow, task_error};

    /// Stand-ins for what a disabled feature provides: using them is a compile error that
    /// names the feature.
    #[allow(
        dead_code,
        reason = "only some of these are used, depending on the features"
    )]
    mod disabled {
        #[diagnostic::on_unimplemented(
            message = "`#[spawn]` and `#[blocking]` tasks need the `tokio` feature of `dagjoin`",
            label = "this task is placed on tokio"
        )]
        pub trait NeedsTokioFeature {}

        #[diagnostic::on_unimplemented(
            message = "fallible tasks need the `anyhow` feature of `dagjoin`, or an error type chosen with `type Error = YourError;`",
            label = "this task's error needs a type to go into"
        )]
        pub trait NeedsAnyhowFeature {}

        pub fn spawn<F: core::future::Future + NeedsTokioFeature>(future: F) -> F {
            future
        }

        pub fn spawn_blocking<F: FnOnce() -> T + NeedsTokioFeature, T>(
            _: F,
        ) -> core::future::Pending<T> {
            core::future::pending()
        }

        pub mod anyhow {
            /// The error type of a fallible graph without the `anyhow` feature.
            #[derive(Debug)]
            pub struct Error(pub(in crate::__private) ());
        }

        pub fn task_error<E: NeedsAnyhowFeature>(_: E, _: &'static str) -> anyhow::Error {
            anyhow::Error(())
        }
    }
}
