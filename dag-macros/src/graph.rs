//! The model: nodes in source order, each with the nodes its expression uses.
//!
//! A node depends on every other node whose name appears in its expression as a variable:
//! arguments, method receivers, closures, nested blocks and the arguments of macro calls,
//! including names captured by a format string (`"{a}"`). `uses` finds them. Every other
//! identifier is an ordinary variable from the surrounding scope.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Expr, Ident, Token};

use crate::attrs::{self, NodeAttrs, Retry, Timeout};
use crate::parse::{Input, NodeStmt};
use crate::uses;

/// Index of a node in source order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// How a consumer uses a node's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only through `&name`, a method call `name.m()`, a field `name.f` or an index `name[i]`:
    /// the consumer can share the value.
    Borrow,
    /// By value somewhere: the consumer gets a value of its own (moved or cloned).
    Own,
}

/// One use of node `node` by some consumer: the first place it is named, and how it is used.
#[derive(Clone, Debug)]
pub struct Use {
    pub node: NodeId,
    /// The identifier at the first reference site: where errors about this edge point.
    pub site: Ident,
    pub mode: Mode,
    /// The name appears inside a format string (`"{a}"`), which cannot be rewritten.
    pub in_format_string: bool,
    /// The first `&name` outside any `move` closure or `async move` block: a borrow that
    /// must outlive the consumer's evaluation.
    pub ref_site: Option<Ident>,
    /// The first `&mut name`: a consumer cannot borrow a node's value mutably.
    pub mut_ref_site: Option<Ident>,
}

/// Where a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Polled on the graph's own task.
    Inline,
    /// `#[spawn]`: its own tokio task.
    Spawn,
    /// `#[blocking]`: a synchronous expression on tokio's blocking pool.
    Blocking,
}

pub struct Node {
    pub name: Ident,
    pub placement: Placement,
    /// `#[timeout(..)]`: the graph can fail even without `?`.
    pub timeout: Option<Timeout>,
    pub retry: Option<Retry>,
    pub expr: Expr,
    pub question: Option<Token![?]>,
    /// Distinct nodes used, in order of first use.
    pub uses: Vec<Use>,
    /// Plain variables of the expression that name neither a node nor a binding of its own.
    pub free: Vec<Ident>,
}

impl Node {
    /// Whether the node can fail: it has `?` or a timeout.
    pub fn fallible(&self) -> bool {
        self.question.is_some() || self.timeout.is_some()
    }
}

pub struct Graph {
    pub krate: TokenStream,
    pub move_token: Option<Token![move]>,
    pub error_type: Option<crate::parse::ErrorOption>,
    pub nodes: Vec<Node>,
    pub tail: Option<Expr>,
    pub tail_uses: Vec<Use>,
    /// First definition of each name.
    pub names: BTreeMap<String, NodeId>,
    pub tail_free: Vec<Ident>,
    /// Errors in the nodes' attributes, reported by `check`.
    pub attr_errors: Vec<syn::Error>,
    /// The names some expression uses as a function or a path, once a near miss needs them.
    path_heads: OnceCell<BTreeSet<String>>,
}

impl Graph {
    pub fn new(input: Input) -> Graph {
        let mut names = BTreeMap::new();
        for (i, node) in input.nodes.iter().enumerate() {
            names.entry(unraw(&node.name)).or_insert(NodeId(i));
        }
        let mut attr_errors = Vec::new();
        let nodes = input
            .nodes
            .into_iter()
            .map(
                |NodeStmt {
                     attrs,
                     name,
                     expr,
                     question,
                 }| {
                    let (attrs, errors) =
                        attrs::node_attrs(&attrs, &unraw(&name), question.is_some());
                    attr_errors.extend(errors);
                    let NodeAttrs {
                        placement,
                        timeout,
                        retry,
                    } = attrs;
                    let (mut uses, free) = uses::find_uses(&names, &expr);
                    if placement == Placement::Blocking {
                        // The closure run on the blocking pool is `move`: it owns what it names.
                        for u in &mut uses {
                            u.mode = Mode::Own;
                        }
                    }
                    Node {
                        name,
                        placement,
                        timeout,
                        retry,
                        expr,
                        question,
                        uses,
                        free,
                    }
                },
            )
            .collect();
        let (tail_uses, tail_free) = input
            .tail
            .as_ref()
            .map(|t| uses::find_uses(&names, t))
            .unwrap_or_default();
        Graph {
            krate: input.krate,
            move_token: input.move_token,
            error_type: input.error_type,
            nodes,
            tail: input.tail,
            tail_uses,
            tail_free,
            names,
            attr_errors,
            path_heads: OnceCell::new(),
        }
    }

