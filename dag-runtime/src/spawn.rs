//! Placement on tokio: [`spawn()`] runs a `#[spawn]` node as its own task, which a
//! multi-threaded runtime can run in parallel with the rest of the graph, and
//! [`spawn_blocking()`] runs a `#[blocking]` node on tokio's blocking pool.
//!
//! Both return a future that yields the node's value and behaves as if the node ran inline: a
//! panic resumes, with its original payload, in the task that awaits it, and dropping the future
//! (when the graph is dropped) aborts the task, so that no task outlives its graph.
//!
//! ```
//! use dag_runtime::{spawn, spawn_blocking};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let doubled = spawn(async { 21 * 2 });
//! let summed = spawn_blocking(|| (1..=9).sum::<u32>());
//! assert_eq!((doubled.await, summed.await), (42, 45));
//! # });
//! ```

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::panic::resume_unwind;

use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinHandle};

/// Future returned by [`spawn()`]: the spawned task's output.
///
/// Dropping it aborts the task.
#[must_use = "futures do nothing unless you `.await` or poll them; dropping this one aborts the task"]
pub struct Spawned<T> {
    handle: JoinHandle<T>,
}

/// Runs `future` as its own task on the current tokio runtime (for a `#[spawn]` node); returns
/// a future of its output.
///
/// Awaiting the result yields the output. If the task panicked, the panic resumes in the
/// awaiting task with its original payload. Dropping the result aborts the task.
///
/// # Panics
///
/// If called outside a tokio runtime; and, when awaited, if the task panicked (with its panic)
/// or was cancelled because the runtime is shutting down.
pub fn spawn<F>(future: F) -> Spawned<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = current_runtime("spawn", "run it as a task");
    Spawned {
        handle: handle.spawn(future),
    }
}

impl<T> Future for Spawned<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let output = ready!(Pin::new(&mut self.handle).poll(cx));
        Poll::Ready(unwrap_task(output, "spawn", "task"))
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        // Does nothing if the task is done.
        self.handle.abort();
    }
}

impl<T> fmt::Debug for Spawned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("finished", &self.handle.is_finished())
            .finish_non_exhaustive()
    }
}

/// Future returned by [`spawn_blocking()`]: the closure's result.
///
/// Dropping it aborts the closure if it has not started yet; a closure that is running cannot
/// be interrupted: it runs to its end and its result is dropped.
#[must_use = "futures do nothing unless you `.await` or poll them; dropping this one aborts the closure if it has not started"]
pub struct Blocking<T> {
    handle: JoinHandle<T>,
}

/// Runs `f` on the current tokio runtime's blocking pool (for a `#[blocking]` node); returns a
/// future of its result.
///
/// Awaiting the result yields what `f` returned. If `f` panicked, the panic resumes in the
/// awaiting task with its original payload. Dropping the result aborts `f` if it has not
/// started.
///
/// # Panics
///
/// If called outside a tokio runtime; and, when awaited, if `f` panicked (with its panic) or was
/// cancelled because the runtime is shutting down.
pub fn spawn_blocking<F, T>(f: F) -> Blocking<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let handle = current_runtime("blocking", "run it on the blocking pool");
    Blocking {
        handle: handle.spawn_blocking(f),
    }
}

impl<T> Future for Blocking<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let output = ready!(Pin::new(&mut self.handle).poll(cx));
        Poll::Ready(unwrap_task(output, "blocking", "closure"))
    }
}

impl<T> Drop for Blocking<T> {
    fn drop(&mut self) {
        // Does nothing if the closure is running or done.
        self.handle.abort();
    }
}

impl<T> fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocking")
            .field("finished", &self.handle.is_finished())
            .finish_non_exhaustive()
    }
}

/// The current tokio runtime, or a panic that says `#[attribute]` needs one to `what`.
fn current_runtime(attribute: &str, what: &str) -> Handle {
    Handle::try_current().unwrap_or_else(|_| {
        panic!(
            "`#[{attribute}]` needs a tokio runtime to {what}, but the graph is not running \
             inside one: await it inside `#[tokio::main]`, `#[tokio::test]` or \
             `Runtime::block_on`, or remove `#[{attribute}]`"
        )
    })
}

