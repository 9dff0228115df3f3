//! Rules a graph must follow. Every rule runs and reports into one [`Ctxt`], so the user sees
//! all mistakes at once; a rule does not report what another rule already reported.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;

use crate::graph::{unraw, Graph, NodeId, Placement};

/// Collects errors, as `serde_derive` does. It must be consumed by [`Ctxt::check`]: dropping it
/// with errors unchecked is a bug in the macro.
pub struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    pub fn error_spanned(&self, span: Span, message: impl Display) {
        self.syn_error(syn::Error::new(span, message));
    }

    pub fn syn_error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt used after check")
            .push(error);
    }

    /// All errors combined into one, or `Ok` when there were none.
    pub fn check(self) -> syn::Result<()> {
        let errors = self.errors.borrow_mut().take().expect("Ctxt checked twice");
        let mut iter = errors.into_iter();
        let Some(mut combined) = iter.next() else {
            return Ok(());
        };
        for e in iter {
            combined.combine(e);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        assert!(
            std::thread::panicking() || self.errors.borrow().is_none(),
            "forgot to check for errors"
        );
    }
}

/// Runs every rule.
pub fn check(cx: &Ctxt, graph: &Graph) {
    duplicate_names(cx, graph);
    attributes(cx, graph);
    attribute_arguments(cx, graph);
    spawned_borrows(cx, graph);
    mutable_borrows(cx, graph);
    error_option(cx, graph);
    self_dependency(cx, graph);
    cycles(cx, graph);
}

// A name defines one node: a second definition is an error at the second name.
fn duplicate_names(cx: &Ctxt, graph: &Graph) {
    for (i, node) in graph.nodes.iter().enumerate() {
        let first = graph.names[&unraw(&node.name)];
        if first.0 != i {
            cx.error_spanned(
                node.name.span(),
                format!(
                    "task `{}` is defined more than once; give each task its own name",
                    unraw(&node.name)
                ),
            );
        }
    }
}

// A node's attributes are those `attrs` knows, each once, with their arguments, in
// combinations that mean something; the trailing expression has none.
fn attributes(cx: &Ctxt, graph: &Graph) {
    for error in &graph.attr_errors {
        cx.syn_error(error.clone());
    }
    if let Some(tail) = &graph.tail {
        if let Some(attr) = expr_attrs(tail).first() {
            cx.error_spanned(
                attr.pound_token.span,
                "attributes go on task statements, not on the trailing expression",
            );
        }
    }
}

// The arguments of `#[timeout(..)]` and `#[retry(..)]` are evaluated when their task starts,
// from the graph's surroundings: a task's name there is an error at the name.
fn attribute_arguments(cx: &Ctxt, graph: &Graph) {
    for node in &graph.nodes {
        let timeout = node.timeout.iter().map(|t| ("timeout", t.limit.clone()));
        let retry = node.retry.iter().flat_map(|r| {
            let count = quote::ToTokens::to_token_stream(&r.retries);
            [("retry", count)]
                .into_iter()
                .chain(r.backoff.clone().map(|b| ("retry", b)))
        });
        for (attr, tokens) in timeout.chain(retry) {
            for ident in crate::graph::idents(tokens) {
                if graph.names.contains_key(&unraw(&ident)) {
                    cx.error_spanned(
                        ident.span(),
                        format!(
                            "`#[{attr}(..)]` of task `{}` cannot use task `{}`: its arguments are evaluated from outside the graph; to choose them from a task's value, make the task's expression apply the limit itself",
                            unraw(&node.name),
                            unraw(&ident)
                        ),
                    );
                }
            }
        }
    }
}

