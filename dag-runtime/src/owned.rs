//! A value handed into a branch by move.

/// Wraps a value so that the branch using it takes it by move.
///
/// An `async` block captures a `Copy` value it only reads by reference, which keeps the
/// original alive (and stored in the enclosing future) for as long as the block runs. A
/// branch that calls [`Owned::into_inner`] captures the wrapper itself by value instead, as a
/// hand-written `async move` block would, so the enclosing future does not keep a copy.
///
/// ```
/// use dag_runtime::Owned;
///
/// let n = Owned(7u64);
/// let branch = async { n.into_inner() + 1 };
/// assert_eq!(futures::executor::block_on(branch), 8);
/// ```
#[derive(Debug)]
pub struct Owned<T>(pub T);

impl<T> Owned<T> {
    /// The value.
    #[inline]
    pub fn into_inner(self) -> T {
        self.0
    }
}
