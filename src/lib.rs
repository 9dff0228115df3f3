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
/// [placement](#placement) and of [timeouts and retries](#timeouts-and-retries).
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
///   others. One that moves it gets the value itself when the borrowers run before it (it
///   uses their values), and a clone when they may run at the same time: for a value that
///   is not `Clone`, that is a compile error that names the borrowers and says how to order
///   the mover after them. A method that takes `self` (`name.into_bytes()`) or a field moved out of
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
/// # Timeouts and retries
///
/// Two attributes bound a task's attempts, with the semantics of the engine's
/// `TaskOptions` (feature `tokio` for the timer):
///
/// - `#[timeout(LIMIT)]` is the longest one attempt may take. A task that takes longer fails
///   with [`TimedOut`], whose message names the task and the limit
///   (``task `fetch` timed out after 50ms``), and a graph with such a task is fallible even
///   without `?`. The limit counts from the moment the task starts; an attempt that ends at
///   the very instant of its limit succeeds. A graph with its own error type needs
///   `From<dagjoin::TimedOut>` for it. A `#[blocking]` task cannot have a timeout: its closure
///   cannot be interrupted.
/// - `#[retry(N)]` tries a failed attempt (an error of a `?` task, or a timeout) again, up to
///   `N` more times; `#[retry(N, backoff = WAIT)]` waits `WAIT` before the first retry and
///   twice as long before each further one. When no retry is left, the last attempt's error
///   is the task's. A panic is not retried: it reaches the task awaiting the graph, as
///   everywhere in `dag!`.
///
/// `LIMIT` and `WAIT` are `Duration`s, or integer literals with a unit: `500ms`, `2s`,
/// `100us`, `10ns`. `N` is a `u32`. Both may be expressions, evaluated when the task starts.
///
/// Each attempt evaluates the task's expression again. It gets a fresh clone of every task it
/// takes by value (so those must be `Clone`) and borrows the ones it borrows; a variable from
/// outside the graph is used as in the body of a loop, so a retried task that moves one must
/// clone it itself.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use dagjoin::dag;
/// # async fn fetch(calls: &AtomicU32, id: u32) -> Result<u32, std::io::Error> {
/// #     if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(std::io::Error::other("busy")) } else { Ok(id) }
/// # }
/// # async fn render(id: u32) -> String { format!("page {id}") }
///
/// # #[cfg(all(feature = "tokio", feature = "anyhow"))]
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let calls = AtomicU32::new(0);
/// let page = dag! {
///     #[timeout(2s)]
///     #[retry(3, backoff = 100ms)]
///     user = fetch(&calls, 7)?;        // fails twice, then succeeds
///     page = render(user);
///     page
/// }
/// .await;
/// assert_eq!(page.unwrap(), "page 7");
/// assert_eq!(calls.load(Ordering::SeqCst), 3);
/// # });
/// ```
///
/// # Compile errors
///
/// A dependency cycle (`` dependency cycle: `a` -> `b` -> `a` ``, at the reference that closes
/// it), a task that uses itself, a name defined twice, an unknown or repeated attribute, a
/// timeout or retry that cannot apply (a `#[blocking]` timeout, a retry of a task that cannot
/// fail, a duration without a unit), `&name` into a `#[spawn]` task, `&mut name` of a task, misplaced or repeated options and
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

pub use dag_runtime::TimedOut;

#[cfg(feature = "engine")]
pub use dag_engine as runtime;

/// Not public API: what the code generated by [`dag!`] names. It may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use dag_macros::dag_impl;
    #[cfg(feature = "anyhow")]
    pub use dag_runtime::{anyhow, task_error};
    pub use dag_runtime::{
        branch, clone_for_retry, join, join_wide, timed_out_into, try_join, try_join_wide, Owned,
        Retry, Slot, TimedOut,
    };
    #[cfg(feature = "tokio")]
    pub use dag_runtime::{spawn, spawn_blocking, timeout};

    /// The error of a graph whose node timed out, without its own error type.
    #[cfg(feature = "anyhow")]
    pub fn timed_out(error: TimedOut) -> anyhow::Error {
        anyhow::Error::new(error)
    }

    /// Retries with a backoff, which waits on tokio's timer.
    #[cfg(feature = "tokio")]
    pub fn retry_with_backoff(retries: u32, backoff: core::time::Duration) -> Retry {
        Retry::with_backoff(retries, backoff)
    }

    /// What a task's expression must be: a future, or `IntoFuture`. Its own trait, so that the
    /// error for anything else says so at the task, and not "remove the `.await`".
    #[diagnostic::on_unimplemented(
        message = "a task's expression must be a future, and `{Self}` is not one",
        label = "this is a `{Self}`, not a future",
        note = "a task is `name = EXPR;` where `EXPR` is a future (or `IntoFuture`): call an `async fn`, or write `async {{ .. }}` around a value"
    )]
    pub trait TaskFuture {
        type Future: core::future::Future<Output = Self::Output>;
        type Output;
        fn task_future(self) -> Self::Future;
    }

    #[diagnostic::do_not_recommend]
    impl<F: core::future::IntoFuture> TaskFuture for F {
        type Future = F::IntoFuture;
        type Output = F::Output;
        #[inline]
        fn task_future(self) -> Self::Future {
            self.into_future()
        }
    }

    /// The future of a task's expression `f`: `f.into_future()`.
    #[inline]
    pub fn task<F: TaskFuture>(f: F) -> impl core::future::Future<Output = F::Output> {
        f.task_future()
    }

    /// The graph's future, unchanged. Returning `dag! { .. }` from a function then does not
    /// read as a hand-written `async fn` to lints such as `clippy::manual_async_fn`.
    #[inline]
    pub fn dag<F: core::future::Future>(future: F) -> F {
        future
    }

    #[cfg(not(feature = "tokio"))]
    pub use self::disabled::{retry_with_backoff, spawn, spawn_blocking, timeout};

    #[cfg(not(feature = "anyhow"))]
    pub use self::disabled::{anyhow, task_error, timed_out};

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
            message = "`#[timeout]` and a `#[retry]` backoff wait on tokio's timer: they need the `tokio` feature of `dagjoin`",
            label = "this waits on tokio's timer"
        )]
        pub trait NeedsTokioTimer {}

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

        pub fn timeout<D: NeedsTokioTimer, F: core::future::IntoFuture>(
            _: D,
            _: &'static str,
            _: F,
        ) -> core::future::Pending<Result<F::Output, super::TimedOut>> {
            core::future::pending()
        }

        pub fn retry_with_backoff<D: NeedsTokioTimer>(retries: u32, _: D) -> super::Retry {
            super::Retry::new(retries)
        }

        pub fn timed_out<E: NeedsAnyhowFeature>(_: E) -> anyhow::Error {
            anyhow::Error(())
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
