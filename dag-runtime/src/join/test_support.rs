//! Futures, wakers and helpers shared by the join tests.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Wake;

use super::branch::{branch, Branch};
use crate::attempt::YieldNow;

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
pub(super) struct Countdown<'a> {
    left: usize,
    polls: &'a AtomicUsize,
}

pub(super) fn countdown(left: usize, polls: &AtomicUsize) -> Branch<Countdown<'_>> {
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

/// A `!Unpin` future: holds a borrow of its own local across an await.
pub(super) async fn self_borrowing(n: u32) -> u32 {
    let local = [n, n];
    let borrow = &local;
    YieldNow::default().await;
    borrow[0] + borrow[1]
}

/// A waker that counts its wakes.
#[derive(Default)]
pub(super) struct Parent {
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
    pub(super) fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

/// Leaves that each wait for their own gate to open.
pub(super) struct Gates {
    gates: Vec<Mutex<(bool, Option<Waker>)>>,
    polls: Vec<AtomicUsize>,
}

pub(super) struct Gate<'a> {
    gates: &'a Gates,
    id: usize,
}

impl Gates {
    pub(super) fn new(len: usize) -> Gates {
        Gates {
            gates: (0..len).map(|_| Mutex::default()).collect(),
            polls: (0..len).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    pub(super) fn gate(&self, id: usize) -> Branch<Gate<'_>> {
        branch(Gate { gates: self, id })
    }

    pub(super) fn open(&self, id: usize) {
        let waker = {
            let mut gate = self.gates[id].lock().unwrap();
            gate.0 = true;
            gate.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub(super) fn polls(&self, id: usize) -> usize {
        self.polls[id].load(Ordering::SeqCst)
    }

    pub(super) fn total_polls(&self) -> usize {
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

impl Gates {
    /// A leaf that waits for gate `id`, then fails with `Err(id)` if `fail(id)`, else
    /// returns `Ok(id)`.
    pub(super) fn try_gate(
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

/// A countdown leaf (ready after `left` polls) that outputs `result`.
pub(super) fn try_countdown<'a, T: 'a, E: 'a>(
    left: usize,
    polls: &'a AtomicUsize,
    result: Result<T, E>,
) -> Branch<impl Future<Output = Result<T, E>> + 'a> {
    branch(async move {
        Countdown { left, polls }.await;
        result
    })
}

pub(super) fn poll_once<F: Future>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(waker))
}

pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

pub(super) fn assert_send<T: Send>(_: &T) {}

pub(super) use {four, sixteen, ten};
