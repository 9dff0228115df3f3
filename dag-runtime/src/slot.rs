//! [`Slot`]: a once-cell that hands a node's value from the branch that produces it to the
//! branches that consume it, inside one join.
//!
//! A slot lives on the stack of the task that runs the join (no `Arc`, no lock, no allocation).
//! It is still `Send`/`Sync` so that the whole future stays `Send`: its state is an atomic, and
//! every access checks it, so misuse from safe code panics instead of racing.

use core::cell::UnsafeCell;
use core::fmt;
use core::future::Future;
use core::mem::MaybeUninit;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use atomic_waker::AtomicWaker;

// `Slot::state` is a phase in the low two bits, a flag, and a count of clones in progress.
const PHASE: usize = 0b11;
/// No value yet.
const EMPTY: usize = 0;
/// `set` is writing the value.
const WRITING: usize = 1;
/// The value is stored.
const FULL: usize = 2;
/// The value was moved out.
const TAKEN: usize = 3;
/// [`Slot::get`] lent the value out: it stays in place until the slot is dropped.
const BORROWED: usize = 0b100;
/// One clone in progress (the count sits above the flag).
const CLONING: usize = 0b1000;

/// A once-cell written by one branch of a join and read by others.
///
/// `K` is the number of consumers that may [`wait`](Slot::wait) on it, each with a fixed index
/// in `0..K`. A consumer reads the value by reference ([`get`](Slot::get)), by value
/// ([`take_unique`](Slot::take_unique), [`take_shared`](Slot::take_shared)) or by clone
/// ([`take_clone`](Slot::take_clone)). Misuse panics: setting twice, reading before the value
/// is set or after it was moved out, moving it out after it was lent by `get`.
///
/// A value still stored when the slot is dropped is dropped with it.
pub struct Slot<T, const K: usize> {
    state: AtomicUsize,
    /// By-value consumers ([`take_shared`](Slot::take_shared)) that have not taken yet.
    takers: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
    wakers: [AtomicWaker; K],
    /// Bit `i` set: consumer `i` (for `i < 64`) stored a waker. `set` wakes only those (and
    /// every consumer from 64 on), so consumers that never had to wait cost nothing.
    registered: AtomicU64,
}

// SAFETY: every access to `value` is guarded by `state`: it is written once, by the `set` that
// moved `state` from EMPTY to WRITING, before `state` becomes FULL (Release); after that it is
// only read, shared (`get`, clones, which are counted in `state`) or moved out once by the
// single caller whose compare-exchange took `state` from exactly FULL (no borrow, no clone in
// progress) to TAKEN. Other threads may thus receive a `&T` (so `T: Sync`) or the `T` itself
// (so `T: Send`).
unsafe impl<T: Send + Sync, const K: usize> Sync for Slot<T, K> {}

impl<T, const K: usize> Slot<T, K> {
    /// Creates an empty slot; `takers` is the number of [`take_shared`](Slot::take_shared)
    /// calls that will be made on it (the last of them moves the value out).
    pub const fn new(takers: usize) -> Self {
        Slot {
            state: AtomicUsize::new(EMPTY),
            takers: AtomicUsize::new(takers),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            wakers: [const { AtomicWaker::new() }; K],
            registered: AtomicU64::new(0),
        }
    }

