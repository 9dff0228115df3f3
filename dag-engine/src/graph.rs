//! The frozen graph: [`Graph`], its nodes, the type-erased task functions, and the checks both
//! builders share (names, cycles).
//!
//! Node 0 of every graph is the parameter of its runs; tasks are nodes `1..`. The parameter
//! has no name in the graph's name table, so any task may be called `param`.

use core::any::{type_name, Any, TypeId};
use core::fmt;
use core::marker::PhantomData;
use core::panic::Location;
use core::time::Duration;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::ValueError;
use crate::executor::{Executors, Job, Value};
use crate::id::Handle;

/// A task's function, type-erased: turns the task's inputs into the job of one attempt.
///
/// Called once per attempt, on the run's task; an error (an input of the wrong type) fails
/// the attempt without running anything.
type WorkFn = dyn Fn(Call<'_>) -> Result<Job, anyhow::Error> + Send + Sync;

/// A task's [`WorkFn`], cheap to clone. A function without state (a closure that captures
/// nothing, a function item) costs no allocation: it is a `&'static` reference.
#[derive(Clone)]
pub(crate) enum Work {
    Stateless(&'static WorkFn),
    Shared(Arc<WorkFn>),
    /// A map: the scheduler adds its items' tasks and makes its value from theirs.
    Spread(Arc<dyn Spread>),
    /// A growth step: the scheduler runs it at once on its inputs and adds what it asks for.
    /// Erased here, where nothing of a growing run is known: a `rules::Step`.
    Grow(Arc<dyn Any + Send + Sync>),
}

/// The tasks a run added, as a task's [`Call`] sees them: their names and types.
pub(crate) trait AddedNodes {
    /// Whether node `v` was added by the run.
    fn has(&self, v: u32) -> bool;
    /// The name of added node `v`.
    fn name(&self, v: u32) -> &str;
    /// The type of added node `v`'s value.
    fn output(&self, v: u32) -> &'static str;
}

/// What a map task does: from its input, a collection, one task per item, then its own value
/// from theirs, in item order.
pub(crate) trait Spread: Send + Sync {
    /// The number of items of the collection `value`; an error if it is not the collection
    /// the map takes.
    fn width(&self, value: &Value) -> Result<usize, anyhow::Error>;

    /// The work of the item tasks: item `i` is node `first + i`, and takes item `i` of the
    /// collection that is node `source`'s value.
    fn item(&self, source: u32, first: u32) -> Work;

    /// The type of an item task's value.
    fn item_output(&self) -> TypeInfo;

    /// The map task's value from its items' values, in order.
    fn gather(&self, items: &mut dyn Iterator<Item = &Value>) -> Result<Value, anyhow::Error>;
}

impl Work {
    pub fn new<W>(work: W) -> Self
    where
        W: Fn(Call<'_>) -> Result<Job, anyhow::Error> + Send + Sync + 'static,
    {
        if size_of::<W>() == 0 && !core::mem::needs_drop::<W>() {
            // A zero-sized value takes no memory: boxing it allocates nothing, and leaking
            // the box leaks nothing (and skips no drop, there being none).
            Self::Stateless(Box::leak(Box::new(work)))
        } else {
            Self::Shared(Arc::new(work))
        }
    }

    /// Makes the job of one attempt from the task's inputs.
    pub fn call(&self, call: Call<'_>) -> Result<Job, anyhow::Error> {
        match self {
            Self::Stateless(work) => work(call),
            Self::Shared(work) => work(call),
            Self::Spread(_) => Err(anyhow::anyhow!(
                "a map task runs no job of its own: its items do"
            )),
            Self::Grow(_) => Err(anyhow::anyhow!(
                "a growth step runs no job of its own: the scheduler runs it"
            )),
        }
    }
}

/// What a task's [`Work`] sees of the run: the graph, which task it is, and every node's value
/// so far (`None` for the nodes without one).
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub graph: &'a Arc<GraphInner>,
    /// The tasks the run added.
    pub added: &'a dyn AddedNodes,
    pub node: u32,
    /// The task's inputs (the graph's, or those it was added with).
    pub deps: &'a [u32],
    pub values: &'a [Option<Value>],
}

impl<'a> Call<'a> {
    /// The dependencies' values, in the order the task lists them.
    ///
    /// The scheduler starts a task only once each dependency has a value.
    pub fn inputs(self) -> impl ExactSizeIterator<Item = &'a Value> + 'a {
        let values = self.values;
        self.deps.iter().map(move |&dep| {
            values[dep as usize]
                .as_ref()
                .expect("the scheduler starts a task once all its inputs have values")
        })
    }

    /// The name of node `v`, of the graph or added by the run.
    pub fn name(self, v: u32) -> &'a str {
        if self.added.has(v) {
            self.added.name(v)
        } else {
            self.graph.name(v)
        }
    }

    /// The type of node `v`'s value.
    pub fn output(self, v: u32) -> &'static str {
        if self.added.has(v) {
            self.added.output(v)
        } else {
            self.graph.nodes[v as usize].output.name
        }
    }

    /// The run's parameter.
    pub fn param(self) -> &'a Value {
        self.values[0]
            .as_ref()
            .expect("the parameter has its value from the start")
    }
}

