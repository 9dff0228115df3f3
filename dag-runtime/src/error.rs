//! Errors of fallible graphs: [`task_error()`] says which task failed.
//!
//! ```
//! use dag_runtime::task_error;
//! use std::io;
//!
//! let error = task_error(io::Error::other("connection refused"), "fetch_user");
//! assert_eq!(format!("{error:#}"), "task `fetch_user` failed: connection refused");
//! assert!(error.downcast_ref::<io::Error>().is_some());
//! ```

use core::fmt;

/// Wraps the error of task `task` in an [`anyhow::Error`] whose context names the task.
///
/// The context is ``task `NAME` failed``, so `{:#}` prints
/// ``task `fetch_user` failed: connection refused`` and `{:?}` prints the context, then the
/// original error under `Caused by:`. The original error stays reachable with
/// [`downcast_ref`](anyhow::Error::downcast_ref) and [`chain`](anyhow::Error::chain).
pub fn task_error<E: Into<anyhow::Error>>(error: E, node: &'static str) -> anyhow::Error {
    error.into().context(TaskFailed(node))
}

/// The context [`task_error()`] adds: ``task `NAME` failed``.
struct TaskFailed(&'static str);

impl fmt::Display for TaskFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task `{}` failed", self.0)
    }
}

impl fmt::Debug for TaskFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[derive(Debug)]
    struct Refused;

    impl fmt::Display for Refused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection refused")
        }
    }

    impl std::error::Error for Refused {}

    /// `{:?}` without the backtrace that `RUST_BACKTRACE` may add.
    fn debug(error: &anyhow::Error) -> String {
        let debug = format!("{error:?}");
        match debug.split_once("\n\nStack backtrace:") {
            Some((before, _)) => before.to_owned(),
            None => debug,
        }
    }

    #[test]
    fn io_error_names_the_task() {
        let error = task_error(
            io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused"),
            "fetch_user",
        );
        assert_eq!(format!("{error}"), "task `fetch_user` failed");
        assert_eq!(
            format!("{error:#}"),
            "task `fetch_user` failed: connection refused"
        );
        assert_eq!(
            debug(&error),
            "task `fetch_user` failed\n\nCaused by:\n    connection refused"
        );
        let io = error.downcast_ref::<io::Error>().expect("the io::Error");
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(error.root_cause().to_string(), "connection refused");
        assert_eq!(error.chain().count(), 2);
    }

    #[test]
    fn anyhow_error_keeps_its_context_and_source() {
        let error = anyhow::Error::new(Refused).context("loading the profile");
        let error = task_error(error, "fetch_user");
        assert_eq!(
            format!("{error:#}"),
            "task `fetch_user` failed: loading the profile: connection refused"
        );
        assert_eq!(
            debug(&error),
            "task `fetch_user` failed\n\nCaused by:\n    \
             0: loading the profile\n    1: connection refused"
        );
        assert!(error.downcast_ref::<Refused>().is_some());
        assert_eq!(error.downcast_ref::<&str>(), Some(&"loading the profile"));

        let error = task_error(anyhow::anyhow!("bad input {}", 3), "parse");
        assert_eq!(format!("{error:#}"), "task `parse` failed: bad input 3");
        assert_eq!(
            error.downcast_ref::<String>().map(String::as_str),
            Some("bad input 3")
        );
    }
}
