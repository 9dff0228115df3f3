//! Finding uses: where a node's expression (or the trailing expression) names other nodes,
//! and how (by value, by reference, in a format string), minding the names the expression
//! binds itself; and rewriting those names where a value is read from elsewhere.
//!
//! A name bound inside the expression (a closure parameter, a `let`, a `match` arm) hides the
//! node of the same name there. In macro calls, arguments that parse as expressions are
//! visited as such, `{name}` in the format strings of known format macros is a use, and the
//! arguments of macros that do not evaluate them (`stringify!`, ..) are not.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident, Macro, Pat, Stmt, Token};

use crate::graph::{unraw, Mode, NodeId, Use};

/// The uses of nodes in `expr`, one per node, in order of first appearance; and its free
/// variables, plain variables that name neither a node nor a binding of the expression.
pub fn find_uses(names: &BTreeMap<String, NodeId>, expr: &Expr) -> (Vec<Use>, Vec<Ident>) {
    let mut expr = expr.clone();
    let mut refs = Refs::new(names, None);
    refs.visit_expr_mut(&mut expr);
    let mut uses: Vec<Use> = Vec::new();
    for site in refs.sites {
        match uses.iter_mut().find(|u| u.node == site.node) {
            Some(u) => {
                if site.mode == Mode::Own {
                    u.mode = Mode::Own;
                }
                u.in_format_string |= site.in_format_string;
                if u.mut_ref_site.is_none() && site.mut_ref {
                    u.mut_ref_site = Some(site.ident.clone());
                }
                if u.ref_site.is_none() && site.explicit_ref {
                    u.ref_site = Some(site.ident);
                }
            }
            None => uses.push(Use {
                node: site.node,
                mode: site.mode,
                in_format_string: site.in_format_string,
                ref_site: site.explicit_ref.then(|| site.ident.clone()),
                mut_ref_site: site.mut_ref.then(|| site.ident.clone()),
                site: site.ident,
            }),
        }
    }
    (uses, refs.free)
}

/// Replaces every reference to the nodes in `replace` inside `expr` by the given tokens.
pub fn rewrite(
    names: &BTreeMap<String, NodeId>,
    expr: &Expr,
    replace: &BTreeMap<NodeId, TokenStream>,
) -> Expr {
    let mut expr = expr.clone();
    let mut refs = Refs::new(names, Some(replace));
    refs.visit_expr_mut(&mut expr);
    expr
}

struct Site {
    node: NodeId,
    ident: Ident,
    mode: Mode,
    in_format_string: bool,
    explicit_ref: bool,
    mut_ref: bool,
}

impl Site {
    /// A use of `node` at `ident`, outside format strings and not behind `&` or `&mut`.
    fn new(node: NodeId, ident: Ident, mode: Mode) -> Site {
        Site {
            node,
            ident,
            mode,
            in_format_string: false,
            explicit_ref: false,
            mut_ref: false,
        }
    }

    /// The same use, named inside a format string.
    fn in_format_string(self) -> Site {
        Site {
            in_format_string: true,
            ..self
        }
    }
}

/// Finds (and optionally rewrites) references to node names, minding names bound inside
/// the expression.
struct Refs<'a> {
    names: &'a BTreeMap<String, NodeId>,
    replace: Option<&'a BTreeMap<NodeId, TokenStream>>,
    /// Names bound by patterns inside the expression, innermost scope last.
    scopes: Vec<Vec<String>>,
    sites: Vec<Site>,
    /// Plain variables that name neither a node nor a binding of the expression: variables of
    /// the surroundings, or misspelled nodes.
    free: Vec<Ident>,
    /// Inside a `move` closure or an `async move` block, which take whatever they name.
    moving: usize,
}

impl<'a> Refs<'a> {
    fn new(
        names: &'a BTreeMap<String, NodeId>,
        replace: Option<&'a BTreeMap<NodeId, TokenStream>>,
    ) -> Self {
        Refs {
            names,
            replace,
            scopes: Vec::new(),
            sites: Vec::new(),
            free: Vec::new(),
            moving: 0,
        }
    }

    fn resolve(&self, name: &str) -> Option<NodeId> {
        if self
            .scopes
            .iter()
            .any(|scope| scope.iter().any(|n| n == name))
        {
            return None;
        }
        self.names.get(name).copied()
    }