/// A type's identity and name, for the type checks of erased values and their messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TypeInfo {
    pub id: TypeId,
    pub name: &'static str,
}

impl TypeInfo {
    pub fn of<T: Any>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: type_name::<T>(),
        }
    }
}

/// Per-task options: a timeout for each attempt, and retries with a doubling backoff.
///
/// A failed attempt (an error, a panic, a timeout) is retried up to `retries` times; the
/// first retry waits `backoff`, each further one twice as long as the one before. The task
/// keeps its place among the tasks in flight while it waits. Timeouts and a non-zero backoff
/// use tokio's timer, so they need a tokio runtime with time enabled.
///
/// A timed-out async attempt is dropped. A blocking attempt's timeout counts from the moment
/// it is handed to the blocking pool; if it has not started by then it is aborted, but a
/// closure that is already running cannot be stopped: it runs to its end on its thread, its
/// result is dropped, and it no longer counts towards its executor's limit.
///
/// ```
/// use dagjoin::runtime::TaskOptions;
/// use std::time::Duration;
///
/// let options = TaskOptions::new()
///     .timeout(Duration::from_secs(5))
///     .retries(2)
///     .backoff(Duration::from_millis(100));
/// assert_eq!(options.retries, 2);
/// assert_eq!(TaskOptions::default(), TaskOptions::new());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// The longest an attempt may take; `None` (the default) waits forever.
    pub timeout: Option<Duration>,
    /// How many times a failed attempt is retried (default 0).
    pub retries: u32,
    /// The wait before the first retry, doubled before each further one (default zero).
    pub backoff: Duration,
}

impl TaskOptions {
    /// No timeout, no retries.
    pub const fn new() -> Self {
        Self {
            timeout: None,
            retries: 0,
            backoff: Duration::ZERO,
        }
    }

    /// Sets the timeout of each attempt.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets how many times a failed attempt is retried.
    #[must_use]
    pub const fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the wait before the first retry (doubled before each further one).
    #[must_use]
    pub const fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The wait before attempt `attempt` (2 or more): `backoff * 2^(attempt - 2)`, saturating.
    pub(crate) fn backoff_before(&self, attempt: u32) -> Duration {
        dag_runtime::attempt::doubled(self.backoff, attempt.saturating_sub(2))
    }
}

/// A node of a frozen graph. Its name and dependencies are in the [`GraphInner`]'s tables.
#[derive(Clone)]
pub(crate) struct Node {
    /// `None` for the parameter only.
    pub work: Option<Work>,
    /// Its executor's index in the graph's [`Executors`].
    pub executor: u16,
    pub options: TaskOptions,
    /// The type of the task's value.
    pub output: TypeInfo,
}

impl Node {
    /// The parameter node, of type `P`.
    pub fn param<P: Any>() -> Self {
        Self {
            work: None,
            executor: crate::executor::INLINE,
            options: TaskOptions::new(),
            output: TypeInfo::of::<P>(),
        }
    }
}

/// The nodes' dependencies, all in one array: node `v` takes the values of
/// `deps[start[v]..start[v + 1]]`, in order, repeats allowed.
#[derive(Clone, Debug)]
pub(crate) struct DepTable {
    start: Vec<u32>,
    deps: Vec<u32>,
}