    /// Stores the value and wakes every consumer waiting on it.
    ///
    /// # Panics
    ///
    /// If the slot was already set: a node's value is produced once.
    pub fn set(&self, value: T) {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            panic!("`Slot::set` called twice: a node's value can be set only once");
        }
        // SAFETY: the compare-exchange above made this call the only writer, and no reader
        // touches `value` before `state` is FULL.
        unsafe { (*self.value.get()).write(value) };
        // SeqCst pairs with `Wait::poll`: either it sees FULL or this sees its bit.
        self.state.store(FULL, Ordering::SeqCst);
        let registered = self.registered.load(Ordering::SeqCst);
        for (i, waker) in self.wakers.iter().enumerate() {
            if i >= 64 || registered & (1 << i) != 0 {
                waker.wake();
            }
        }
    }

    /// Waits until the value is set; `consumer` (in `0..K`) is the waiting branch's index.
    pub fn wait(&self, consumer: usize) -> Wait<'_, T, K> {
        assert!(
            consumer < K,
            "consumer index {consumer} out of range for a slot with {K} consumers"
        );
        Wait {
            slot: self,
            consumer,
        }
    }

    /// Whether the value was set (it may have been moved out since).
    fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & PHASE >= FULL
    }

    /// Returns the value by reference. From then on it can only be cloned, not moved out.
    ///
    /// # Panics
    ///
    /// If the value is not set yet or was moved out.
    pub fn get(&self) -> &T {
        self.enter("get", |state| state | BORROWED);
        // SAFETY: `state` is FULL|BORROWED: the value is initialised, no one writes it, and no
        // one can move it out any more (`take` needs exactly FULL), so it stays in place until
        // the slot is dropped, which needs `&mut self` and so outlives the returned borrow.
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// Moves the value out: for the one and only by-value consumer.
    ///
    /// # Panics
    ///
    /// If the value is not set, was moved out, or was lent by [`get`](Slot::get).
    pub fn take_unique(&self) -> T {
        if let Err(state) =
            self.state
                .compare_exchange(FULL, TAKEN, Ordering::AcqRel, Ordering::Relaxed)
        {
            Self::misuse(state, "take the value of");
        }
        // SAFETY: the compare-exchange took `state` from exactly FULL to TAKEN: the value is
        // initialised, not lent and not being cloned, and no one reads it again; the Acquire
        // half orders this read after `set`'s write and after every finished clone.
        unsafe { (*self.value.get()).assume_init_read() }
    }

    /// Returns the value to one of the `takers` by-value consumers given to [`Slot::new`]: the
    /// last of them moves it out, the others clone it.
    ///
    /// # Panics
    ///
    /// If called more than `takers` times, or as [`take_unique`](Slot::take_unique) does.
    pub fn take_shared(&self) -> T
    where
        T: Clone,
    {
        match self.takers.load(Ordering::Acquire) {
            0 => panic!(
                "`Slot::take_shared` called more times than the `takers` given to `Slot::new`"
            ),
            1 => {
                let value = self.take_unique();
                self.takers.store(0, Ordering::Release);
                value
            }
            _ => {
                let value = self.take_clone();
                // After the clone, so that the last taker's move follows every clone.
                self.takers.fetch_sub(1, Ordering::AcqRel);
                value
            }
        }
    }

    /// Returns a clone of the value, which stays in the slot.
    ///
    /// # Panics
    ///
    /// If the value is not set yet or was moved out.
    pub fn take_clone(&self) -> T
    where
        T: Clone,
    {
        /// Ends the clone even if `T::clone` panics.
        struct Cloning<'a>(&'a AtomicUsize);
        impl Drop for Cloning<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(CLONING, Ordering::Release);
            }
        }

        self.enter("clone the value of", |state| state + CLONING);
        let _cloning = Cloning(&self.state);
        // SAFETY: `state` is FULL with a clone counted in it: the value is initialised and
        // cannot be moved out (`take` needs exactly FULL) until `_cloning` is dropped.
        unsafe { (*self.value.get()).assume_init_ref() }.clone()
    }

    /// Updates a FULL state (to lend or clone the value), or panics: cannot `what` the slot.
    fn enter(&self, what: &str, update: impl Fn(usize) -> usize) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & PHASE != FULL {
                Self::misuse(state, what);
            }
            match self.state.compare_exchange_weak(
                state,
                update(state),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }

    #[cold]
    #[track_caller]
    fn misuse(state: usize, what: &str) -> ! {
        match state & PHASE {
            EMPTY | WRITING => panic!("cannot {what} a `Slot` that is not set yet"),
            TAKEN => panic!("cannot {what} a `Slot` whose value was moved out"),
            _ if state & BORROWED != 0 => {
                panic!("cannot {what} a `Slot` whose value is lent by `Slot::get`")
            }
            _ => panic!("cannot {what} a `Slot` that another thread is cloning"),
        }
    }
}

impl<T, const K: usize> Drop for Slot<T, K> {
    fn drop(&mut self) {
        if *self.state.get_mut() & PHASE == FULL {
            // SAFETY: the value is initialised and was not moved out; `&mut self` means no
            // borrow or clone of it is alive.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T, const K: usize> fmt::Debug for Slot<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.load(Ordering::Relaxed);
        let phase = match state & PHASE {
            EMPTY => "empty",
            WRITING => "setting",
            FULL if state & BORROWED != 0 => "set, borrowed",
            FULL => "set",
            _ => "taken",
        };
        f.debug_struct("Slot")
            .field("state", &format_args!("{phase}"))
            .field("takers", &self.takers.load(Ordering::Relaxed))
            .field("consumers", &K)
            .finish_non_exhaustive()
    }
}

/// Future returned by [`Slot::wait`]: ready once the slot's value is set.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Wait<'a, T, const K: usize> {
    slot: &'a Slot<T, K>,
    consumer: usize,
}