    /// If `expr` is a plain variable naming a node, records the site and, when rewriting,
    /// replaces it. Returns whether it was one.
    fn path_site(&mut self, expr: &mut Expr, mode: Mode, explicit_ref: bool) -> bool {
        let Some(ident) = plain_ident(expr) else {
            return false;
        };
        let name = unraw(ident);
        let Some(node) = self.resolve(&name) else {
            let bound = self.scopes.iter().any(|scope| scope.contains(&name));
            if !bound {
                self.free.push(ident.clone());
            }
            return false;
        };
        let mode = if self.moving > 0 { Mode::Own } else { mode };
        self.sites.push(Site {
            explicit_ref: explicit_ref && self.moving == 0,
            ..Site::new(node, ident.clone(), mode)
        });
        if let Some(tokens) = self.replace.and_then(|r| r.get(&node)) {
            *expr = Expr::Verbatim(tokens.clone());
        }
        true
    }

    /// `&name` borrows the node; `&mut name` is recorded (an error); `&expr` is visited.
    fn reference(&mut self, r: &mut syn::ExprReference) {
        let mutable = r.mutability.is_some();
        let mode = if mutable { Mode::Own } else { Mode::Borrow };
        if self.path_site(&mut r.expr, mode, !mutable) {
            if let Some(site) = self.sites.last_mut() {
                site.mut_ref = mutable;
            }
        } else {
            self.visit_expr_mut(&mut r.expr);
        }
    }

    fn with_scope(&mut self, names: Vec<String>, f: impl FnOnce(&mut Self)) {
        self.scopes.push(names);
        f(self);
        self.scopes.pop();
    }

