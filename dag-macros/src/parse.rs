//! Syntax of a `dag!` body: statements `#[attr] name = EXPR;` and an optional trailing
//! expression. Nothing here knows about dependencies; identifiers keep their spans so later
//! errors point at the user's tokens.
//!
//! The body is split at its top-level `;` before anything is parsed, so one malformed
//! statement does not hide the errors in the others.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, Ident, Token};

/// A whole `dag!` invocation after the shim: the facade crate's path, then the body.
pub struct Input {
    /// Path to the `dagjoin` crate (`$crate` from the shim).
    pub krate: TokenStream,
    /// `move;` first in the body: the future owns what it captures, like `async move`.
    pub move_token: Option<Token![move]>,
    /// `type Error = Ty;` first in the body: the error type of a fallible graph.
    pub error_type: Option<ErrorOption>,
    pub nodes: Vec<NodeStmt>,
    pub tail: Option<Expr>,
    /// Options given in the wrong place or twice: errors, but the graph is still checked, so
    /// that they do not hide its other errors.
    pub misplaced: Vec<syn::Error>,
}

/// `type Error = Ty;`
pub struct ErrorOption {
    pub type_token: Token![type],
    pub ty: syn::Type,
}

impl Parse for ErrorOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let type_token: Token![type] = input.parse()?;
        let name: Ident = input.parse()?;
        if name != "Error" {
            return Err(syn::Error::new(
                name.span(),
                format!("unknown option `type {name}`: the option is `type Error = YourError;`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let ty = input.parse()?;
        Ok(ErrorOption { type_token, ty })
    }
}

/// `#[attr]* name = EXPR;` or `#[attr]* name = EXPR?;`
pub struct NodeStmt {
    pub attrs: Vec<Attribute>,
    pub name: Ident,
    pub expr: Expr,
    /// The `?` of a fallible node, taken off its expression.
    pub question: Option<Token![?]>,
}

impl Parse for NodeStmt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        if input.is_empty() {
            return Err(
                input.error("expected a task definition `name = expression;` after the attribute")
            );
        }
        let Ok(name) = input.parse::<Ident>() else {
            return Err(input.error(NOT_A_STATEMENT));
        };
        if input.is_empty() {
            return Err(syn::Error::new(
                name.span(),
                format!("expected `=` after task name `{name}`: write `{name} = expression;`"),
            ));
        }
        if input.peek(Token![==]) || !input.peek(Token![=]) {
            return Err(syn::Error::new(name.span(), NOT_A_STATEMENT));
        }
        let eq: Token![=] = input.parse()?;
        if input.is_empty() {
            return Err(syn::Error::new(
                eq.span,
                format!("expected an expression after `{name} =`"),
            ));
        }
        let expr: Expr = input.parse()?;
        if !input.is_empty() {
            // `a = f(1)` then `b = g(a);` (or `#[spawn]`, `/// doc`) on the next line: the
            // `;` is missing.
            let next_node = input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]);
            if next_node || input.peek(Token![#]) {
                let end = expr.to_token_stream().into_iter().last();
                return Err(syn::Error::new(
                    end.map_or_else(|| input.span(), |t| t.span()),
                    format!("expected `;` after the definition of task `{name}`"),
                ));
            }
            return Err(input.error("unexpected tokens after the task's expression; expected `;`"));
        }
        let (expr, question) = match expr {
            Expr::Try(t) if t.attrs.is_empty() => (*t.expr, Some(t.question_token)),
            expr => (expr, None),
        };
        Ok(NodeStmt {
            attrs,
            name,
            expr,
            question,
        })
    }
}

const NOT_A_STATEMENT: &str = "expected a task definition `name = expression;`";

/// Parses the input, collecting one error per malformed statement.
pub fn parse(input: TokenStream) -> Result<Input, syn::Error> {
    let mut tokens = input.into_iter().peekable();
    // The shim passes `$crate;` first.
    let mut krate = TokenStream::new();
    loop {
        match tokens.next() {
            Some(TokenTree::Punct(p)) if p.as_char() == ';' => break,
            Some(tt) => krate.extend([tt]),
            None => {
                return Err(syn::Error::new(
                    Span::call_site(),
                    "`dag_impl!` is called through `dagjoin::dag!`",
                ))
            }
        }
    }

    let chunks = split_statements(tokens.collect());
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let mut nodes = Vec::new();
    let mut tail = None;
    let mut move_token = None;
    let mut error_type: Option<ErrorOption> = None;
    let mut misplaced = Vec::new();
    let count = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let last = i + 1 == count;
        match chunk {
            Chunk::Statement { tokens, .. } if is_move(&tokens) => {
                let token: Token![move] = syn::parse2(tokens).expect("checked by is_move");
                let span = token.span;
                if let Err(e) = place(&mut move_token, token, span, !nodes.is_empty(), "`move;`") {
                    misplaced.push(e);
                }
            }
            Chunk::Statement { tokens, .. } if starts_with_type(&tokens) => {
                match syn::parse2::<ErrorOption>(tokens) {
                    Ok(option) => {
                        let span = option.type_token.span;
                        let what = "`type Error = ..;`";
                        if let Err(e) =
                            place(&mut error_type, option, span, !nodes.is_empty(), what)
                        {
                            misplaced.push(e);
                        }
                    }
                    Err(e) => push(e),
                }
            }
            Chunk::Statement { tokens, semi } => {
                if tokens.is_empty() {
                    push(syn::Error::new(
                        semi,
                        "unexpected `;`: expected `name = expression;`",
                    ));
                    continue;
                }
                match syn::parse2::<NodeStmt>(tokens) {
                    Ok(node) => nodes.push(node),
                    Err(e) => push(e),
                }
            }
            Chunk::Tail(tokens) => {
                debug_assert!(last);
                match parse_tail(tokens) {
                    Ok(expr) => tail = Some(expr),
                    Err(e) => push(e),
                }
            }
        }
    }
    match errors {
        Some(mut e) => {
            for m in misplaced {
                e.combine(m);
            }
            Err(e)
        }
        None => Ok(Input {
            krate,
            move_token,
            error_type,
            nodes,
            tail,
            misplaced,
        }),
    }
}

