//! The schedule: a pure function from an acyclic graph to a tree of sequences and joins.
//!
//! A set of nodes is planned as
//! - `Par` of its connected components, which share no edge and run as one join;
//! - else `Seq` of parts, when it splits into parts where every node of a part depends
//!   (transitively) on every node of the parts before it: waiting for the whole previous part
//!   then costs nothing;
//! - else it is not series-parallel. Some edges of its transitive reduction are then taken out
//!   of the structure (first one at a time while that splits the set, else all but one edge
//!   into each node, leaving chains), the set is planned again, and each edge taken out
//!   becomes a wait on a slot at run time.
//!
//! A node in a `Seq` part waits for the parts before it, all of which are its ancestors, and
//! for the slots of its other dependencies: it starts the moment its last dependency finishes.
//! Series-parallel graphs never take an edge out, so they need no slot.

/// Sets below this size look for single edges whose removal splits them; larger ones are
/// cut into chains straight away, which keeps planning near-linear for big graphs.
const GREEDY_LIMIT: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Node(usize),
    /// Parts run one after the other; none is a `Seq`.
    Seq(Vec<Plan>),
    /// Parts run concurrently; none is a `Par`.
    Par(Vec<Plan>),
}

/// Plans `deps` (`deps[v]`: nodes `v` uses), which must be acyclic without self-loops.
/// An empty graph gives `Seq(vec![])`.
pub fn plan(deps: &[Vec<usize>]) -> Plan {
    let n = deps.len();
    if n == 0 {
        return Plan::Seq(Vec::new());
    }
    let order = topo_order(deps);
    let mut pos = vec![0; n];
    for (i, &v) in order.iter().enumerate() {
        pos[v] = i;
    }
    let preds = reduce(deps, &order);
    let mut planner = Planner {
        preds,
        pos,
        scratch: vec![usize::MAX; n],
    };
    let plan = planner.plan_set(order);
    let mut branch_of = vec![usize::MAX; n];
    in_source_order(plan, deps, &planner.pos, &mut branch_of)
}

/// Orders the parts of every `Par` so that each node comes after the nodes it uses in the
/// plan's reading order. Generated code then sets a slot before any use of it is type-checked
/// (rustc infers the slot's type from `set`, and a method call on a value whose type is not
/// yet known does not compile). Where the parts of a `Par` read slots from each other both
/// ways, the `Par` is flattened into its nodes, each waiting for its own inputs.
fn in_source_order(
    plan: Plan,
    deps: &[Vec<usize>],
    pos: &[usize],
    branch_of: &mut [usize],
) -> Plan {
    match plan {
        Plan::Node(_) => plan,
        Plan::Seq(parts) => Plan::Seq(
            parts
                .into_iter()
                .map(|p| in_source_order(p, deps, pos, branch_of))
                .collect(),
        ),
        Plan::Par(parts) => {
            let parts: Vec<Plan> = parts
                .into_iter()
                .map(|p| in_source_order(p, deps, pos, branch_of))
                .collect();
            let members: Vec<Vec<usize>> = parts.iter().map(nodes_of).collect();
            for (i, nodes) in members.iter().enumerate() {
                for &v in nodes {
                    branch_of[v] = i;
                }
            }
            // Edges between parts, then Kahn's algorithm keeping the original order on ties.
            let mut after = vec![Vec::new(); parts.len()];
            let mut missing = vec![0usize; parts.len()];
            for (j, nodes) in members.iter().enumerate() {
                let mut from: Vec<usize> = nodes
                    .iter()
                    .flat_map(|&v| deps[v].iter().map(|&u| branch_of[u]))
                    .filter(|&i| i != usize::MAX && i != j)
                    .collect();
                from.sort_unstable();
                from.dedup();
                for i in from {
                    after[i].push(j);
                    missing[j] += 1;
                }
            }
            let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..parts
                .len())
                .filter(|&i| missing[i] == 0)
                .map(std::cmp::Reverse)
                .collect();
            let mut order = Vec::with_capacity(parts.len());
            while let Some(std::cmp::Reverse(i)) = ready.pop() {
                order.push(i);
                for &j in &after[i] {
                    missing[j] -= 1;
                    if missing[j] == 0 {
                        ready.push(std::cmp::Reverse(j));
                    }
                }
            }
            for nodes in &members {
                for &v in nodes {
                    branch_of[v] = usize::MAX;
                }
            }
            if order.len() < parts.len() {
                let mut nodes: Vec<usize> = members.into_iter().flatten().collect();
                nodes.sort_by_key(|&v| pos[v]);
                return Plan::Par(nodes.into_iter().map(Plan::Node).collect());
            }
            let mut parts: Vec<Option<Plan>> = parts.into_iter().map(Some).collect();
            Plan::Par(
                order
                    .into_iter()
                    .map(|i| parts[i].take().expect("each part once"))
                    .collect(),
            )
        }
    }
}

