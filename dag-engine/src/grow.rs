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

use std::collections::HashMap;

use crate::graph::{GraphInner, Node};

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
        by: u32,
        feeds: u32,
    ) -> u32 {
        let v = self.base + crate::graph::index(self.node_of.len());
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

    /// The items of map `v`, if it spread: it takes their values beyond its own inputs.
    pub fn items(&self, v: u32) -> core::ops::Range<u32> {
        self.maps
            .get(&v)
            .map_or(0..0, |&(first, count)| first..first + count)
    }
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
        graph
    }
}