fn expr_attrs(expr: &syn::Expr) -> &[syn::Attribute] {
    use syn::Expr;
    match expr {
        Expr::Array(e) => &e.attrs,
        Expr::Call(e) => &e.attrs,
        Expr::MethodCall(e) => &e.attrs,
        Expr::Path(e) => &e.attrs,
        Expr::Tuple(e) => &e.attrs,
        Expr::Macro(e) => &e.attrs,
        Expr::Block(e) => &e.attrs,
        Expr::Async(e) => &e.attrs,
        Expr::Lit(e) => &e.attrs,
        Expr::Binary(e) => &e.attrs,
        Expr::Await(e) => &e.attrs,
        _ => &[],
    }
}

// A spawned node runs as its own task, which cannot borrow from the graph: `&name` in it is
// an error at the borrow.
fn spawned_borrows(cx: &Ctxt, graph: &Graph) {
    for node in graph
        .nodes
        .iter()
        .filter(|n| n.placement == Placement::Spawn)
    {
        for u in &node.uses {
            if let Some(site) = &u.ref_site {
                let used = unraw(&graph.nodes[u.node.0].name);
                cx.error_spanned(
                    site.span(),
                    format!(
                        "`#[spawn]` task `{}` cannot borrow `{used}`: a spawned task must own what it uses; pass `{used}` by value, clone it, or share it through an `Arc`",
                        unraw(&node.name)
                    ),
                );
            }
        }
    }
}

// Nodes run side by side and share a value only by shared reference: `&mut name` is an
// error at the borrow, in a node or in the output expression.
fn mutable_borrows(cx: &Ctxt, graph: &Graph) {
    let consumers = graph
        .nodes
        .iter()
        .map(|n| (Some(&n.name), &n.uses))
        .chain([(None, &graph.tail_uses)]);
    for (consumer, uses) in consumers {
        for u in uses {
            let Some(site) = &u.mut_ref_site else {
                continue;
            };
            let used = unraw(&graph.nodes[u.node.0].name);
            let message = match consumer {
                Some(name) => format!(
                    "task `{}` cannot borrow `{used}` mutably: tasks share a value only by shared reference (`&{used}`); to change it, take it by value and return the result (`f({used})`)",
                    unraw(name)
                ),
                None => format!(
                    "the output cannot borrow `{used}` mutably; rebind it first: `{{ let mut {used} = {used}; .. }}`"
                ),
            };
            cx.error_spanned(site.span(), message);
        }
    }
}

// `type Error = ..;` only means something for a graph with fallible (`?`) nodes.
fn error_option(cx: &Ctxt, graph: &Graph) {
    if let Some(option) = &graph.error_type {
        if !graph.fallible() {
            cx.error_spanned(
                option.type_token.span,
                "`type Error` needs at least one fallible task (`name = expression?;`); without one the graph cannot fail",
            );
        }
    }
}

// A node cannot use its own value.
fn self_dependency(cx: &Ctxt, graph: &Graph) {
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Some(u) = node.uses.iter().find(|u| u.node == NodeId(i)) {
            cx.error_spanned(
                u.site.span(),
                format!(
                    "task `{0}` uses its own value; a task can only use other tasks (for a variable named `{0}` from outside the graph, rename the task)",
                    unraw(&node.name)
                ),
            );
        }
    }
}

// The graph has no cycle (through two or more nodes). Each cycle is reported once, with its
// whole path, at the reference that closes it.
fn cycles(cx: &Ctxt, graph: &Graph) {
    // Self-dependencies are their own rule, and `deps` leaves them out.
    for path in dag_cycles::cycles(&graph.deps()) {
        let start = path[0];
        let names: Vec<String> = path
            .iter()
            .map(|&v| format!("`{}`", unraw(&graph.nodes[v].name)))
            .collect();
        let closing = path[path.len() - 2];
        let site = graph.nodes[closing]
            .uses
            .iter()
            .find(|u| u.node == NodeId(start))
            .map_or_else(|| graph.nodes[closing].name.span(), |u| u.site.span());
        cx.error_spanned(site, format!("dependency cycle: {}", names.join(" -> ")));
    }
}