impl<T, const K: usize> Future for Wait<'_, T, K> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.slot.is_set() {
            return Poll::Ready(());
        }
        // `register` keeps the stored waker when it `will_wake` the same task.
        self.slot.wakers[self.consumer].register(cx.waker());
        if self.consumer < 64 {
            self.slot
                .registered
                .fetch_or(1 << self.consumer, Ordering::SeqCst);
        }
        // Checked again: `set` may have run before the waker was stored.
        if self.slot.state.load(Ordering::SeqCst) & PHASE >= FULL {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<T, const K: usize> fmt::Debug for Wait<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("consumer", &self.consumer)
            .field("ready", &self.slot.is_set())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// Counts clones and drops; `cloned` tells a clone from the original.
    struct Tracked<'a> {
        clones: &'a AtomicUsize,
        drops: &'a AtomicUsize,
        cloned: bool,
    }

    impl Clone for Tracked<'_> {
        fn clone(&self) -> Self {
            self.clones.fetch_add(1, Ordering::Relaxed);
            Tracked {
                cloned: true,
                ..*self
            }
        }
    }

    impl Drop for Tracked<'_> {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[derive(Default)]
    struct Counters {
        clones: AtomicUsize,
        drops: AtomicUsize,
    }

    impl Counters {
        fn value(&self) -> Tracked<'_> {
            Tracked {
                clones: &self.clones,
                drops: &self.drops,
                cloned: false,
            }
        }
        fn clones(&self) -> usize {
            self.clones.load(Ordering::Relaxed)
        }
        fn drops(&self) -> usize {
            self.drops.load(Ordering::Relaxed)
        }
    }

    /// A waker that counts its wakes and clones.
    #[derive(Default)]
    struct CountingWaker {
        wakes: AtomicUsize,
    }

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_once<F: Future>(future: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(waker))
    }

    fn panic_message(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(ToString::to_string))
            .unwrap()
    }

    #[test]
    fn set_wait_get() {
        let slot = Slot::<String, 1>::new(0);
        slot.set("a".to_owned());
        futures::executor::block_on(slot.wait(0));
        assert_eq!(slot.get(), "a");
        assert_eq!(slot.get(), "a");
        assert_eq!(slot.take_clone(), "a");
        assert!(format!("{slot:?}").contains("set, borrowed"));
    }

    #[test]
    fn wait_before_set_is_woken() {
        let slot = Slot::<u8, 2>::new(1);
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(counter.clone());
        let mut first = std::pin::pin!(slot.wait(1));
        assert!(poll_once(first.as_mut(), &waker).is_pending());
        // Polling again with the same waker keeps the stored one (no clone).
        assert!(poll_once(first.as_mut(), &waker).is_pending());
        assert_eq!(Arc::strong_count(&counter), 3);
        assert_eq!(counter.wakes.load(Ordering::Relaxed), 0);
        slot.set(7);
        assert_eq!(counter.wakes.load(Ordering::Relaxed), 1);
        assert!(poll_once(first.as_mut(), &waker).is_ready());
        // A consumer that waits after `set` is ready at once.
        assert!(poll_once(std::pin::pin!(slot.wait(0)), &waker).is_ready());
        assert_eq!(slot.take_unique(), 7);
    }

    #[test]
    fn set_wakes_every_registered_consumer_and_only_those_below_64() {
        let slot = Slot::<u8, 70>::new(0);
        let counters: Vec<Arc<CountingWaker>> =
            (0..3).map(|_| Arc::new(CountingWaker::default())).collect();
        let wakers: Vec<Waker> = counters.iter().map(|c| Waker::from(c.clone())).collect();
        // Consumers 3 and 65 wait; consumer 10 never polls.
        let mut low = std::pin::pin!(slot.wait(3));
        let mut high = std::pin::pin!(slot.wait(65));
        assert!(poll_once(low.as_mut(), &wakers[0]).is_pending());
        assert!(poll_once(high.as_mut(), &wakers[1]).is_pending());
        let _idle = slot.wait(10);
        slot.set(1);
        assert_eq!(counters[0].wakes.load(Ordering::Relaxed), 1);
        assert_eq!(counters[1].wakes.load(Ordering::Relaxed), 1);
        assert_eq!(counters[2].wakes.load(Ordering::Relaxed), 0);
        assert!(poll_once(low.as_mut(), &wakers[0]).is_ready());
        assert!(poll_once(high.as_mut(), &wakers[1]).is_ready());
    }

    #[test]
    fn take_unique_moves_without_clone() {
        let counters = Counters::default();
        let slot = Slot::<Tracked<'_>, 1>::new(1);
        slot.set(counters.value());
        let value = slot.take_unique();
        assert!(!value.cloned);
        assert_eq!(counters.clones(), 0);
        drop(value);
        drop(slot);
        assert_eq!(counters.drops(), 1);
    }

    #[test]
    fn take_shared_clones_all_but_the_last() {
        let counters = Counters::default();
        let slot = Slot::<Tracked<'_>, 3>::new(3);
        slot.set(counters.value());
        let values = [slot.take_shared(), slot.take_shared(), slot.take_shared()];
        assert_eq!(counters.clones(), 2);
        assert_eq!(values.each_ref().map(|v| v.cloned), [true, true, false]);
        drop(slot);
        assert_eq!(counters.drops(), 0);
        drop(values);
        assert_eq!(counters.drops(), 3);
    }

    #[test]
    fn take_clone_leaves_the_value() {
        let counters = Counters::default();
        let slot = Slot::<Tracked<'_>, 2>::new(0);
        slot.set(counters.value());
        let a = slot.take_clone();
        let b = slot.take_clone();
        assert!(a.cloned && b.cloned);
        assert_eq!(counters.clones(), 2);
        drop((a, b));
        assert_eq!(counters.drops(), 2);
        drop(slot);
        assert_eq!(counters.drops(), 3);
    }

    #[test]
    fn drop_drops_only_a_stored_value() {
        let counters = Counters::default();
        drop(Slot::<Tracked<'_>, 1>::new(1));
        assert_eq!(counters.drops(), 0);

        let slot = Slot::<Tracked<'_>, 1>::new(1);
        slot.set(counters.value());
        drop(slot);
        assert_eq!(counters.drops(), 1);

        let slot = Slot::<Tracked<'_>, 1>::new(1);
        slot.set(counters.value());
        let _ = slot.get();
        drop(slot);
        assert_eq!(counters.drops(), 2);
    }

    #[test]
    fn misuse_panics_with_a_clear_message() {
        let slot = Slot::<String, 1>::new(2);
        assert!(panic_message(|| {
            slot.get();
        })
        .contains("not set yet"));
        assert!(panic_message(|| drop(slot.take_unique())).contains("not set yet"));
        slot.set("x".to_owned());
        assert!(panic_message(|| slot.set("y".to_owned())).contains("called twice"));
        assert_eq!(slot.take_shared(), "x");
        let _ = slot.get();
        assert!(panic_message(|| drop(slot.take_shared())).contains("lent by `Slot::get`"));

        let slot = Slot::<String, 1>::new(1);
        slot.set("x".to_owned());
        assert_eq!(slot.take_shared(), "x");
        assert!(panic_message(|| {
            slot.get();
        })
        .contains("moved out"));
        assert!(panic_message(|| drop(slot.take_clone())).contains("moved out"));
        assert!(panic_message(|| drop(slot.take_shared())).contains("more times than"));
        assert!(format!("{slot:?}").contains("taken"));
        assert!(panic_message(|| drop(slot.wait(1))).contains("out of range"));
    }

    #[test]
    fn clone_panic_leaves_the_slot_usable() {
        struct Bomb(Cell<bool>);
        impl Clone for Bomb {
            fn clone(&self) -> Self {
                assert!(!self.0.get(), "boom");
                Bomb(Cell::new(false))
            }
        }
        let slot = Slot::<Bomb, 1>::new(1);
        slot.set(Bomb(Cell::new(true)));
        assert!(panic_message(|| {
            slot.take_clone();
        })
        .contains("boom"));
        assert!(slot.take_unique().0.get());
    }

    #[test]
    fn shared_between_threads() {
        let slot = Slot::<Vec<u32>, 4>::new(4);
        std::thread::scope(|scope| {
            let consumers: Vec<_> = (0..4)
                .map(|i| {
                    let slot = &slot;
                    scope.spawn(move || {
                        futures::executor::block_on(slot.wait(i));
                        slot.get().len() + slot.take_clone().len()
                    })
                })
                .collect();
            scope.spawn(|| slot.set(vec![1, 2, 3]));
            for consumer in consumers {
                assert_eq!(consumer.join().unwrap(), 6);
            }
        });
    }

    #[test]
    fn send_and_sync() {
        fn assert_send<T: Send>() {}
        fn assert_sync<T: Sync>() {}
        assert_send::<Slot<String, 2>>();
        assert_sync::<Slot<String, 2>>();
        assert_send::<Slot<Cell<u8>, 1>>();
        assert_send::<Wait<'static, String, 2>>();
        assert_sync::<Wait<'static, String, 2>>();
    }
}