/// The nodes of a plan, in reading order.
pub fn nodes_of(plan: &Plan) -> Vec<usize> {
    fn walk(plan: &Plan, out: &mut Vec<usize>) {
        match plan {
            Plan::Node(v) => out.push(*v),
            Plan::Seq(parts) | Plan::Par(parts) => parts.iter().for_each(|p| walk(p, out)),
        }
    }
    let mut out = Vec::new();
    walk(plan, &mut out);
    out
}

/// Kahn's algorithm, smallest index first among ready nodes: deterministic.
fn topo_order(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut succs = vec![Vec::new(); n];
    let mut missing = vec![0usize; n];
    for (v, ds) in deps.iter().enumerate() {
        for &d in ds {
            succs[d].push(v);
            missing[v] += 1;
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|&v| missing[v] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(v)) = ready.pop() {
        order.push(v);
        for &w in &succs[v] {
            missing[w] -= 1;
            if missing[w] == 0 {
                ready.push(std::cmp::Reverse(w));
            }
        }
    }
    assert_eq!(order.len(), n, "plan() needs an acyclic graph");
    order
}

/// The transitive reduction: `u` stays a predecessor of `v` unless `v` reaches it through
/// another predecessor.
fn reduce(deps: &[Vec<usize>], order: &[usize]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut anc = vec![BitSet::new(n); n];
    for &v in order {
        let mut set = BitSet::new(n);
        for &d in &deps[v] {
            set.union_with(&anc[d]);
            set.insert(d);
        }
        anc[v] = set;
    }
    deps.iter()
        .map(|ds| {
            let mut kept: Vec<usize> = ds
                .iter()
                .copied()
                .filter(|&u| !ds.iter().any(|&w| w != u && anc[w].contains(u)))
                .collect();
            kept.sort_unstable();
            kept.dedup();
            kept
        })
        .collect()
}

struct Planner {
    /// Structural predecessors; edges taken out of the structure are removed from here.
    preds: Vec<Vec<usize>>,
    pos: Vec<usize>,
    /// Local index of each node in the set being planned, `usize::MAX` outside it.
    scratch: Vec<usize>,
}

impl Planner {
    /// `set` is sorted by topological position.
    fn plan_set(&mut self, set: Vec<usize>) -> Plan {
        if set.len() == 1 {
            return Plan::Node(set[0]);
        }
        let components = self.components(&set);
        if components.len() > 1 {
            let mut parts = Vec::with_capacity(components.len());
            for c in components {
                // A part that became a `Par` after taking an edge out joins this one.
                match self.plan_set(c) {
                    Plan::Par(inner) => parts.extend(inner),
                    part => parts.push(part),
                }
            }
            return Plan::Par(parts);
        }
        let cuts = self.series_cuts(&set);
        if !cuts.is_empty() {
            let mut parts = Vec::with_capacity(cuts.len() + 1);
            let mut start = 0;
            for cut in cuts.into_iter().chain([set.len()]) {
                match self.plan_set(set[start..cut].to_vec()) {
                    Plan::Seq(inner) => parts.extend(inner),
                    part => parts.push(part),
                }
                start = cut;
            }
            return Plan::Seq(parts);
        }
        if set.len() <= GREEDY_LIMIT && self.cut_one_edge(&set) {
            return self.plan_set(set);
        }
        self.cut_to_chains(&set);
        self.plan_set(set)
    }

    fn enter(&mut self, set: &[usize]) {
        for (i, &v) in set.iter().enumerate() {
            self.scratch[v] = i;
        }
    }

    fn leave(&mut self, set: &[usize]) {
        for &v in set {
            self.scratch[v] = usize::MAX;
        }
    }

    /// Weakly connected components, each in topological order, ordered by first node.
    fn components(&mut self, set: &[usize]) -> Vec<Vec<usize>> {
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        self.enter(set);
        let mut parent: Vec<usize> = (0..set.len()).collect();
        for (i, &v) in set.iter().enumerate() {
            for &u in &self.preds[v] {
                let j = self.scratch[u];
                if j != usize::MAX {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
        self.leave(set);
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_of = vec![usize::MAX; set.len()];
        for (i, &v) in set.iter().enumerate() {
            let root = find(&mut parent, i);
            if group_of[root] == usize::MAX {
                group_of[root] = groups.len();
                groups.push(Vec::new());
            }
            groups[group_of[root]].push(v);
        }
        groups
    }

    /// Positions `i` (in `1..len`) where every node from `i` on has every node before `i`
    /// as an ancestor within the set.
    fn series_cuts(&mut self, set: &[usize]) -> Vec<usize> {
        self.enter(set);
        let len = set.len();
        let mut anc: Vec<BitSet> = Vec::with_capacity(len);
        // first[i]: the first local index that is not an ancestor of node i.
        let mut first = Vec::with_capacity(len);
        for &v in set {
            let mut a = BitSet::new(len);
            for &u in &self.preds[v] {
                let j = self.scratch[u];
                if j != usize::MAX {
                    a.union_with(&anc[j]);
                    a.insert(j);
                }
            }
            first.push(a.first_zero());
            anc.push(a);
        }
        self.leave(set);
        let mut cuts = Vec::new();
        let mut suffix_min = usize::MAX;
        for i in (1..len).rev() {
            suffix_min = suffix_min.min(first[i]);
            if suffix_min >= i {
                cuts.push(i);
            }
        }
        cuts.reverse();
        cuts
    }

    /// Takes out the first edge whose removal disconnects the set or gives it a series cut.
    fn cut_one_edge(&mut self, set: &[usize]) -> bool {
        let edges: Vec<(usize, usize)> = {
            self.enter(set);
            let edges = set
                .iter()
                .flat_map(|&v| self.preds[v].iter().map(move |&u| (u, v)))
                .filter(|&(u, _)| self.scratch[u] != usize::MAX)
                .collect();
            self.leave(set);
            edges
        };
        for (u, v) in edges {
            let at = self.preds[v]
                .iter()
                .position(|&p| p == u)
                .expect("edge exists");
            self.preds[v].remove(at);
            if self.components(set).len() > 1 || !self.series_cuts(set).is_empty() {
                return true;
            }
            self.preds[v].insert(at, u);
        }
        false
    }

    /// Keeps, for each node, at most one predecessor in the set, whose chain it continues,
    /// so that the set falls apart into chains.
    fn cut_to_chains(&mut self, set: &[usize]) {
        self.enter(set);
        let mut continued = vec![false; set.len()];
        for &v in set {
            let mut keep = None;
            // Continue the latest chain that is still open.
            for &u in &self.preds[v] {
                let j = self.scratch[u];
                if j != usize::MAX
                    && !continued[j]
                    && keep.is_none_or(|k: usize| self.pos[u] > self.pos[k])
                {
                    keep = Some(u);
                }
            }
            if let Some(k) = keep {
                continued[self.scratch[k]] = true;
            }
            let scratch = &self.scratch;
            self.preds[v].retain(|&u| scratch[u] == usize::MAX || Some(u) == keep);
        }
        self.leave(set);
    }
}

#[derive(Clone, Debug)]
struct BitSet {
    words: Vec<u64>,
    len: usize,
}

impl BitSet {
    fn new(len: usize) -> Self {
        BitSet {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }
    fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
    fn union_with(&mut self, other: &BitSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }
    fn first_zero(&self) -> usize {
        for (w, word) in self.words.iter().enumerate() {
            if *word != u64::MAX {
                return (w * 64 + word.trailing_ones() as usize).min(self.len);
            }
        }
        self.len
    }
}

/// What a node waits for in a plan: for each node, the nodes of the earlier parts of every
/// `Seq` around it. Its other dependencies are read from slots.
pub fn barriers(plan: &Plan, n: usize) -> Vec<Vec<usize>> {
    fn nodes(plan: &Plan, out: &mut Vec<usize>) {
        match plan {
            Plan::Node(v) => out.push(*v),
            Plan::Seq(parts) | Plan::Par(parts) => parts.iter().for_each(|p| nodes(p, out)),
        }
    }
    fn walk(plan: &Plan, before: &mut Vec<usize>, out: &mut [Vec<usize>]) {
        match plan {
            Plan::Node(v) => out[*v].clone_from(before),
            Plan::Par(parts) => parts.iter().for_each(|p| walk(p, before, out)),
            Plan::Seq(parts) => {
                let mark = before.len();
                for part in parts {
                    walk(part, before, out);
                    nodes(part, before);
                }
                before.truncate(mark);
            }
        }
    }
    let mut out = vec![Vec::new(); n];
    walk(plan, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }

    fn count_nodes(plan: &Plan, seen: &mut Vec<usize>) {
        match plan {
            Plan::Node(v) => seen.push(*v),
            Plan::Seq(parts) => {
                assert!(
                    parts.iter().all(|p| !matches!(p, Plan::Seq(_))),
                    "nested Seq: {plan:?}"
                );
                for p in parts {
                    count_nodes(p, seen);
                }
            }
            Plan::Par(parts) => {
                assert!(parts.len() > 1, "Par of one part");
                assert!(
                    parts.iter().all(|p| !matches!(p, Plan::Par(_))),
                    "nested Par: {plan:?}"
                );
                for p in parts {
                    count_nodes(p, seen);
                }
            }
        }
    }

    fn ancestors(deps: &[Vec<usize>]) -> Vec<Vec<bool>> {
        let n = deps.len();
        let order = topo_order(deps);
        let mut anc = vec![vec![false; n]; n];
        for &v in &order {
            for &d in &deps[v] {
                let from = anc[d].clone();
                for (a, f) in anc[v].iter_mut().zip(from) {
                    *a |= f;
                }
                anc[v][d] = true;
            }
        }
        anc
    }

    /// Simulates the plan: a node starts when every node of its barrier and every dependency
    /// read through a slot has finished. Returns start times, or `None` on a deadlock.
    fn simulate(plan: &Plan, deps: &[Vec<usize>], duration: &[u64]) -> Option<Vec<u64>> {
        let n = deps.len();
        let waits: Vec<Vec<usize>> = barriers(plan, n)
            .into_iter()
            .zip(deps)
            .map(|(mut b, d)| {
                b.extend(d);
                b
            })
            .collect();
        let mut start = vec![None::<u64>; n];
        let mut done = 0;
        while done < n {
            let mut progressed = false;
            for v in 0..n {
                if start[v].is_some() {
                    continue;
                }
                let finishes: Option<Vec<u64>> = waits[v]
                    .iter()
                    .map(|&u| start[u].map(|s| s + duration[u]))
                    .collect();
                if let Some(f) = finishes {
                    start[v] = Some(f.into_iter().max().unwrap_or(0));
                    done += 1;
                    progressed = true;
                }
            }
            if !progressed {
                return None;
            }
        }
        Some(start.into_iter().map(Option::unwrap).collect())
    }

    fn earliest(deps: &[Vec<usize>], duration: &[u64]) -> Vec<u64> {
        let mut start = vec![0; deps.len()];
        for v in topo_order(deps) {
            start[v] = deps[v]
                .iter()
                .map(|&u| start[u] + duration[u])
                .max()
                .unwrap_or(0);
        }
        start
    }

    fn random_dag(rng: &mut Rng, n: usize, density: usize) -> Vec<Vec<usize>> {
        // Edges go from lower to higher rank; ranks are a random permutation of the indices.
        let mut rank: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            rank.swap(i, rng.below(i + 1));
        }
        let mut deps = vec![Vec::new(); n];
        for v in 0..n {
            for u in 0..n {
                if rank[u] < rank[v] && rng.below(100) < density {
                    deps[v].push(u);
                }
            }
        }
        deps
    }

    fn check_optimal(deps: &[Vec<usize>], rng: &mut Rng) -> Plan {
        let n = deps.len();
        let plan = plan(deps);
        let mut seen = Vec::new();
        count_nodes(&plan, &mut seen);
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>(), "every node exactly once");
        let reading = nodes_of(&plan);
        let mut at = vec![0; n];
        for (i, &v) in reading.iter().enumerate() {
            at[v] = i;
        }
        for (v, ds) in deps.iter().enumerate() {
            for &u in ds {
                assert!(at[u] < at[v], "{u} is read before {v} uses it: {plan:?}");
            }
        }
        let anc = ancestors(deps);
        for (v, b) in barriers(&plan, n).iter().enumerate() {
            for &u in b {
                assert!(
                    anc[v][u],
                    "node {v} waits for non-ancestor {u} in {plan:?} for {deps:?}"
                );
            }
        }
        for _ in 0..3 {
            let duration: Vec<u64> = (0..n).map(|_| 1 + rng.next() % 1000).collect();
            let got = simulate(&plan, deps, &duration).expect("no deadlock");
            assert_eq!(got, earliest(deps, &duration), "plan {plan:?} for {deps:?}");
        }
        plan
    }

    fn slot_edges(plan: &Plan, deps: &[Vec<usize>]) -> usize {
        let b = barriers(plan, deps.len());
        deps.iter()
            .enumerate()
            .map(|(v, d)| d.iter().filter(|u| !b[v].contains(u)).count())
            .sum()
    }

    #[test]
    fn random_dags_start_every_node_at_its_earliest_time() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for case in 0..600 {
            let n = 1 + rng.below(if case % 10 == 0 { 100 } else { 30 });
            let density = [2, 5, 10, 30, 60][case % 5];
            let deps = random_dag(&mut rng, n, density);
            check_optimal(&deps, &mut rng);
        }
    }

    /// A random series-parallel graph on nodes `first..first + n` (before relabelling).
    fn random_sp(
        rng: &mut Rng,
        first: usize,
        n: usize,
        deps: &mut [Vec<usize>],
    ) -> (Vec<usize>, Vec<usize>) {
        if n == 1 {
            return (vec![first], vec![first]);
        }
        let k = 1 + rng.below(n - 1);
        let (a_src, a_snk) = random_sp(rng, first, k, deps);
        let (b_src, b_snk) = random_sp(rng, first + k, n - k, deps);
        if rng.below(2) == 0 {
            for &s in &b_src {
                deps[s].extend(&a_snk);
            }
            (a_src, b_snk)
        } else {
            (
                a_src.into_iter().chain(b_src).collect(),
                a_snk.into_iter().chain(b_snk).collect(),
            )
        }
    }

    #[test]
    fn series_parallel_graphs_need_no_slot() {
        let mut rng = Rng(42);
        for _ in 0..400 {
            let n = 1 + rng.below(60);
            let mut deps = vec![Vec::new(); n];
            random_sp(&mut rng, 0, n, &mut deps);
            // Redundant edges to transitive ancestors must not matter.
            let anc = ancestors(&deps);
            for (v, ancestors_of_v) in anc.iter().enumerate() {
                for (u, &is_ancestor) in ancestors_of_v.iter().enumerate() {
                    if is_ancestor && rng.below(10) == 0 {
                        deps[v].push(u);
                    }
                }
            }
            // Relabel so source order does not follow the structure.
            let mut perm: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                perm.swap(i, rng.below(i + 1));
            }
            let mut relabelled = vec![Vec::new(); n];
            for (v, ds) in deps.iter().enumerate() {
                relabelled[perm[v]] = ds.iter().map(|&u| perm[u]).collect();
            }
            let plan = check_optimal(&relabelled, &mut rng);
            assert_eq!(slot_edges(&plan, &relabelled), 0, "{plan:?}");
        }
    }

    #[test]
    fn seed_graph_is_nested_joins() {
        use Plan::{Node, Par, Seq};
        // a, b(a), sa, fb, c(sa, fb), end(b, c)
        let deps = vec![vec![], vec![0], vec![], vec![], vec![2, 3], vec![1, 4]];
        let p = plan(&deps);
        assert_eq!(
            p,
            Seq(vec![
                Par(vec![
                    Seq(vec![Node(0), Node(1)]),
                    Seq(vec![Par(vec![Node(2), Node(3)]), Node(4)])
                ]),
                Node(5)
            ])
        );
    }

    #[test]
    fn n_shape_uses_one_slot() {
        // a -> c, b -> c, b -> d
        let deps = vec![vec![], vec![], vec![0, 1], vec![1]];
        let mut rng = Rng(7);
        let p = check_optimal(&deps, &mut rng);
        assert_eq!(slot_edges(&p, &deps), 1, "{p:?}");
    }

    #[test]
    fn large_layered_graph_plans_quickly() {
        let mut rng = Rng(3);
        let (layers, width) = (100, 10);
        let mut deps = vec![Vec::new(); layers * width];
        for l in 1..layers {
            for i in 0..width {
                for _ in 0..3 {
                    deps[l * width + i].push((l - 1) * width + rng.below(width));
                }
                deps[l * width + i].sort_unstable();
                deps[l * width + i].dedup();
            }
        }
        check_optimal(&deps, &mut rng);
    }
}
