//! Graphs that grow while they run: the tasks a run adds to the graph it started from.
//!
//! The graph a run starts from stays frozen and shared ([`GraphInner`]); what the run adds is
//! its own ([`Added`]), kept beside it with node numbers that go on from the graph's. Added
//! tasks take inputs only from tasks that exist already, so no cycle can form and no task
//! that exists gains an input it did not have, with one exception the engine makes itself:
//! a map task takes its items' values (see [`Spread`](crate::graph::Spread)).
//!
//! At the end of the run, the report gets one graph of both
//! ([`GraphInner::extended`]), so that everything that reads a report (its tasks, `Display`,
//! pictures) sees the added tasks like the others.

use core::any::type_name;
use core::marker::PhantomData;
use std::collections::HashMap;
use std::sync::Arc;

use crate::executor::{Job, Value};
use crate::graph::{AddedNodes, Call, GraphInner, NameIndex, Node, Spread, TypeInfo, Work};

/// What added a task to a run.
#[derive(Clone, Copy, Debug)]
pub(crate) enum By<'a> {
    /// A task: a map, or a growth step.
    Task(u32),
    /// A rule: its index in the run, and its name.
    Rule(u32, &'a str),
}

/// The tasks a run added, numbered from the size of the graph it started from. Nothing here
/// takes an allocation per task: names share one string, inputs one array.
#[derive(Default)]
pub(crate) struct Added {
    /// The number of nodes of the graph the run started from.
    pub base: u32,
    /// The nodes of the added tasks; tasks made alike (a map's items) share one.
    nodes: Vec<Node>,
    /// Each added task's node, in `nodes`.
    node_of: Vec<u32>,
    /// The names, one after the other; added node `v`'s is `text[spans[v - base]]`.
    text: String,
    spans: Vec<(u32, u32)>,
    /// The task that added each.
    pub by: Vec<u32>,
    /// The inputs, one after the other: added node `v`'s are
    /// `deps[dep_start[v - base]..dep_start[v - base + 1]]`.
    dep_start: Vec<u32>,
    deps: Vec<u32>,
    /// The map each added task is an item of (0: none): the map takes its value too.
    pub feeds: Vec<u32>,
    /// Each map that spread: its first item and how many.
    maps: HashMap<u32, (u32, u32)>,
    /// The handle id of each growth step or rule that added tasks, with its first task and
    /// how many; and the same ordered by first task, to find a task's handle.
    steps: HashMap<u64, (u32, u32)>,
    step_order: Vec<(u32, u64)>,
    /// The tasks added by growth steps and rules with names given to them, by name (map items
    /// are found by their map, tasks with derived names by what added them).
    index: NameIndex,
    /// Every start of a given name up to one of its `/`s.
    prefixes: std::collections::HashSet<Box<str>>,
    /// The steps and rules that derived names for tasks they added, by name.
    adders: HashMap<Box<str>, Vec<u64>>,
    /// The tasks of every step, by name, made when a derived name is first looked up, and how
    /// many steps of `step_order` it covers.
    derived: std::sync::Mutex<(NameIndex, usize)>,
    /// The rule (its index in the run) behind each rule's handle id.
    rules: HashMap<u64, u32>,
    /// Whether a task a step or rule added has a name that ends with `]`, as a map item's.
    bracketed: bool,
}

impl Added {
    pub fn new(base: usize) -> Self {
        Self {
            base: crate::graph::index(base),
            dep_start: vec![0],
            ..Self::default()
        }
    }