    fn visit_macro(&mut self, mac: &mut Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string());
        let format_like = match MacroKind::of(name.as_deref().unwrap_or_default()) {
            MacroKind::Unevaluated => return,
            MacroKind::Dag => {
                let tokens = std::mem::take(&mut mac.tokens);
                mac.tokens = self.scan_dag(tokens);
                return;
            }
            MacroKind::Format => true,
            MacroKind::Other => false,
        };
        // Most macros take comma-separated expressions (`vec!`, `format!`, `assert!`).
        if let Ok(mut args) = mac.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated) {
            for arg in &mut args {
                match arg {
                    // A named format argument `name = value`: `name` is not a variable.
                    Expr::Assign(assign) if format_like && plain_ident(&assign.left).is_some() => {
                        self.visit_expr_mut(&mut assign.right);
                    }
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) if format_like => {
                        let (value, span) = (s.value(), s.span());
                        self.format_string(&value, span);
                    }
                    arg => self.visit_expr_mut(arg),
                }
            }
            if self.replace.is_some() {
                mac.tokens = args.to_token_stream();
            }
            return;
        }
        let tokens = std::mem::take(&mut mac.tokens);
        mac.tokens = self.scan_tokens(tokens, format_like);
    }

    /// The body of a `dag!` inside a node, read token by token: its own node names hide the
    /// outer ones in all of it.
    fn scan_dag(&mut self, tokens: TokenStream) -> TokenStream {
        let inner = dag_node_names(&tokens);
        let mut out = TokenStream::new();
        self.with_scope(inner, |refs| out = refs.scan_tokens(tokens, false));
        out
    }

    /// Macro arguments that are not comma-separated expressions, read token by token: every
    /// identifier naming a node counts, except after `.` or `::` (fields, methods, paths) and
    /// before `::` or `!` (paths, macro names). Attributes (doc comments) and the arguments of
    /// macros that evaluate nothing are skipped; string literals are format strings where
    /// `format` is set (the top level of a format macro's arguments) and in format macros
    /// called inside.
    fn scan_tokens(&mut self, tokens: TokenStream, format: bool) -> TokenStream {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = TokenStream::new();
        for (i, tt) in trees.iter().enumerate() {
            match tt {
                TokenTree::Group(g) => {
                    let prev = |back: usize| i.checked_sub(back).and_then(|j| trees.get(j));
                    let attribute = matches!(prev(1), Some(TokenTree::Punct(p)) if p.as_char() == '#')
                        || matches!((prev(2), prev(1)), (Some(TokenTree::Punct(h)), Some(TokenTree::Punct(b))) if h.as_char() == '#' && b.as_char() == '!');
                    let called = match (prev(2), prev(1)) {
                        (Some(TokenTree::Ident(name)), Some(TokenTree::Punct(bang)))
                            if bang.as_char() == '!' =>
                        {
                            Some(name.to_string())
                        }
                        _ => None,
                    };
                    let inner = match called.as_deref().map(MacroKind::of) {
                        _ if attribute => g.stream(),
                        Some(MacroKind::Unevaluated) => g.stream(),
                        Some(MacroKind::Dag) => self.scan_dag(g.stream()),
                        Some(MacroKind::Format) => self.scan_tokens(g.stream(), true),
                        Some(MacroKind::Other) | None => self.scan_tokens(g.stream(), false),
                    };
                    let mut group = proc_macro2::Group::new(g.delimiter(), inner);
                    group.set_span(g.span());
                    out.extend([TokenTree::Group(group)]);
                }
                TokenTree::Ident(ident) => {
                    let prev = i.checked_sub(1).and_then(|j| trees.get(j));
                    let after_dot_or_path = matches!(prev, Some(TokenTree::Punct(p)) if p.as_char() == '.' || p.as_char() == ':' || p.as_char() == '\'');
                    let before_path_or_bang = matches!(trees.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '!' || (p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint));
                    let node = (!after_dot_or_path && !before_path_or_bang)
                        .then(|| self.resolve(&unraw(ident)))
                        .flatten();
                    match node {
                        Some(node) => {
                            self.sites.push(Site::new(node, ident.clone(), Mode::Own));
                            match self.replace.and_then(|r| r.get(&node)) {
                                Some(tokens) => out.extend(tokens.clone()),
                                None => out.extend([tt.clone()]),
                            }
                        }
                        None => out.extend([tt.clone()]),
                    }
                }
                TokenTree::Literal(literal) => {
                    if format {
                        let tokens = TokenStream::from(TokenTree::Literal(literal.clone()));
                        if let Ok(s) = syn::parse2::<syn::LitStr>(tokens) {
                            self.format_string(&s.value(), s.span());
                        }
                    }
                    out.extend([tt.clone()]);
                }
                TokenTree::Punct(_) => out.extend([tt.clone()]),
            }
        }
        out
    }

    /// Names captured by a format string: `{name}`, `{name:?}`, `{name:>width$}`.
    fn format_string(&mut self, text: &str, span: Span) {
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            rest = &rest[open + 1..];
            if let Some(stripped) = rest.strip_prefix('{') {
                rest = stripped; // `{{` is a literal brace
                continue;
            }
            let end = rest.find(['}', ':']).unwrap_or(rest.len());
            let name = rest[..end].trim();
            if let Some(node) = self.resolve(name) {
                let mode = if self.moving > 0 {
                    Mode::Own
                } else {
                    Mode::Borrow
                };
                self.sites
                    .push(Site::new(node, Ident::new(name, span), mode).in_format_string());
            }
            // Width and precision arguments: `{:>width$}` `{:.prec$}`.
            let spec_end = rest.find('}').unwrap_or(rest.len());
            for part in
                rest[end..spec_end].split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            {
                if let Some(name) = part.strip_suffix('$') {
                    if let Some(node) = self.resolve(name) {
                        let site = Site::new(node, Ident::new(name, span), Mode::Borrow);
                        self.sites.push(site.in_format_string());
                    }
                }
            }
            rest = &rest[spec_end.min(rest.len())..];
        }
    }
}

/// `name` as an expression: a single-segment path without generics.
fn plain_ident(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p.path.get_ident(),
        _ => None,
    }
}

/// Macros whose arguments are tokens or literals, never evaluated as expressions.
const UNEVALUATED_MACROS: &[&str] = &[
    "stringify",
    "concat",
    "include",
    "include_str",
    "include_bytes",
    "env",
    "option_env",
    "line",
    "column",
    "file",
    "module_path",
    "cfg",
    "compile_error",
];

/// The node names a `dag!` body defines: the `name` of each statement `name = ..;`
/// (after its attributes, if any).
fn dag_node_names(body: &TokenStream) -> Vec<String> {
    let trees: Vec<TokenTree> = body.clone().into_iter().collect();
    let mut names = Vec::new();
    let mut start = true;
    let mut i = 0;
    while i < trees.len() {
        match (&trees[i], trees.get(i + 1), trees.get(i + 2)) {
            (TokenTree::Punct(p), _, _) if p.as_char() == ';' => start = true,
            // An attribute keeps the statement's start.
            (TokenTree::Punct(p), Some(TokenTree::Group(_)), _) if start && p.as_char() == '#' => {
                i += 1;
            }
            (TokenTree::Ident(name), Some(TokenTree::Punct(eq)), next) if start => {
                // `name = ..`, not `name == ..`.
                let double = matches!(next, Some(TokenTree::Punct(p)) if p.as_char() == '=');
                if eq.as_char() == '=' && !double {
                    names.push(unraw(name));
                }
                start = false;
            }
            _ => start = false,
        }
        i += 1;
    }
    names
}