impl DepTable {
    /// The table of the parameter alone.
    pub fn new() -> Self {
        Self {
            start: vec![0, 0],
            deps: Vec::new(),
        }
    }

    /// Adds the next node, with dependencies `deps`.
    pub fn push(&mut self, deps: impl IntoIterator<Item = u32>) {
        self.deps.extend(deps);
        self.close();
    }

    /// Adds `dep` to the dependencies of the next node.
    pub fn add(&mut self, dep: u32) {
        self.deps.push(dep);
    }

    /// Ends the next node: it takes the dependencies [`add`](Self::add)ed since the last one.
    pub fn close(&mut self) {
        self.start.push(index(self.deps.len()));
    }

    /// The dependencies of node `v`.
    pub fn get(&self, v: u32) -> &[u32] {
        let v = v as usize;
        &self.deps[self.start[v] as usize..self.start[v + 1] as usize]
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }
}

/// The nodes' names, with no allocation per name: a name given as text is a span of one
/// string; a name derived from a function or a call site (`fetch#2`, `closure@src/main.rs:7:9`)
/// is kept as what it is made of, and written out, all derived names at once into a second
/// string, only when one is first read (a run that reads no name never writes any). Node 0,
/// the parameter, is `param`.
#[derive(Clone, Debug)]
pub(crate) struct NameTable {
    text: String,
    entries: Vec<Entry>,
    written: OnceLock<Written>,
}

/// A node's name in a [`NameTable`].
#[derive(Clone, Copy, Debug)]
enum Entry {
    /// `text[start..end]`.
    Text(u32, u32),
    /// `base`, or `base#suffix` from suffix 2 on.
    Derived(Base, u32),
}

/// The derived names, written out: node `v`'s is `text[spans[v].0..spans[v].1]`.
#[derive(Clone, Debug)]
struct Written {
    text: String,
    spans: Vec<(u32, u32)>,
}

impl NameTable {
    /// The table of the parameter alone.
    pub fn new() -> Self {
        let mut table = Self {
            text: String::new(),
            entries: Vec::new(),
            written: OnceLock::new(),
        };
        table.push("param");
        table
    }

    /// Names the next node `name`.
    pub fn push(&mut self, name: &str) {
        let entry = self.append(name);
        self.entries.push(entry);
    }

    /// Names the next node `base`, or `base#suffix` from suffix 2 on.
    fn push_derived(&mut self, base: Base, suffix: u32) {
        self.written.take();
        self.entries.push(Entry::Derived(base, suffix));
    }

    /// Renames node `v`.
    pub fn set(&mut self, v: u32, name: &str) {
        self.entries[v as usize] = self.append(name);
    }

    fn append(&mut self, name: &str) -> Entry {
        self.written.take();
        let start = text_offset(self.text.len());
        self.text.push_str(name);
        Entry::Text(start, text_offset(self.text.len()))
    }

    /// The name of node `v`.
    pub fn get(&self, v: u32) -> &str {
        match self.entries[v as usize] {
            Entry::Text(start, end) => &self.text[start as usize..end as usize],
            Entry::Derived(..) => {
                let written = self.written.get_or_init(|| self.write());
                let (start, end) = written.spans[v as usize];
                &written.text[start as usize..end as usize]
            }
        }
    }

