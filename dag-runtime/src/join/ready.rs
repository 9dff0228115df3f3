//! The ready set of a wide join, and its unsafe parts: one shared allocation per join (a header,
//! an entry per leaf, a bit per leaf), the leaves' own wakers that point into it, and the
//! `RawWakerVTable` functions that count references to it and mark leaves ready.

use core::alloc::Layout;
use core::fmt;
use core::mem::{self, ManuallyDrop};
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::task::{Context, RawWaker, RawWakerVTable, Waker};
use std::alloc::{alloc, dealloc, handle_alloc_error};

use atomic_waker::AtomicWaker;

/// The wakers of some of a [`WideJoin`]'s leaves (a contiguous range in depth-first order),
/// handed to [`Branches::poll_all_with`].
///
/// [`WideJoin`]: super::WideJoin
/// [`Branches::poll_all_with`]: super::Branches::poll_all_with
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
///
/// [`WideJoin`]: super::WideJoin
pub(super) struct Shared {
    header: NonNull<Header>,
}

pub(super) struct Header {
    /// References: the join's, and one per leaf waker.
    refs: AtomicUsize,
    /// The join's task.
    pub(super) parent: AtomicWaker,
    /// The number of leaves.
    len: usize,
    /// Offset of the ready set from the start of the allocation.
    words: usize,
}

pub(super) struct Entry {
    /// This entry's leaf: `self` is entry `index`.
    index: usize,
    /// Set by the join when the leaf is done, after which its waker does nothing.
    done: AtomicBool,
}

impl Entry {
    #[inline]
    pub(super) fn is_done(&self) -> bool {
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
    pub(super) fn new(len: usize) -> Shared {
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
    pub(super) fn header(&self) -> &Header {
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
    pub(super) fn entry(&self, index: usize) -> &Entry {
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
    pub(super) fn leaves(&self) -> Leaves<'_> {
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
    pub(super) fn drain(&self, mut poll: impl FnMut(usize)) -> usize {
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
}