/// How a macro's arguments are read, by its name (the last segment of its path).
#[derive(Clone, Copy)]
enum MacroKind {
    /// Not evaluated ([`UNEVALUATED_MACROS`]): no variable is used.
    Unevaluated,
    /// A graph inside a node: its own node names hide the outer ones in all of it.
    Dag,
    /// Takes a format string, whose `{name}`s are uses.
    Format,
    Other,
}

impl MacroKind {
    fn of(name: &str) -> MacroKind {
        if UNEVALUATED_MACROS.contains(&name) {
            MacroKind::Unevaluated
        } else if name == "dag" {
            MacroKind::Dag
        } else if is_format_macro(name) {
            MacroKind::Format
        } else {
            MacroKind::Other
        }
    }
}

/// Whether the macro of that name takes a format string.
fn is_format_macro(name: &str) -> bool {
    const FORMAT_MACROS: &[&str] = &[
        "format",
        "format_args",
        "print",
        "println",
        "eprint",
        "eprintln",
        "write",
        "writeln",
        "panic",
        "assert",
        "assert_eq",
        "assert_ne",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
        "unreachable",
        "todo",
        "unimplemented",
        "trace",
        "debug",
        "info",
        "warn",
        "error",
        "log",
        "event",
        "bail",
        "anyhow",
        "ensure",
        "format_err",
        "eyre",
        "miette",
    ];
    FORMAT_MACROS.contains(&name)
}

/// Names bound by a pattern.
fn pat_names(pat: &Pat) -> Vec<String> {
    struct Names(Vec<String>);
    impl<'ast> syn::visit::Visit<'ast> for Names {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            self.0.push(unraw(&p.ident));
            syn::visit::visit_pat_ident(self, p);
        }
    }
    let mut names = Names(Vec::new());
    syn::visit::Visit::visit_pat(&mut names, pat);
    names.0
}

/// Names bound by `let` patterns in an `if`/`while` condition (`if let`, let chains).
fn cond_bindings(cond: &Expr, out: &mut Vec<String>) {
    match cond {
        Expr::Let(l) => out.extend(pat_names(&l.pat)),
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            cond_bindings(&b.left, out);
            cond_bindings(&b.right, out);
        }
        Expr::Paren(p) => cond_bindings(&p.expr, out),
        _ => {}
    }
}