    /// Every derived name, written out.
    fn write(&self) -> Written {
        let mut text = String::new();
        let spans = self
            .entries
            .iter()
            .map(|entry| match *entry {
                Entry::Text(..) => (0, 0),
                Entry::Derived(base, suffix) => {
                    let start = text_offset(text.len());
                    write_derived(&mut text, base, suffix);
                    (start, text_offset(text.len()))
                }
            })
            .collect();
        Written { text, spans }
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The tasks' names to their nodes (the parameter is not a task).
    fn index(&self) -> HashMap<Box<str>, u32> {
        (1..self.len())
            .map(|v| (Box::from(self.get(index(v))), index(v)))
            .collect()
    }
}

/// Writes the name `base`, or `base#suffix` from suffix 2 on.
pub(crate) fn write_derived(text: &mut String, base: Base, suffix: u32) {
    match base {
        Base::Function(name) => text.push_str(name),
        Base::Site(site) => {
            text.push_str("closure@");
            text.push_str(site.file());
            text.push(':');
            push_decimal(text, site.line());
            text.push(':');
            push_decimal(text, site.column());
        }
    }
    if suffix > 1 {
        text.push('#');
        push_decimal(text, suffix);
    }
}

/// Appends `n` in decimal to `text` (what `write!` does, without its formatting machinery).
#[inline]
pub(crate) fn push_decimal(text: &mut String, mut n: u32) {
    let mut digits = [0_u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(n % 10).expect("a digit");
        n /= 10;
        if n == 0 {
            break;
        }
    }
    text.extend(digits[at..].iter().map(|&digit| char::from(digit)));
}

/// `at` as an offset into a [`NameTable`]'s text.
fn text_offset(at: usize) -> u32 {
    u32::try_from(at).expect("the names of a graph take fewer than 4 GiB")
}

/// What a [`Graph`] shares between its clones and its runs.
pub(crate) struct GraphInner {
    /// The id of the builder the graph came from; handles and reports carry it.
    pub id: u64,
    /// Node 0 is the parameter.
    pub nodes: Box<[Node]>,
    names: NameTable,
    deps: DepTable,
    /// The tasks that use node `v` are `succ[succ_start[v]..succ_start[v + 1]]` (once per use).
    succ_start: Box<[u32]>,
    succ: Box<[u32]>,
    /// For each node, how many of its inputs are tasks (all but uses of the parameter).
    pub initial_missing: Box<[u32]>,
    /// Each node's executor, apart from the rest of the node: the scheduler reads it for each
    /// task that becomes ready, in no particular order.
    placements: Box<[u16]>,
    /// The executors tasks run on, by index.
    pub executors: Executors,
    /// Task names to nodes (the parameter is not in it), made on the first lookup by name.
    index: OnceLock<NameIndex>,
    /// In the graph of a run's report, the task that added each task while the run went on
    /// (0 for the graph's own); empty for a graph that was built.
    pub added_by: Box<[u32]>,
    /// Whether a task's name ends with `]` (see [`has_bracketed_name`](Self::has_bracketed_name)).
    bracketed: OnceLock<bool>,
    /// Every start of a task's name up to one of its `/`s (see [`has_prefix`](Self::has_prefix)).
    prefixes: OnceLock<std::collections::HashSet<Box<str>>>,
    /// Tags, declared tags and rules, if the graph has any.
    pub growth: Option<Arc<Growing>>,
}

/// What a graph has for runs that grow: its tasks' tags, the tags its growth steps declare,
/// its rules.
#[derive(Default)]
pub(crate) struct Growing {
    /// Each tagged task with one of its tags.
    pub tags: Vec<(u32, Arc<str>)>,
    /// Each growth step with one of the tags it declares.
    pub adds: Vec<(u32, Arc<str>)>,
    /// The rules, erased (each a `rules::RuleDef`): this module knows nothing of them.
    pub rules: Vec<Arc<dyn Any + Send + Sync>>,
}

impl Growing {
    /// `None` if there is nothing to keep.
    pub fn boxed(self) -> Option<Arc<Self>> {
        let empty = self.tags.is_empty() && self.adds.is_empty() && self.rules.is_empty();
        (!empty).then(|| Arc::new(self))
    }
}

impl GraphInner {
    /// Freezes `nodes` (node 0 the parameter, every dependency an existing node, names
    /// unique) with their names and dependencies.
    pub fn new(
        id: u64,
        nodes: Vec<Node>,
        names: NameTable,
        deps: DepTable,
        executors: Executors,
    ) -> Self {
        let n = nodes.len();
        assert!(
            u32::try_from(n).is_ok() && names.len() == n && deps.len() == n,
            "a graph holds fewer than 2^32 tasks, each with a name and dependencies"
        );
        let mut counts = vec![0_u32; n + 1];
        let mut initial_missing = vec![0_u32; n];
        for (v, missing) in initial_missing.iter_mut().enumerate() {
            for &dep in deps.get(index(v)) {
                if dep != 0 {
                    counts[dep as usize + 1] += 1;
                    *missing += 1;
                }
            }
        }
        for v in 0..n {
            counts[v + 1] += counts[v];
        }
        let succ_start = counts.clone().into_boxed_slice();
        let mut succ = vec![0_u32; counts[n] as usize];
        for v in 0..n {
            for &dep in deps.get(index(v)) {
                if dep != 0 {
                    let at = &mut counts[dep as usize];
                    succ[*at as usize] = index(v);
                    *at += 1;
                }
            }
        }
        Self {
            id,
            placements: nodes.iter().map(|node| node.executor).collect(),
            executors,
            nodes: nodes.into_boxed_slice(),
            names,
            deps,
            succ_start,
            succ: succ.into_boxed_slice(),
            initial_missing: initial_missing.into_boxed_slice(),
            index: OnceLock::new(),
            added_by: Box::new([]),
            bracketed: OnceLock::new(),
            prefixes: OnceLock::new(),
            growth: None,
        }
    }