    /// Whether any node can fail (it has `?` or a timeout): the graph then resolves to a
    /// `Result`.
    pub fn fallible(&self) -> bool {
        self.nodes.iter().any(Node::fallible)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes whose names one of the `free` variables of an expression that uses `uses`
    /// nearly spells (`usr` for `user`), other than those it uses (in scope already, with
    /// their values) and those some expression names as a function or a path (`user(..)`,
    /// `user::<T>`). If that variable is a typo, a binding of the node's name in scope makes
    /// rustc's "cannot find value" say that a similar name exists.
    pub fn near_misses(&self, free: &[Ident], uses: &[Use]) -> Vec<&Ident> {
        let mut near: Vec<&Ident> = Vec::new();
        for ident in free {
            let spelled = unraw(ident);
            for (name, &id) in &self.names {
                let node = &self.nodes[id.0].name;
                if similar(&spelled, name)
                    && !uses.iter().any(|u| u.node == id)
                    && !near.contains(&node)
                    && !self.names_a_path(name)
                {
                    near.push(node);
                }
            }
        }
        near
    }

    /// Whether some expression names `name` as a function or a path: `name(..)`, `name::..`.
    fn names_a_path(&self, name: &str) -> bool {
        self.path_heads
            .get_or_init(|| {
                let mut heads = BTreeSet::new();
                for expr in self.nodes.iter().map(|n| &n.expr).chain(&self.tail) {
                    path_heads(expr.to_token_stream(), &mut heads);
                }
                heads
            })
            .contains(name)
    }

    /// `deps[v]`: the distinct nodes `v` uses, excluding itself.
    pub fn deps(&self) -> Vec<Vec<usize>> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(v, node)| {
                let mut deps: Vec<usize> = node
                    .uses
                    .iter()
                    .map(|u| u.node.0)
                    .filter(|&d| d != v)
                    .collect();
                deps.sort_unstable();
                deps.dedup();
                deps
            })
            .collect()
    }
}

/// The identifiers in `tokens`, in order, those in groups included.
pub fn idents(tokens: TokenStream) -> Vec<Ident> {
    let mut out = Vec::new();
    for tree in tokens {
        match tree {
            TokenTree::Ident(ident) => out.push(ident),
            TokenTree::Group(group) => out.extend(idents(group.stream())),
            TokenTree::Punct(_) | TokenTree::Literal(_) => {}
        }
    }
    out
}

/// Collects the identifiers in `tokens` followed by `(..)` or `::` (without `r#`).
fn path_heads(tokens: TokenStream, heads: &mut BTreeSet<String>) {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) => {
                let head = match iter.peek() {
                    Some(TokenTree::Group(g)) => {
                        g.delimiter() == proc_macro2::Delimiter::Parenthesis
                    }
                    Some(TokenTree::Punct(p)) => p.as_char() == ':',
                    _ => false,
                };
                if head {
                    heads.insert(unraw(&ident));
                }
            }
            TokenTree::Group(group) => path_heads(group.stream(), heads),
            TokenTree::Punct(_) | TokenTree::Literal(_) => {}
        }
    }
}

/// Whether `a` is a likely misspelling of `b`: at most one edit in three characters, as
/// rustc's own suggestions count them.
fn similar(a: &str, b: &str) -> bool {
    let limit = (b.chars().count() / 3).max(1);
    if a.chars().count().abs_diff(b.chars().count()) > limit {
        return false;
    }
    let b: Vec<char> = b.chars().collect();
    // Levenshtein distance, one row at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()] <= limit
}

/// A name as written, without `r#`.
pub fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map_or(s.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn near_misses_are_free_variables_nearly_spelling_a_name_not_used_as_a_path() {
        assert!(similar("usr", "user") && similar("ordrs", "orders") && similar("user", "users"));
        assert!(!similar("id", "user") && !similar("x", "yy") && !similar("fetch", "user"));
        let near = |input: TokenStream| {
            let graph = Graph::new(crate::parse::parse(input).unwrap());
            let page = &graph.nodes[1];
            let names: Vec<String> = graph
                .near_misses(&page.free, &page.uses)
                .iter()
                .map(ToString::to_string)
                .collect();
            names
        };
        assert_eq!(near(quote!(k; user = f(1); page = g(usr); page)), ["user"]);
        // `user(..)` and `user::<T>` name a function: a binding would hide it.
        assert!(near(quote!(k; user = user(1); page = g(usr); page)).is_empty());
        assert!(near(quote!(k; user = user::<u8>; page = g(usr); page)).is_empty());
        // Bound in the expression, or not a variable: no hint.
        assert!(near(quote!(k; user = f(1); page = { let usr = 1; usr }; page)).is_empty());
        assert!(near(quote!(k; user = f(1); page = x.usr(); page)).is_empty());
        assert!(near(quote!(k; user = f(1); page = g(user, id); page)).is_empty());
        // A node the expression uses is in scope with its value: no binding to hide it.
        assert!(near(quote!(k; user = f(1); page = g(user, users); page)).is_empty());
    }
}