impl VisitMut for Refs<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if self.path_site(expr, Mode::Own, false) {
            return;
        }
        match expr {
            Expr::Reference(r) => self.reference(r),
            // `name(..)` calls a function or closure from the surrounding scope, even when a
            // node has the same name (`fetch_user = fetch_user(id)?;`); a node holding a
            // closure is called as `(name)(..)`.
            Expr::Call(c) if plain_ident(&c.func).is_some() => {
                for arg in &mut c.args {
                    self.visit_expr_mut(arg);
                }
            }
            Expr::MethodCall(m) => {
                if !self.path_site(&mut m.receiver, Mode::Borrow, false) {
                    self.visit_expr_mut(&mut m.receiver);
                }
                for arg in &mut m.args {
                    self.visit_expr_mut(arg);
                }
            }
            Expr::Field(f) => {
                if !self.path_site(&mut f.base, Mode::Borrow, false) {
                    self.visit_expr_mut(&mut f.base);
                }
            }
            Expr::Index(i) => {
                if !self.path_site(&mut i.expr, Mode::Borrow, false) {
                    self.visit_expr_mut(&mut i.expr);
                }
                self.visit_expr_mut(&mut i.index);
            }
            Expr::Closure(c) => {
                let names = c.inputs.iter().flat_map(pat_names).collect();
                let moving = usize::from(c.capture.is_some());
                self.moving += moving;
                self.with_scope(names, |this| this.visit_expr_mut(&mut c.body));
                self.moving -= moving;
            }
            Expr::Async(a) => {
                let moving = usize::from(a.capture.is_some());
                self.moving += moving;
                self.visit_block_mut(&mut a.block);
                self.moving -= moving;
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                let names = pat_names(&f.pat);
                self.with_scope(names, |this| this.visit_block_mut(&mut f.body));
            }
            Expr::If(i) => {
                self.visit_expr_mut(&mut i.cond);
                let mut names = Vec::new();
                cond_bindings(&i.cond, &mut names);
                self.with_scope(names, |this| this.visit_block_mut(&mut i.then_branch));
                if let Some((_, else_branch)) = &mut i.else_branch {
                    self.visit_expr_mut(else_branch);
                }
            }
            Expr::While(w) => {
                self.visit_expr_mut(&mut w.cond);
                let mut names = Vec::new();
                cond_bindings(&w.cond, &mut names);
                self.with_scope(names, |this| this.visit_block_mut(&mut w.body));
            }
            Expr::Let(l) => self.visit_expr_mut(&mut l.expr),
            Expr::Match(m) => {
                self.visit_expr_mut(&mut m.expr);
                for arm in &mut m.arms {
                    let names = pat_names(&arm.pat);
                    self.with_scope(names, |this| {
                        if let Some((_, guard)) = &mut arm.guard {
                            this.visit_expr_mut(guard);
                        }
                        this.visit_expr_mut(&mut arm.body);
                    });
                }
            }
            Expr::Macro(m) => self.visit_macro(&mut m.mac),
            Expr::Struct(s) => {
                for field in &mut s.fields {
                    // `S { a }` is shorthand for `S { a: a }`; a rewrite needs the long form.
                    let shorthand = field.colon_token.is_none();
                    let before = self.sites.len();
                    self.visit_expr_mut(&mut field.expr);
                    if shorthand && self.replace.is_some() && self.sites.len() > before {
                        field.colon_token = Some(<Token![:]>::default());
                    }
                }
                if let Some(rest) = &mut s.rest {
                    self.visit_expr_mut(rest);
                }
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        self.scopes.push(Vec::new());
        for stmt in &mut block.stmts {
            match stmt {
                Stmt::Local(local) => {
                    if let Some(init) = &mut local.init {
                        self.visit_expr_mut(&mut init.expr);
                        if let Some((_, diverge)) = &mut init.diverge {
                            self.visit_expr_mut(diverge);
                        }
                    }
                    let names = pat_names(&local.pat);
                    self.scopes.last_mut().expect("pushed above").extend(names);
                }
                // Items cannot capture local variables.
                Stmt::Item(_) => {}
                Stmt::Expr(expr, _) => self.visit_expr_mut(expr),
                Stmt::Macro(m) => self.visit_macro(&mut m.mac),
            }
        }
        self.scopes.pop();
    }

    // Types, patterns and items never name a node's value.
    fn visit_type_mut(&mut self, _: &mut syn::Type) {}
    fn visit_pat_mut(&mut self, _: &mut Pat) {}
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

/// Tokens for a reference to a value through `r`: `(*r)`.
pub fn deref_tokens(r: &Ident) -> TokenStream {
    quote!((*#r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn names(list: &[&str]) -> BTreeMap<String, NodeId> {
        list.iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_owned(), NodeId(i)))
            .collect()
    }

    #[allow(
        clippy::needless_pass_by_value,
        reason = "called with `parse_quote!` values"
    )]
    fn uses(expr: Expr) -> Vec<(String, Mode)> {
        let names = names(&["a", "b", "c", "d"]);
        find_uses(&names, &expr)
            .0
            .into_iter()
            .map(|u| (u.site.to_string(), u.mode))
            .collect()
    }

    #[test]
    fn finds_arguments_receivers_closures_blocks() {
        assert_eq!(
            uses(parse_quote!(f(a, b))),
            [("a".into(), Mode::Own), ("b".into(), Mode::Own)]
        );
        assert_eq!(uses(parse_quote!(a.len())), [("a".into(), Mode::Borrow)]);
        assert_eq!(uses(parse_quote!(f(&a))), [("a".into(), Mode::Borrow)]);
        assert_eq!(uses(parse_quote!(f(&a, a))), [("a".into(), Mode::Own)]);
        assert_eq!(
            uses(parse_quote!(async move { g(b).await })),
            [("b".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(async { g(&b).await })),
            [("b".into(), Mode::Borrow)]
        );
        assert_eq!(
            uses(parse_quote!(async move { g(&b).await })),
            [("b".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(move || c.len())),
            [("c".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(items.map(|x| x + c))),
            [("c".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!({
                let z = d;
                z
            })),
            [("d".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(S { a, x: b.f })),
            [("a".into(), Mode::Own), ("b".into(), Mode::Borrow)]
        );
    }

    #[test]
    fn names_bound_inside_hide_nodes() {
        assert!(uses(parse_quote!(items.map(|a| a + 1))).is_empty());
        assert!(uses(parse_quote!({
            let b = 1;
            b
        }))
        .is_empty());
        assert_eq!(
            uses(parse_quote!({
                let b = b;
                b
            })),
            [("b".into(), Mode::Own)]
        );
        assert!(uses(parse_quote!(match x {
            Some(c) => c,
            None => 0,
        }))
        .is_empty());
        assert!(uses(parse_quote!(if let Some(d) = x { d } else { 0 })).is_empty());
        assert!(uses(parse_quote!(for a in x {
            a;
        }))
        .is_empty());
    }

    #[test]
    fn paths_fields_and_methods_named_like_nodes_are_not_uses() {
        assert!(uses(parse_quote!(a::f(x.b, y.c()))).is_empty());
        assert!(
            uses(parse_quote!(a(1))).is_empty(),
            "a function named like a node"
        );
        assert_eq!(
            uses(parse_quote!((a)(b))),
            [("a".into(), Mode::Own), ("b".into(), Mode::Own)]
        );
        assert!(uses(parse_quote!(<T>::a(x))).is_empty());
    }

    #[test]
    fn finds_uses_inside_macros() {
        assert_eq!(
            uses(parse_quote!(vec![a, b])),
            [("a".into(), Mode::Own), ("b".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(format!("{}", a))),
            [("a".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(format!("{b} {c:?} {{a}}"))),
            [("b".into(), Mode::Borrow), ("c".into(), Mode::Borrow)]
        );
        assert_eq!(
            uses(parse_quote!(format!("{x}", x = d))),
            [("d".into(), Mode::Own)]
        );
        // Not comma-separated expressions: scanned token by token.
        assert_eq!(
            uses(parse_quote!(m!(a => b.c; d::x))),
            [("a".into(), Mode::Own), ("b".into(), Mode::Own)]
        );
    }

    #[test]
    fn string_literals_are_format_strings_only_in_format_macros() {
        // `vec!`, a user's macro: a literal is just text there.
        assert_eq!(
            uses(parse_quote!(vec!["{a}", b])),
            [("b".into(), Mode::Own)]
        );
        assert_eq!(
            uses(parse_quote!(log_line!("hello {a}", b))),
            [("b".into(), Mode::Own)]
        );
        // Read token by token: a format macro inside reads its literals, the rest does not.
        assert_eq!(
            uses(parse_quote!(
                m!(x => tracing::info!("{c:?}"); "{d}", #[doc = "{a}"] b)
            )),
            [("c".into(), Mode::Borrow), ("b".into(), Mode::Own)]
        );
    }

    #[test]
    fn unevaluated_macro_arguments_are_not_uses() {
        assert_eq!(
            uses(parse_quote!(f(
                stringify!(a),
                concat!(b),
                include_str!(c),
                d
            ))),
            [("d".into(), Mode::Own)]
        );
        // Also where read token by token.
        assert_eq!(
            uses(parse_quote!(m!(x => stringify!(a); d))),
            [("d".into(), Mode::Own)]
        );
    }

    #[test]
    fn a_nested_dag_hides_the_names_it_defines() {
        // `a` and `c` are the inner graph's nodes; `b` and `d` are captured from outside.
        assert_eq!(
            uses(parse_quote!(dag! {
                move;
                /// Not a format string: {c}.
                #[spawn]
                a = f(b);
                c = g(a, format!("{d}"));
                (a, c == b)
            })),
            [("b".into(), Mode::Own), ("d".into(), Mode::Borrow)]
        );
        assert_eq!(uses(parse_quote!(dagjoin::dag!(r#a = f(); a))), []);
    }

    #[test]
    fn rewrites_references() {
        let names = names(&["a", "b"]);
        let mut replace = BTreeMap::new();
        replace.insert(NodeId(0), quote!((*r)));
        let out = rewrite(
            &names,
            &parse_quote!(f(&a, a.len(), S { a }, vec![a], m!(a; b))),
            &replace,
        );
        assert_eq!(
            out.to_token_stream().to_string(),
            quote!(f(&(*r), (*r).len(), S { a: (*r) }, vec![(*r)], m!((*r); b))).to_string()
        );
    }
}