    /// The same structure with other task functions (and executors).
    pub fn with_nodes(&self, nodes: Box<[Node]>, executors: Executors) -> Self {
        Self {
            id: self.id,
            placements: nodes.iter().map(|node| node.executor).collect(),
            executors,
            nodes,
            names: self.names.clone(),
            deps: self.deps.clone(),
            succ_start: self.succ_start.clone(),
            succ: self.succ.clone(),
            initial_missing: self.initial_missing.clone(),
            index: self.index.clone(),
            added_by: self.added_by.clone(),
            bracketed: self.bracketed.clone(),
            prefixes: self.prefixes.clone(),
            growth: self.growth.clone(),
        }
    }

    /// The index of task `v`'s executor.
    pub fn placement(&self, v: u32) -> u16 {
        self.placements[v as usize]
    }

    /// The name of task `v`'s executor.
    pub fn executor_name(&self, v: u32) -> &str {
        self.executors.name(self.placement(v))
    }

    /// The nodes task `v` takes the values of, in order (repeats allowed).
    pub fn deps(&self, v: u32) -> &[u32] {
        self.deps.get(v)
    }

    /// The tasks that use node `v`, once per use.
    pub fn successors(&self, v: u32) -> &[u32] {
        let v = v as usize;
        &self.succ[self.succ_start[v] as usize..self.succ_start[v + 1] as usize]
    }

    /// The number of nodes, the parameter included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The node of task `name`.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.index
            .get_or_init(|| {
                let mut names = NameIndex::default();
                names.reserve(self.len());
                for v in 1..self.len() {
                    let v = index(v);
                    names.insert(self.name(v), v, |v| self.name(v));
                }
                names
            })
            .get(name, |v| self.name(v))
    }

    /// The name of node `v`.
    pub fn name(&self, v: u32) -> &str {
        self.names.get(v)
    }

    /// The names of the nodes.
    pub fn names(&self) -> &NameTable {
        &self.names
    }

    /// Whether a task's name ends with `]`, as a map item's does: only then can an item's
    /// name be a task's of the graph too.
    pub fn has_bracketed_name(&self) -> bool {
        *self
            .bracketed
            .get_or_init(|| (1..self.len()).any(|v| self.name(index(v)).ends_with(']')))
    }

    /// Whether a task's name starts with `prefix` and a `/`: only then can it be a name that a
    /// growth step called `prefix` derives.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.prefixes
            .get_or_init(|| {
                let mut prefixes = std::collections::HashSet::new();
                for v in 1..self.len() {
                    let name = self.name(index(v));
                    for (at, _) in name.match_indices('/') {
                        prefixes.insert(name[..at].into());
                    }
                }
                prefixes
            })
            .contains(prefix)
    }

    /// Checks that `handle` comes from this graph's builder.
    pub fn check_handle<T>(&self, handle: &Handle<T>) -> Result<u32, ValueError> {
        if handle.builder == self.id {
            Ok(handle.index)
        } else {
            Err(ValueError::ForeignHandle {
                handle_builder: handle.builder,
                handle_index: handle.index,
                graph: self.id,
            })
        }
    }
}

/// Names to nodes, without a copy of each name: a map from a keyed 64-bit hash of the name
/// to the node, whose name is read back where it is kept; a name whose hash another name has
/// already is kept apart, whole (a collision of keyed hashes: never made on purpose).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameIndex {
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    apart: HashMap<Box<str>, u32>,
}

/// The hasher of keys that are hashes already.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl core::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with it.
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

impl NameIndex {
    /// Makes room for `more` names.
    pub fn reserve(&mut self, more: usize) {
        self.by_hash.reserve(more);
    }