/// Keeps option `value` (written `what`, at `span`) in `slot`, unless it comes after the tasks
/// (`late`) or was given already: then the error that says so.
fn place<T>(
    slot: &mut Option<T>,
    value: T,
    span: Span,
    late: bool,
    what: &str,
) -> Result<(), syn::Error> {
    if late {
        Err(syn::Error::new(
            span,
            format!("{what} must come first, before the tasks"),
        ))
    } else if slot.is_some() {
        Err(syn::Error::new(
            span,
            format!("{what} is given more than once"),
        ))
    } else {
        *slot = Some(value);
        Ok(())
    }
}

/// The trailing expression; a node definition without its `;` is an error.
fn parse_tail(tokens: TokenStream) -> syn::Result<Expr> {
    if looks_like_node(&tokens) {
        let span = tokens
            .clone()
            .into_iter()
            .last()
            .map_or_else(Span::call_site, |t| t.span());
        let node = syn::parse2::<NodeStmt>(tokens)?;
        return Err(syn::Error::new(
            span,
            format!("expected `;` after the definition of task `{}`", node.name),
        ));
    }
    syn::parse2::<Expr>(tokens)
}

enum Chunk {
    Statement { tokens: TokenStream, semi: Span },
    Tail(TokenStream),
}

/// Splits at top-level `;`. The text after the last `;`, if any, is the trailing expression.
fn split_statements(tokens: TokenStream) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut current = TokenStream::new();
    for tt in tokens {
        match tt {
            TokenTree::Punct(p) if p.as_char() == ';' => {
                chunks.push(Chunk::Statement {
                    tokens: std::mem::take(&mut current),
                    semi: p.span(),
                });
            }
            tt => current.extend([tt]),
        }
    }
    if !current.is_empty() {
        chunks.push(Chunk::Tail(current));
    }
    chunks
}

fn starts_with_type(tokens: &TokenStream) -> bool {
    matches!(tokens.clone().into_iter().next(), Some(TokenTree::Ident(i)) if i == "type")
}

fn is_move(tokens: &TokenStream) -> bool {
    let mut iter = tokens.clone().into_iter();
    matches!((iter.next(), iter.next()), (Some(TokenTree::Ident(i)), None) if i == "move")
}

/// Whether a chunk reads `#[..] name = ..` (and not `name == ..`), i.e. a node definition.
fn looks_like_node(tokens: &TokenStream) -> bool {
    let mut iter = tokens.clone().into_iter().peekable();
    // Skip outer attributes.
    while let Some(TokenTree::Punct(p)) = iter.peek() {
        if p.as_char() != '#' {
            break;
        }
        iter.next();
        match iter.next() {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Bracket => {}
            _ => return false,
        }
    }
    let Some(TokenTree::Ident(_)) = iter.next() else {
        return false;
    };
    // `name = ..`, but not `name == ..` or `name => ..`: those are expressions.
    matches!(iter.next(), Some(TokenTree::Punct(eq)) if eq.as_char() == '=' && eq.spacing() == proc_macro2::Spacing::Alone)
}

/// The attribute's name for error messages, e.g. `spawn` for `#[spawn]`.
pub fn attr_name(attr: &Attribute) -> String {
    attr.path().to_token_stream().to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn parses_statements_and_tail() {
        let input = parse(quote!(::dagjoin; a = f(); #[spawn] b = g(a); b)).unwrap();
        assert_eq!(input.krate.to_string(), ":: dagjoin");
        assert_eq!(input.nodes.len(), 2);
        assert_eq!(input.nodes[0].name, "a");
        assert_eq!(input.nodes[1].name, "b");
        assert_eq!(input.nodes[1].attrs.len(), 1);
        assert!(input.tail.is_some());
    }

    #[test]
    fn empty_body() {
        let input = parse(quote!(krate;)).unwrap();
        assert!(input.nodes.is_empty());
        assert!(input.tail.is_none());
    }

    #[test]
    fn collects_one_error_per_bad_statement() {
        let Err(err) = parse(quote!(k; a = ; 1 + 2; b = g(); c = h())) else {
            panic!("expected errors");
        };
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("expected an expression after `a =`"));
        assert!(messages[1].contains("expected a task definition"));
        assert!(messages[2].contains("expected `;` after the definition of task `c`"));
    }

    #[test]
    fn comparison_tail_is_an_expression() {
        let input = parse(quote!(k; a = f(); a == 1)).unwrap();
        assert!(input.tail.is_some());
    }
}