    /// Whether the run added nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.node_of.is_empty()
    }

    /// How many tasks the run added.
    pub fn len(&self) -> usize {
        self.node_of.len()
    }

    /// Whether node `v` was added by the run.
    #[inline]
    pub fn has(&self, v: u32) -> bool {
        v >= self.base
    }

    /// Added node `v`.
    #[inline]
    pub fn node(&self, v: u32) -> &Node {
        &self.nodes[self.node_of[(v - self.base) as usize] as usize]
    }

    /// Keeps `node` for tasks to be added with it ([`push`](Added::push)); its index.
    pub fn template(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        crate::graph::index(self.nodes.len() - 1)
    }

    /// The name of added node `v`.
    pub fn name(&self, v: u32) -> &str {
        let (start, end) = self.spans[(v - self.base) as usize];
        &self.text[start as usize..end as usize]
    }

    /// The inputs of added node `v`.
    pub fn deps(&self, v: u32) -> &[u32] {
        let at = (v - self.base) as usize;
        &self.deps[self.dep_start[at] as usize..self.dep_start[at + 1] as usize]
    }

    /// The names written since `from` (a length of the text), and their spans.
    pub fn names_since(&self, from: usize, first: u32) -> (&str, &[(u32, u32)]) {
        (
            &self.text[from..],
            &self.spans[(first - self.base) as usize..],
        )
    }

    /// The length of the names' text.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Makes room for `tasks` more tasks.
    pub fn reserve(&mut self, tasks: usize, name_bytes: usize) {
        self.nodes.reserve(tasks);
        self.text.reserve(name_bytes);
        self.node_of.reserve(tasks);
        self.spans.reserve(tasks);
        self.by.reserve(tasks);
        self.dep_start.reserve(tasks);
        self.feeds.reserve(tasks);
    }

    /// Adds a task with node `template` ([`template`](Added::template)), named by `name`
    /// (which writes the name), taking `deps` (existing nodes), added by `by`, an item of map
    /// `feeds` (or 0); its node number.
    pub fn push(
        &mut self,
        template: u32,
        name: impl FnOnce(&mut String),
        deps: &[u32],
        by: By<'_>,
        feeds: u32,
    ) -> u32 {
        let v = self.base + crate::graph::index(self.node_of.len());
        // A rule's tasks are found by their step ([`rule_of`](Added::rule_of)).
        let by = match by {
            By::Task(by) => by,
            By::Rule(..) => 0,
        };
        let start = text_offset(self.text.len());
        name(&mut self.text);
        self.spans.push((start, text_offset(self.text.len())));
        self.deps.extend_from_slice(deps);
        self.dep_start.push(crate::graph::index(self.deps.len()));
        self.node_of.push(template);
        self.by.push(by);
        self.feeds.push(feeds);
        v
    }

    /// The map added node `v` is an item of, if any.
    #[inline]
    pub fn feeds(&self, v: u32) -> Option<u32> {
        match self.feeds.get(v.checked_sub(self.base)? as usize) {
            Some(&map) if map != 0 => Some(map),
            _ => None,
        }
    }

    /// Map `v` spread over `count` items from node `first` on.
    pub fn spread(&mut self, v: u32, first: u32, count: u32) {
        self.maps.insert(v, (first, count));
    }

    /// A growth step or rule (`rule`, its index in the run, if it is one) with handle id `id`,
    /// called `adder` if it derived names for some of them, added the `count` tasks from
    /// `first` on.
    pub fn add_step(
        &mut self,
        id: u64,
        first: u32,
        count: u32,
        rule: Option<u32>,
        adder: Option<&str>,
    ) {
        self.steps.insert(id, (first, count));
        self.step_order.push((first, id));
        if let Some(rule) = rule {
            self.rules.insert(id, rule);
        }
        if let Some(adder) = adder {
            self.adders.entry(adder.into()).or_default().push(id);
        }
    }

    /// The rule (its index in the run) that added task `v`, if a rule did.
    pub fn rule_of(&self, v: u32) -> Option<u32> {
        self.rules.get(&self.step_of(v)?).copied()
    }

    /// Indexes the name given to added task `v` (checked to be free).
    pub fn index_given(&mut self, v: u32) {
        let Self {
            index,
            text,
            spans,
            prefixes,
            bracketed,
            base,
            ..
        } = self;
        let name_of = |v: u32| {
            let (start, end) = spans[(v - *base) as usize];
            &text[start as usize..end as usize]
        };
        let name = name_of(v);
        *bracketed |= name.ends_with(']');
        for (at, _) in name.match_indices('/') {
            prefixes.insert(name[..at].into());
        }
        index.insert(name, v, name_of);
    }

    /// The task with derived name `name`: the index of the tasks of the steps that derived
    /// names is made when first asked for, and brought up to date at each lookup after.
    fn lookup_derived(&self, name: &str) -> Option<u32> {
        let mut derived = self
            .derived
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (index, upto) = &mut *derived;
        let name_of = |v: u32| self.name(v);
        for &(first, id) in &self.step_order[*upto..] {
            let count = self.steps[&id].1;
            index.reserve(count as usize);
            for v in first..first + count {
                // Each task's name is in this index once (given ones in the other too).
                index.insert(self.name(v), v, name_of);
            }
        }
        *upto = self.step_order.len();
        index.get(name, name_of)
    }

    /// Whether a task a step or rule added has a name that ends with `]`: only then can a
    /// map's item be called like it (derived names never do).
    pub fn has_bracketed_name(&self) -> bool {
        self.bracketed
    }

    /// Whether an added task's name starts with `prefix` and a `/`: a task with a given name
    /// like that, or one whose name `prefix` derived.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.prefixes.contains(prefix) || self.adders.contains_key(prefix)
    }

    /// The tasks the growth step or rule with handle id `id` added.
    pub fn step(&self, id: u64) -> Option<core::ops::Range<u32>> {
        self.steps
            .get(&id)
            .map(|&(first, count)| first..first + count)
    }

    /// The handle id of the step that added task `v` (none for a map item).
    pub fn step_of(&self, v: u32) -> Option<u64> {
        let at = self.step_order.partition_point(|&(first, _)| first <= v);
        let (_, id) = *self.step_order.get(at.checked_sub(1)?)?;
        self.step(id)?.contains(&v).then_some(id)
    }

    /// The added task called `name`: one a step or rule added, or a map's item (`map[i]`),
    /// whatever added the map.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        if let Some(v) = self.index.get(name, |v| self.name(v)) {
            return Some(v);
        }
        // A derived name: `{adder}/..`, among the tasks some adder derived names for.
        if name.contains('/') && !self.adders.is_empty() {
            if let Some(v) = self.lookup_derived(name) {
                return Some(v);
            }
        }
        let (map, item) = name.strip_suffix(']')?.rsplit_once('[')?;
        // An item's number as `item_name` writes it: digits, no leading zero.
        let written = !item.is_empty()
            && item.bytes().all(|b| b.is_ascii_digit())
            && (item == "0" || !item.starts_with('0'));
        if !written {
            return None;
        }
        let item: u32 = item.parse().ok()?;
        self.maps.iter().find_map(|(&v, &(first, count))| {
            (item < count && self.name_of_map(v) == map).then_some(first + item)
        })
    }

    /// The name of map `v` as its items' names begin (it may be a task of the graph).
    fn name_of_map(&self, v: u32) -> &str {
        let (first, _) = self.maps[&v];
        let (start, end) = self.spans[(first - self.base) as usize];
        let name = &self.text[start as usize..end as usize];
        name.rsplit_once('[').map_or(name, |(map, _)| map)
    }

    /// The items of map `v`, if it spread: it takes their values beyond its own inputs.
    pub fn items(&self, v: u32) -> core::ops::Range<u32> {
        self.maps
            .get(&v)
            .map_or(0..0, |&(first, count)| first..first + count)
    }
}