    /// The node called `name`, the name of each node read with `name_of`.
    pub fn get<'a>(&self, name: &str, name_of: impl Fn(u32) -> &'a str) -> Option<u32> {
        match self.by_hash.get(&name_hash(name)) {
            Some(&v) if name_of(v) == name => Some(v),
            _ => self.apart.get(name).copied(),
        }
    }

    /// Node `v` is called `name` (no other node is).
    pub fn insert<'a>(&mut self, name: &str, v: u32, name_of: impl Fn(u32) -> &'a str) {
        match self.by_hash.entry(name_hash(name)) {
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(v);
            }
            std::collections::hash_map::Entry::Occupied(entry) => {
                debug_assert_ne!(name_of(*entry.get()), name, "names are checked to be free");
                self.apart.insert(name.into(), v);
            }
        }
    }
}

/// A fast hash of `name`, eight bytes at a time, keyed with a random key of the process (so
/// that names cannot be chosen to collide) and mixed so that all its bits vary.
pub(crate) fn name_hash(name: &str) -> u64 {
    static KEY: OnceLock<u64> = OnceLock::new();
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let key = *KEY
        .get_or_init(|| std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0_u64));
    let mix = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(K);
    let bytes = name.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let mut hash = mix(key, bytes.len() as u64);
    for word in &mut words {
        hash = mix(hash, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let mut tail = [0_u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    hash = mix(hash, u64::from_le_bytes(tail));
    // The finish of MurmurHash3: the map takes its buckets from the low bits.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// `v` as a node index.
pub(crate) fn index(v: usize) -> u32 {
    u32::try_from(v).expect("a graph holds fewer than 2^32 tasks")
}

/// A new id for a builder (and the graphs and handles that come from it).
pub(crate) fn next_builder_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A validated, frozen graph of tasks, ready to [`run`](Graph::run) any number of times, also
/// concurrently, each time with its own parameter of type `P`.
///
/// Build one with [`GraphBuilder`](crate::GraphBuilder) (typed handles) or
/// [`NamedGraphBuilder`](crate::NamedGraphBuilder) (tasks and dependencies by name). A `Graph`
/// is cheap to clone (an `Arc` inside) and can be shared between threads.
pub struct Graph<P> {
    pub(crate) inner: Arc<GraphInner>,
    _param: PhantomData<fn(P)>,
}

impl<P> Graph<P> {
    pub(crate) fn from_inner(inner: GraphInner) -> Self {
        Self {
            inner: Arc::new(inner),
            _param: PhantomData,
        }
    }

    /// The id of the builder this graph comes from; its handles and the reports of its runs
    /// carry it. A graph made by [`replace`](Graph::replace) keeps it.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The number of tasks (the parameter is not one).
    pub fn len(&self) -> usize {
        self.inner.len() - 1
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the tasks, in the order they were added.
    pub fn task_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (1..self.inner.len()).map(|v| self.inner.name(index(v)))
    }

    /// The name of the task behind `handle` (`param` for the parameter).
    ///
    /// # Errors
    ///
    /// If `handle` comes from another builder.
    pub fn name<T>(&self, handle: &Handle<T>) -> Result<&str, ValueError> {
        let v = self.inner.check_handle(handle)?;
        Ok(self.inner.name(v))
    }

    /// The names of the dependencies of task `name`, in order.
    ///
    /// # Errors
    ///
    /// If there is no task `name`.
    pub fn dependencies(&self, name: &str) -> Result<Vec<&str>, ValueError> {
        let v = self
            .inner
            .lookup(name)
            .ok_or_else(|| ValueError::UnknownTask {
                name: name.to_owned(),
            })?;
        Ok(self
            .inner
            .deps(v)
            .iter()
            .map(|&d| self.inner.name(d))
            .collect())
    }
}

impl<P> Clone for Graph<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _param: PhantomData,
        }
    }
}

impl<P> fmt::Debug for Graph<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("id", &self.inner.id)
            .field("tasks", &self.len())
            .finish_non_exhaustive()
    }
}

/// What a typed task's default name is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Base {
    /// The last path segment of a function item's name (`fast_task_c`).
    Function(&'static str),
    /// Where a closure (or anything else without a name) was added: `closure@src/main.rs:7:21`.
    Site(&'static Location<'static>),
}

