//! Fallible nodes: `name = EXPR?;` makes the graph resolve to a `Result`, the first error
//! ends the run at once, and the error says which node failed.

#![allow(clippy::unused_async, reason = "stand-ins for real async tasks")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dagjoin::dag;
use tokio::time::Instant;

mod common;
use common::DropGuard;

async fn fetch_user(id: u32) -> Result<String, std::io::Error> {
    if id == 0 {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    } else {
        Ok(format!("user{id}"))
    }
}

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse {:?}", self.0)
    }
}

impl std::error::Error for ParseError {}

async fn parse(text: &str) -> Result<u32, ParseError> {
    text.parse().map_err(|_| ParseError(text.to_owned()))
}

async fn plain(x: u32) -> u32 {
    x
}

#[tokio::test]
async fn success_wraps_the_output_in_ok() {
    let out: anyhow::Result<(String, u32)> = dag! {
        user = fetch_user(7)?;
        n    = parse("41")?;
        m    = plain(n + 1);
        (user, m)
    }
    .await;
    assert_eq!(out.unwrap(), ("user7".to_owned(), 42));
}

#[tokio::test]
async fn without_trailing_expression_a_fallible_graph_gives_ok_unit() {
    let out = dag! {
        a = parse("1")?;
        b = plain(a);
    }
    .await;
    assert!(matches!(out, Ok(())));
}

#[tokio::test]
async fn errors_name_the_failing_node_and_mix_types() {
    let err = dag! {
        fetch_user = fetch_user(0)?;
        n          = parse("12")?;
        (fetch_user, n)
    }
    .await
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "task `fetch_user` failed: connection refused"
    );
    let io = err
        .downcast_ref::<std::io::Error>()
        .expect("the original error is kept");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);

    let err = dag! {
        user = fetch_user(1)?;
        n    = parse("twelve")?;
        (user, n)
    }
    .await
    .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "task `n` failed: cannot parse \"twelve\""
    );
}

/// A library's own error type, converted with `From`.
#[derive(Debug, PartialEq)]
enum AppError {
    Io(std::io::ErrorKind),
    Parse(String),
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        AppError::Io(e.kind())
    }
}

impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        AppError::Parse(e.0)
    }
}

#[tokio::test]
async fn a_chosen_error_type_is_converted_with_from() {
    let run = |id: u32, text: &'static str| {
        dag! {
            move;
            type Error = AppError;
            user = fetch_user(id)?;
            n    = parse(text)?;
            (user, n)
        }
    };
    let ok: Result<(String, u32), AppError> = run(3, "4").await;
    assert_eq!(ok, Ok(("user3".to_owned(), 4)));
    assert_eq!(
        run(0, "4").await,
        Err(AppError::Io(std::io::ErrorKind::ConnectionRefused))
    );
    assert_eq!(run(3, "x").await, Err(AppError::Parse("x".to_owned())));
}

#[tokio::test(start_paused = true)]
async fn the_first_error_ends_the_run_at_once() {
    let t0 = Instant::now();
    let dropped = Arc::new(AtomicBool::new(false));
    let consumer_ran = AtomicUsize::new(0);
    let slow_task = {
        let dropped = dropped.clone();
        async move {
            let _guard = DropGuard(dropped);
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<u32, std::io::Error>(1)
        }
    };
    let failing = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Err::<u32, _>(std::io::Error::other("boom"))
    };
    let result = dag! {
        slow = slow_task?;
        bad  = failing?;
        after = async { consumer_ran.fetch_add(1, Ordering::SeqCst); bad + 1 };
        (slow, after)
    }
    .await;
    let err = result.unwrap_err();
    assert_eq!(format!("{err:#}"), "task `bad` failed: boom");
    assert_eq!(
        t0.elapsed(),
        Duration::from_millis(100),
        "ends when `bad` fails, not when `slow` would finish"
    );
    assert!(
        dropped.load(Ordering::SeqCst),
        "the sibling in flight was dropped"
    );
    assert_eq!(
        consumer_ran.load(Ordering::SeqCst),
        0,
        "a node after the failure never runs"
    );
}

#[tokio::test(start_paused = true)]
async fn errors_end_graphs_with_slots_too() {
    // a -> c, b -> c, b -> d: not series-parallel; `d` waits on a slot when `a` fails.
    let t0 = Instant::now();
    let result = dag! {
        a = async { tokio::time::sleep(Duration::from_millis(50)).await; Err::<u32, _>(std::io::Error::other("a broke")) }?;
        b = async { tokio::time::sleep(Duration::from_millis(10)).await; 2u32 };
        c = async { a + b };
        d = async { tokio::time::sleep(Duration::from_secs(5)).await; b };
        (c, d)
    }
    .await;
    assert_eq!(
        format!("{:#}", result.unwrap_err()),
        "task `a` failed: a broke"
    );
    assert_eq!(t0.elapsed(), Duration::from_millis(50));
}
