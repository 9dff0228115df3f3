//! Dependency cycles of a graph, named the same way by the `dag!` macro and the run-time
//! engine: one per strongly connected component, as its shortest path through the
//! component's first node.
//!
//! An implementation detail of `dagjoin`, in a crate of its own so that the proc-macro crate
//! can share it without building the run-time crates: it may change in any release.

use std::collections::VecDeque;

/// Every dependency cycle of `deps` (`deps[v]` the nodes `v` uses), one per strongly connected
/// component with a cycle, each as the shortest path `start -> .. -> start` through the
/// component's first node, in order of that node. A self-dependency is the cycle `v -> v`.
pub fn cycles(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    strongly_connected(deps)
        .into_iter()
        .filter(|scc| scc.len() > 1 || deps[scc[0]].contains(&scc[0]))
        .map(|scc| shortest_cycle(deps, &scc, scc[0]))
        .collect()
}

/// Strongly connected components (Tarjan, iterative), each sorted, in order of their first
/// node.
fn strongly_connected(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = deps.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if let Some(&w) = deps[v].get(*edge) {
                *edge += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    loop {
                        let w = stack.pop().expect("v is on the stack");
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    component.sort_unstable();
                    out.push(component);
                }
            }
        }
    }
    out.sort_by_key(|c| c[0]);
    out
}

/// `start -> .. -> start` within `scc`, following `deps`, shortest first (BFS).
fn shortest_cycle(deps: &[Vec<usize>], scc: &[usize], start: usize) -> Vec<usize> {
    let mut parent = vec![usize::MAX; deps.len()];
    let mut queue = VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &deps[v] {
            if scc.binary_search(&w).is_err() {
                continue;
            }
            if w == start {
                let mut back = Vec::new();
                let mut at = v;
                while at != start {
                    back.push(at);
                    at = parent[at];
                }
                back.reverse();
                let mut path = vec![start];
                path.extend(back);
                path.push(start);
                return path;
            }
            if parent[w] == usize::MAX && w != start {
                parent[w] = v;
                queue.push_back(w);
            }
        }
    }
    unreachable!("a strongly connected component with a cycle has a cycle through each node")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        let deps = vec![vec![1], vec![2], vec![0], vec![], vec![3]];
        assert_eq!(
            strongly_connected(&deps),
            vec![vec![0, 1, 2], vec![3], vec![4]]
        );
    }

    #[test]
    fn cycle_paths_in_dependency_order() {
        // a uses b, b uses c, c uses a.
        assert_eq!(cycles(&[vec![1], vec![2], vec![0]]), vec![vec![0, 1, 2, 0]]);
        assert_eq!(cycles(&[vec![1], vec![0]]), vec![vec![0, 1, 0]]);
        assert_eq!(cycles(&[vec![0], vec![]]), vec![vec![0, 0]]);
        assert!(cycles(&[vec![], vec![0]]).is_empty());
    }
}