impl Base {
    /// Whether `self` and `other` are the same base, checking the cheap way first: tasks
    /// added in a loop share their function and their call site.
    fn same(self, other: Self) -> bool {
        match (self, other) {
            (Self::Function(a), Self::Function(b)) => core::ptr::eq(a, b) || a == b,
            (Self::Site(a), Self::Site(b)) => core::ptr::eq(a, b) || a == b,
            _ => false,
        }
    }

    /// The base name of a task running `F`, added at `site`.
    pub fn of<F>(site: &'static Location<'static>) -> Self {
        function_name::<F>().map_or(Self::Site(site), Self::Function)
    }
}

/// The last path segment of a function item's type name (`fast_task_c`); `None` for closures
/// and everything else.
///
/// Reads the type's name from its end, so a long path costs only its last segment.
fn function_name<F>() -> Option<&'static str> {
    let full = type_name::<F>();
    if full.starts_with(['(', '[', '&', '*']) || full.starts_with("fn(") {
        return None;
    }
    // Skip trailing generic arguments (which may hold `::` and `->` too), then take the segment
    // before them back to the last `::`.
    let bytes = full.as_bytes();
    let mut end = bytes.len();
    if bytes.last() == Some(&b'>') {
        let mut depth = 0_usize;
        while end > 0 {
            end -= 1;
            match bytes[end] {
                // `->` of a function pointer type is no bracket.
                b'>' if end > 0 && bytes[end - 1] == b'-' => {}
                b'>' => depth += 1,
                b'<' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let mut start = end;
    while start > 0 && bytes[start - 1] != b':' {
        start -= 1;
    }
    let segment = &full[start..end];
    is_identifier(segment).then_some(segment)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && s != "_"
}

/// Unique names for typed tasks: `name`, then `name#2`, `name#3`, ...
///
/// Derived names cannot collide with each other (a function's name is an identifier, without
/// `#` or `@`; a site is unique), so the set of all names, needed to check renames, is only
/// made by the first rename.
#[derive(Debug)]
pub(crate) struct Names {
    table: NameTable,
    /// The next suffix to try for each base name (absent: the base name itself).
    next_suffix: HashMap<Base, u32>,
    /// The base name of the last derived name and its next suffix, not yet in
    /// `next_suffix`: tasks added in a loop share their function, and skip the hash map.
    last: Option<(Base, u32)>,
    /// Every task's name, from the first rename on.
    taken: Option<HashMap<Box<str>, u32>>,
    /// Where a derived name is written to check it against `taken`.
    scratch: String,
}

impl Names {
    /// The names of the parameter alone.
    pub fn new() -> Self {
        Self {
            table: NameTable::new(),
            next_suffix: HashMap::new(),
            last: None,
            taken: None,
            scratch: String::new(),
        }
    }

    /// Names the next node with a new unique name derived from `base`.
    pub fn derive(&mut self, base: Base) {
        let v = index(self.table.len());
        let mut next = match self.last {
            Some((last, next)) if last.same(base) => next,
            _ => {
                if let Some((last, next)) = self.last.take() {
                    self.next_suffix.insert(last, next);
                }
                self.next_suffix.remove(&base).unwrap_or(1)
            }
        };
        if let Some(taken) = &mut self.taken {
            // Skip the suffixes that renames took.
            loop {
                self.scratch.clear();
                write_derived(&mut self.scratch, base, next);
                if !taken.contains_key(&*self.scratch) {
                    taken.insert(self.scratch.as_str().into(), v);
                    break;
                }
                next += 1;
            }
        }
        self.table.push_derived(base, next);
        self.last = Some((base, next + 1));
    }

    /// Renames node `v` to `new`; `false` if another node has that name.
    pub fn rename(&mut self, v: u32, new: &str) -> bool {
        let table = &mut self.table;
        let taken = self.taken.get_or_insert_with(|| table.index());
        if let Some(&other) = taken.get(new) {
            return other == v;
        }
        taken.remove(table.get(v));
        taken.insert(new.into(), v);
        table.set(v, new);
        true
    }

    /// The name of node `v`.
    pub fn get(&self, v: u32) -> &str {
        self.table.get(v)
    }

    /// The finished table.
    pub fn into_table(self) -> NameTable {
        self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fast_task_c(_: u32) -> u32 {
        0
    }

    fn generic<T>(_: T) {}

    fn name_of<F>(_: &F) -> &'static str {
        function_name::<F>().unwrap_or("(none)")
    }

    #[test]
    fn names_from_function_types() {
        assert_eq!(name_of(&fast_task_c), "fast_task_c");
        assert_eq!(name_of(&generic::<Vec<String>>), "generic");
        assert_eq!(name_of(&|x: u32| x), "(none)");
        assert_eq!(name_of(&(fast_task_c as fn(u32) -> _)), "(none)");
        assert_eq!(name_of(&u32::to_string), "to_string");
        assert_eq!(name_of(&generic::<fn(u8) -> u8>), "generic");
        assert_eq!(name_of(&generic::<(u8, [u8; 2])>), "generic");
        assert_eq!(name_of(&Vec::<u8>::len), "len");
        assert_eq!(name_of(&Option::<Vec<u8>>::is_some), "is_some");
    }

    #[test]
    fn names_are_made_unique() {
        let mut names = Names::new();
        names.derive(Base::Function("a"));
        assert_eq!(names.get(1), "a");
        names.derive(Base::Function("a"));
        assert_eq!(names.get(2), "a#2");
        assert!(names.rename(2, "a#3"));
        assert_eq!(names.get(2), "a#3");
        // Suffixes only go up: a name a task had is not given to another.
        names.derive(Base::Function("a"));
        assert_eq!(names.get(3), "a#4");
        names.derive(Base::Function("b"));
        names.derive(Base::Function("a"));
        assert_eq!(names.get(5), "a#5");
        assert!(!names.rename(5, "a"));
        assert!(names.rename(1, "a"));
        // A name taken by a rename is skipped.
        assert!(names.rename(4, "b#2"));
        names.derive(Base::Function("b"));
        assert_eq!(names.get(6), "b#3");
        assert_eq!(names.get(0), "param");
        // Suffixes of several bases interleaved, each counted on its own.
        names.derive(Base::Function("a"));
        names.derive(Base::Function("c"));
        names.derive(Base::Function("a"));
        names.derive(Base::Function("c"));
        let got: Vec<_> = (7..11).map(|v| names.get(v)).collect();
        assert_eq!(got, ["a#6", "c", "a#7", "c#2"]);
        let mut text = String::new();
        for n in [0, 7, 10, 1234, u32::MAX] {
            push_decimal(&mut text, n);
            text.push(' ');
        }
        assert_eq!(text, format!("0 7 10 1234 {} ", u32::MAX));
    }

    #[test]
    fn closures_are_named_after_where_they_were_added() {
        let here = Location::caller();
        let mut names = Names::new();
        names.derive(Base::Site(here));
        names.derive(Base::Site(here));
        let site = format!("closure@{}:{}:{}", here.file(), here.line(), here.column());
        assert_eq!(names.get(1), site);
        assert_eq!(names.get(2), format!("{site}#2"));
        // The next suffix is taken by a rename: the name is made again from the copied text.
        assert!(names.rename(1, &format!("{site}#3")));
        names.derive(Base::Site(here));
        assert_eq!(names.get(3), format!("{site}#4"));
        names.derive(Base::Function("f"));
        names.derive(Base::Site(here));
        assert_eq!(names.get(5), format!("{site}#5"));
    }

    #[test]
    fn backoff_doubles() {
        let options = TaskOptions::new().backoff(Duration::from_millis(10));
        assert_eq!(options.backoff_before(2), Duration::from_millis(10));
        assert_eq!(options.backoff_before(3), Duration::from_millis(20));
        assert_eq!(options.backoff_before(5), Duration::from_millis(80));
        assert_eq!(
            options.backoff_before(42),
            Duration::from_millis(10 << 40),
            "long, but not forever"
        );
        assert_eq!(options.backoff_before(200), Duration::MAX);
    }

    #[test]
    fn cycles_are_found_once_each() {
        use dag_cycles::cycles;
        // 0 -> 1 -> 2 -> 0, 3 -> 3, 4 -> 0.
        let deps = vec![vec![1], vec![2], vec![0], vec![3], vec![0]];
        assert_eq!(cycles(&deps), vec![vec![0, 1, 2, 0], vec![3, 3]]);
        assert!(cycles(&[vec![], vec![0]]).is_empty());
    }
}
