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

use std::sync::Arc;

use crate::graph::{GraphInner, Node};

/// The tasks a run added, numbered from the size of the graph it started from.
#[derive(Default)]
pub(crate) struct Added {
    /// The number of nodes of the graph the run started from.
    pub base: u32,
    pub nodes: Vec<Node>,
    pub names: Vec<Arc<str>>,
    /// The task that added each.
    pub by: Vec<u32>,
    /// Each added task's inputs.
    deps: Vec<Box<[u32]>>,
    /// The tasks that take each node's value beyond the graph's own edges, by node (base and
    /// added); empty until the first task is added.
    users: Vec<Vec<u32>>,
    /// The inputs that tasks of the graph take beyond their own (a map's items), by node;
    /// empty until a map spreads.
    extra_deps: Vec<Vec<u32>>,
}

impl Added {
    pub fn new(base: usize) -> Self {
        Self {
            base: crate::graph::index(base),
            ..Self::default()
        }
    }

    /// Whether the run added nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether node `v` was added by the run.
    #[inline]
    pub fn has(&self, v: u32) -> bool {
        v >= self.base
    }

    /// Added node `v`.
    #[inline]
    pub fn node(&self, v: u32) -> &Node {
        &self.nodes[(v - self.base) as usize]
    }

    /// The name of added node `v`.
    pub fn name(&self, v: u32) -> &Arc<str> {
        &self.names[(v - self.base) as usize]
    }

    /// The inputs of added node `v`.
    pub fn deps(&self, v: u32) -> &[u32] {
        &self.deps[(v - self.base) as usize]
    }

    /// The tasks that take node `v`'s value beyond the graph's edges.
    #[inline]
    pub fn users(&self, v: u32) -> &[u32] {
        self.users.get(v as usize).map_or(&[], Vec::as_slice)
    }

    /// Adds task `node` called `name`, taking `deps` (existing nodes), added by `by`; its
    /// node.
    pub fn push(&mut self, node: Node, name: Arc<str>, deps: Box<[u32]>, by: u32) -> u32 {
        let v = self.base + crate::graph::index(self.nodes.len());
        let total = v as usize + 1;
        if self.users.len() < total {
            self.users
                .resize_with(total.max(self.users.len() * 2), Vec::new);
        }
        for &d in &deps {
            if d != 0 {
                self.users[d as usize].push(v);
            }
        }
        self.nodes.push(node);
        self.names.push(name);
        self.deps.push(deps);
        self.by.push(by);
        v
    }

    /// Node `user` takes node `v`'s value too (a map takes its items').
    pub fn add_use(&mut self, v: u32, user: u32) {
        let need = (v.max(user)) as usize + 1;
        if self.users.len() < need {
            self.users.resize_with(need, Vec::new);
        }
        self.users[v as usize].push(user);
        if self.extra_deps.len() < need {
            self.extra_deps.resize_with(need, Vec::new);
        }
        self.extra_deps[user as usize].push(v);
    }

    /// The inputs node `v` takes beyond those it was built with.
    pub fn extra_deps(&self, v: u32) -> &[u32] {
        self.extra_deps.get(v as usize).map_or(&[], Vec::as_slice)
    }
}

impl GraphInner {
    /// This graph with the tasks a run added: added nodes after the others, each graph task
    /// with the inputs it took beyond its own.
    pub fn extended(&self, added: &Added) -> Self {
        let n = self.len() + added.nodes.len();
        let mut nodes: Vec<Node> = self.nodes.to_vec();
        nodes.extend(added.nodes.iter().cloned());
        let mut names = self.names().clone();
        let mut deps = crate::graph::DepTable::new();
        for v in 1..n {
            let v = crate::graph::index(v);
            if added.has(v) {
                names.push(added.name(v));
                deps.push(added.deps(v).iter().copied());
            } else {
                deps.push(self.deps(v).iter().chain(added.extra_deps(v)).copied());
            }
        }
        let mut graph = Self::new(self.id, nodes, names, deps, self.executors.clone());
        let mut by = vec![0; self.len()];
        by.extend_from_slice(&added.by);
        graph.added_by = by.into_boxed_slice();
        graph
    }
}