/// A task's output: resumes its panic, or panics if it was cancelled.
fn unwrap_task<T>(output: Result<T, JoinError>, attribute: &str, what: &str) -> T {
    match output {
        Ok(output) => output,
        Err(error) if error.is_panic() => resume_unwind(error.into_panic()),
        Err(error) => {
            // Only this module's `Drop` aborts, and then nothing polls any more: the runtime is
            // shutting down.
            debug_assert!(error.is_cancelled());
            panic!(
                "the {what} of a `#[{attribute}]` node was cancelled: the tokio runtime is \
                 shutting down"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::any::Any;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::{self, ThreadId};
    use std::time::Duration;

    use tokio::runtime::{Builder, Runtime};
    use tokio::sync::oneshot;

    use crate::{branch, join};

    /// How long a rendezvous waits for the other party before it fails the test.
    const PATIENCE: Duration = Duration::from_secs(30);

    /// A barrier of 2 that blocks its thread, and gives up (returns `false`) after
    /// [`PATIENCE`]: a test fails instead of hanging when the two parties cannot run at once.
    #[derive(Default)]
    struct Rendezvous {
        arrived: Mutex<usize>,
        all: Condvar,
    }

    impl Rendezvous {
        fn wait(&self) -> bool {
            let mut arrived = self.arrived.lock().unwrap();
            *arrived += 1;
            self.all.notify_all();
            let (arrived, timeout) = self
                .all
                .wait_timeout_while(arrived, PATIENCE, |arrived| *arrived < 2)
                .unwrap();
            drop(arrived);
            !timeout.timed_out()
        }
    }

    /// Sets its flag when dropped.
    struct DropGuard(Arc<AtomicBool>);

    impl Drop for DropGuard {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn multi_thread(workers: usize) -> Runtime {
        Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .unwrap()
    }

    fn current_thread() -> Runtime {
        Builder::new_current_thread().enable_time().build().unwrap()
    }

    /// The message of a panic payload.
    fn message(payload: &(dyn Any + Send)) -> &str {
        payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("<not a string>")
    }

    /// Awaits `future` in a task of its own and returns the message it panicked with.
    async fn panic_message(future: impl Future + Send + 'static) -> String {
        let error = tokio::spawn(async move {
            future.await;
        })
        .await
        .unwrap_err();
        message(&*error.into_panic()).to_owned()
    }

    #[test]
    fn spawned_futures_run_in_parallel_on_workers() {
        let rendezvous = Arc::new(Rendezvous::default());
        let task = || {
            let rendezvous = rendezvous.clone();
            spawn(async move { (rendezvous.wait(), thread::current().id()) })
        };
        let ((met_a, a), (met_b, b)): ((bool, ThreadId), (bool, ThreadId)) =
            multi_thread(2).block_on(async { join((branch(task()), branch(task()))).await });
        // Each blocked its worker until the other arrived: they ran at the same time.
        assert!(met_a && met_b, "the spawned tasks did not run in parallel");
        let here = thread::current().id();
        assert!(a != b && a != here && b != here, "{a:?} {b:?} {here:?}");
    }

    #[test]
    fn spawned_panics_resume_with_their_payload() {
        current_thread().block_on(async {
            let message = panic_message(spawn(async { panic!("node {} broke", 7) })).await;
            assert_eq!(message, "node 7 broke");
            let message = panic_message(spawn(async { panic!("static message") })).await;
            assert_eq!(message, "static message");
        });
    }

    #[test]
    fn dropping_spawned_aborts_the_task() {
        let dropped = Arc::new(AtomicBool::new(false));
        current_thread().block_on(async {
            let (started_tx, started_rx) = oneshot::channel();
            let (gone_tx, gone_rx) = oneshot::channel::<()>();
            let guard = DropGuard(dropped.clone());
            let spawned = spawn(async move {
                let _guard = guard;
                let _gone = gone_tx;
                started_tx.send(()).unwrap();
                core::future::pending::<()>().await;
            });
            assert!(format!("{spawned:?}").starts_with("Spawned { finished: false"));
            started_rx.await.unwrap();
            assert!(!dropped.load(Ordering::SeqCst));
            drop(spawned);
            // Resolves (with an error) when the task's future, which holds the sender, is dropped.
            assert!(gone_rx.await.is_err());
            assert!(dropped.load(Ordering::SeqCst));
        });
    }

    #[test]
    #[should_panic(expected = "`#[spawn]` needs a tokio runtime")]
    fn spawn_outside_a_runtime_panics() {
        drop(spawn(async {}));
    }

    #[test]
    #[should_panic(expected = "the task of a `#[spawn]` node was cancelled")]
    fn spawned_cancelled_by_shutdown_panics() {
        let runtime = current_thread();
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        let _context = handle.enter();
        futures::executor::block_on(spawn(async { 1 }));
    }

    #[test]
    fn blocking_closures_overlap() {
        let rendezvous = Arc::new(Rendezvous::default());
        let closure = || {
            let rendezvous = rendezvous.clone();
            spawn_blocking(move || rendezvous.wait())
        };
        let met =
            current_thread().block_on(async { join((branch(closure()), branch(closure()))).await });
        assert_eq!(met, (true, true), "the blocking closures did not overlap");
    }

    #[test]
    fn blocking_panics_resume_with_their_payload() {
        current_thread().block_on(async {
            let message = panic_message(spawn_blocking(|| panic!("disk {} failed", 3))).await;
            assert_eq!(message, "disk 3 failed");
        });
    }

    #[test]
    fn dropping_blocking_does_not_wait_and_aborts_it_if_not_started() {
        let runtime = Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let (release, released) = std::sync::mpsc::channel::<()>();
        runtime.block_on(async {
            // Takes the only blocking thread until released.
            let running = spawn_blocking(move || released.recv().is_ok());
            let ran = ran.clone();
            let queued = spawn_blocking(move || ran.store(true, Ordering::SeqCst));
            assert!(format!("{queued:?}").starts_with("Blocking { finished: false"));
            // Neither drop waits for its closure.
            drop(queued);
            drop(running);
        });
        release.send(()).unwrap();
        // Waits for the blocking thread, which skips the aborted closure.
        drop(runtime);
        assert!(!ran.load(Ordering::SeqCst), "an aborted closure ran");
    }

    #[test]
    #[should_panic(expected = "`#[blocking]` needs a tokio runtime")]
    fn spawn_blocking_outside_a_runtime_panics() {
        drop(spawn_blocking(|| {}));
    }

    #[test]
    #[should_panic(expected = "the closure of a `#[blocking]` node was cancelled")]
    fn blocking_cancelled_by_shutdown_panics() {
        let runtime = current_thread();
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        let _context = handle.enter();
        futures::executor::block_on(spawn_blocking(|| 1));
    }
}