/// What a rerun may reuse of a task the run it repeats added.
pub(crate) struct Earlier {
    pub value: Value,
    /// [`inputs_hash`] of the names of its inputs.
    pub inputs: u64,
}

/// A hash of the names of a task's inputs, in order: a task added again with other inputs
/// does not reuse its earlier value.
pub(crate) fn inputs_hash<'a>(names: impl Iterator<Item = &'a str>) -> u64 {
    names.fold(0x9e37_79b9_7f4a_7c15, |hash, name| {
        (hash.rotate_left(7) ^ crate::graph::name_hash(name)).wrapping_mul(0x517c_c1b7_2722_0a95)
    })
}

fn text_offset(at: usize) -> u32 {
    u32::try_from(at).expect("the names of a run's added tasks take fewer than 4 GiB")
}

impl GraphInner {
    /// This graph with the tasks a run added: added nodes after the others, each graph task
    /// with the inputs it took beyond its own.
    pub fn extended(&self, added: &Added) -> Self {
        let n = self.len() + added.len();
        let mut nodes: Vec<Node> = self.nodes.to_vec();
        nodes.extend(
            added
                .node_of
                .iter()
                .map(|&at| added.nodes[at as usize].clone()),
        );
        let mut names = self.names().clone();
        let mut deps = crate::graph::DepTable::new();
        for v in 1..n {
            let v = crate::graph::index(v);
            if added.has(v) {
                names.push(added.name(v));
                deps.push(added.deps(v).iter().copied().chain(added.items(v)));
            } else {
                deps.push(self.deps(v).iter().copied().chain(added.items(v)));
            }
        }
        let mut graph = Self::new(self.id, nodes, names, deps, self.executors.clone());
        let mut by = vec![0; self.len()];
        by.extend_from_slice(&added.by);
        graph.added_by = by.into_boxed_slice();
        graph.growth.clone_from(&self.growth);
        graph
    }
}

/// The work of a map whose items' jobs `job` makes, from a `Vec<T>` to a `Vec<U>`.
pub(crate) fn map_work<T, U>(job: Arc<dyn Fn(T) -> Job + Send + Sync>) -> Work
where
    T: Clone + Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
{
    Work::Spread(Arc::new(MapOf::<T, U> {
        job,
        types: PhantomData,
    }))
}

/// A typed map: the job of each item, from the item.
struct MapOf<T, U> {
    job: Arc<dyn Fn(T) -> Job + Send + Sync>,
    types: PhantomData<fn(T) -> U>,
}

impl<T, U> MapOf<T, U>
where
    T: Clone + Send + Sync + 'static,
{
    fn items(value: &Value) -> Result<&Vec<T>, anyhow::Error> {
        value.downcast_ref::<Vec<T>>().ok_or_else(|| {
            anyhow::anyhow!(
                "a map's input is not the `Vec<{}>` it maps over",
                type_name::<T>()
            )
        })
    }
}

impl<T, U> Spread for MapOf<T, U>
where
    T: Clone + Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
{
    fn width(&self, value: &Value) -> Result<usize, anyhow::Error> {
        Self::items(value).map(Vec::len)
    }

    fn item(&self, source: u32, first: u32) -> Work {
        let job = self.job.clone();
        Work::new(move |call: Call<'_>| {
            let items = call.values[source as usize]
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("a map item starts once its collection is there"))
                .and_then(Self::items)?;
            let item = items[(call.node - first) as usize].clone();
            Ok(job(item))
        })
    }

    fn item_output(&self) -> TypeInfo {
        TypeInfo::of::<U>()
    }

    fn gather(&self, items: &mut dyn Iterator<Item = &Value>) -> Result<Value, anyhow::Error> {
        let values = items
            .map(|value| {
                value.downcast_ref::<U>().cloned().ok_or_else(|| {
                    anyhow::anyhow!("a map item's value is not a `{}`", type_name::<U>())
                })
            })
            .collect::<Result<Vec<U>, _>>()?;
        Ok(Arc::new(values) as Value)
    }
}

impl AddedNodes for Added {
    fn has(&self, v: u32) -> bool {
        Added::has(self, v)
    }

    fn name(&self, v: u32) -> &str {
        Added::name(self, v)
    }

    fn output(&self, v: u32) -> &'static str {
        self.node(v).output.name
    }
}
