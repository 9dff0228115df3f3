//! A node's attributes: where it runs (`#[spawn]`, `#[blocking]`) and how its attempts go
//! (`#[timeout(LIMIT)]`, `#[retry(N)]`, `#[retry(N, backoff = WAIT)]`). Doc comments are
//! allowed and mean nothing to the macro.
//!
//! A duration is any expression of type `Duration`, or an integer literal with a unit:
//! `500ms`, `2s`, `100us`, `10ns`.

use proc_macro2::{Span, TokenStream};
use quote::{quote_spanned, ToTokens};
use syn::parse::ParseStream;
use syn::{Attribute, Expr, Ident, Token};

use crate::graph::Placement;
use crate::parse::attr_name;

/// What a node's attributes ask for.
pub struct NodeAttrs {
    pub placement: Placement,
    pub timeout: Option<Timeout>,
    pub retry: Option<Retry>,
}

/// `#[timeout(LIMIT)]`: the longest one attempt may take.
pub struct Timeout {
    /// The attribute's name: where errors about the timeout point.
    pub span: Span,
    /// An expression of type `Duration`.
    pub limit: TokenStream,
}

/// `#[retry(N)]` or `#[retry(N, backoff = WAIT)]`.
pub struct Retry {
    pub span: Span,
    /// An expression of type `u32`.
    pub retries: Expr,
    /// An expression of type `Duration`, if given.
    pub backoff: Option<TokenStream>,
}

const KNOWN: &str = "a task takes `#[spawn]` (run as its own tokio task), `#[blocking]` (run a synchronous expression on the blocking pool), `#[timeout(LIMIT)]` and `#[retry(N)]`";

/// Reads the attributes of task `name` (fallible when `question`), and the errors in them.
pub fn node_attrs(attrs: &[Attribute], name: &str, question: bool) -> (NodeAttrs, Vec<syn::Error>) {
    let mut errors = Vec::new();
    let mut out = NodeAttrs {
        placement: Placement::Inline,
        timeout: None,
        retry: None,
    };
    // The placement attribute seen first, by name.
    let mut placed: Option<String> = None;
    for attr in attrs {
        let attr_name = attr_name(attr);
        if attr_name == "doc" {
            continue;
        }
        let span = attr
            .path()
            .segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span());
        let repeated = match attr_name.as_str() {
            "spawn" | "blocking" => placed.as_deref() == Some(attr_name.as_str()),
            "timeout" => out.timeout.is_some(),
            "retry" => out.retry.is_some(),
            _ => {
                errors.push(syn::Error::new(
                    span,
                    format!("unknown attribute `{attr_name}` on task `{name}`: {KNOWN}"),
                ));
                continue;
            }
        };
        if repeated {
            errors.push(syn::Error::new(
                span,
                format!("`#[{attr_name}]` is given more than once on task `{name}`"),
            ));
            continue;
        }
        match attr_name.as_str() {
            "spawn" | "blocking" => {
                if let Err(e) = attr.meta.require_path_only() {
                    errors.push(syn::Error::new(
                        e.span(),
                        format!("`#[{attr_name}]` takes no arguments"),
                    ));
                    continue;
                }
                if let Some(first) = &placed {
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "task `{name}` cannot be both `#[{first}]` and `#[{attr_name}]`: choose one"
                        ),
                    ));
                    continue;
                }
                out.placement = if attr_name == "spawn" {
                    Placement::Spawn
                } else {
                    Placement::Blocking
                };
                placed = Some(attr_name);
            }
            "timeout" => match timeout(attr, span) {
                Ok(t) => out.timeout = Some(t),
                Err(e) => errors.push(e),
            },
            _ => match retry(attr, span) {
                Ok(r) => out.retry = Some(r),
                Err(e) => errors.push(e),
            },
        }
    }
    if let (Some(t), Placement::Blocking) = (&out.timeout, out.placement) {
        errors.push(syn::Error::new(
            t.span,
            format!(
                "task `{name}` cannot have a timeout: a `#[blocking]` closure cannot be interrupted, it runs to its end on its thread; check the time inside the closure, or make the task async"
            ),
        ));
    }
    if let (Some(r), None, false) = (&out.retry, &out.timeout, question) {
        errors.push(syn::Error::new(
            r.span,
            format!(
                "task `{name}` cannot fail, so `#[retry]` has nothing to retry: an attempt fails with an error (`{name} = expression?;`) or a `#[timeout(..)]`"
            ),
        ));
    }
    (out, errors)
}

fn timeout(attr: &Attribute, span: Span) -> syn::Result<Timeout> {
    let usage = "`#[timeout]` needs the longest an attempt may take: `#[timeout(5s)]`, `#[timeout(Duration::from_millis(500))]`";
    let limit = arguments(attr, span, usage)?.parse_args_with(|input: ParseStream<'_>| {
        let limit = duration(input)?;
        if !input.is_empty() {
            return Err(input.error("`#[timeout]` takes one duration"));
        }
        Ok(limit)
    })?;
    Ok(Timeout { span, limit })
}

fn retry(attr: &Attribute, span: Span) -> syn::Result<Retry> {
    let usage = "`#[retry]` needs how many times a failed attempt is tried again: `#[retry(3)]`, or `#[retry(3, backoff = 100ms)]` to wait between attempts";
    arguments(attr, span, usage)?.parse_args_with(|input: ParseStream<'_>| {
        if is_option(input) {
            return Err(input.error(
                "`#[retry]` takes the number of retries first: `#[retry(3, backoff = 100ms)]`",
            ));
        }
        let retries: Expr = input.parse()?;
        let mut backoff = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            if !is_option(input) {
                return Err(input.error(
                    "after the number of retries, `#[retry]` takes only `backoff = WAIT`",
                ));
            }
            let key: Ident = input.parse()?;
            if key != "backoff" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown option `{key}` of `#[retry]`: the option is `backoff = WAIT`, the wait before the first retry (doubled before each further one)"),
                ));
            }
            if backoff.is_some() {
                return Err(syn::Error::new(key.span(), "`backoff` is given more than once"));
            }
            input.parse::<Token![=]>()?;
            backoff = Some(duration(input)?);
        }
        Ok(Retry {
            span,
            retries,
            backoff,
        })
    })
}

/// The arguments of an attribute that needs some, in parentheses; else the error `usage`.
fn arguments<'a>(attr: &'a Attribute, span: Span, usage: &str) -> syn::Result<&'a syn::MetaList> {
    match &attr.meta {
        syn::Meta::List(list)
            if matches!(list.delimiter, syn::MacroDelimiter::Paren(_))
                && !list.tokens.is_empty() =>
        {
            Ok(list)
        }
        _ => Err(syn::Error::new(span, usage)),
    }
}

/// Whether the input reads `name = ..` (and not `name == ..`).
fn is_option(input: ParseStream<'_>) -> bool {
    input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==])
}

/// A duration: an integer literal with a unit, or an expression of type `Duration`. Stops at
/// a top-level `,`.
fn duration(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    if let Ok(lit) = input.fork().parse::<syn::LitInt>() {
        let after = input.fork();
        after.parse::<syn::LitInt>()?;
        if after.is_empty() || after.peek(Token![,]) {
            input.parse::<syn::LitInt>()?;
            return with_unit(&lit);
        }
    }
    if let Ok(lit) = input.fork().parse::<syn::LitFloat>() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "write `{lit}` as a whole number of a smaller unit (`1500ms` for `1.5s`), or as a `Duration`"
            ),
        ));
    }
    let expr: Expr = input.parse()?;
    let tokens = expr.into_token_stream();
    if let Some(lit) = literal_with_unit(tokens.clone()) {
        return Err(syn::Error::new(
            lit.span(),
            format!("a unit goes on a literal alone (`{lit}`); in an expression, write `Duration`s: `Duration::from_secs(1) + Duration::from_millis(500)`"),
        ));
    }
    Ok(tokens)
}

/// The first literal in `tokens` with a unit of time, as in `1s + 500ms`.
fn literal_with_unit(tokens: TokenStream) -> Option<proc_macro2::Literal> {
    tokens.into_iter().find_map(|tree| match tree {
        proc_macro2::TokenTree::Group(group) => literal_with_unit(group.stream()),
        proc_macro2::TokenTree::Literal(lit) => {
            let int = syn::LitInt::from(lit.clone());
            matches!(int.suffix(), "s" | "ms" | "us" | "ns").then_some(lit)
        }
        _ => None,
    })
}

/// `500ms` as `Duration::from_millis(500)`; a literal without a known unit is an error.
fn with_unit(lit: &syn::LitInt) -> syn::Result<TokenStream> {
    let constructor = match lit.suffix() {
        "s" => "from_secs",
        "ms" => "from_millis",
        "us" => "from_micros",
        "ns" => "from_nanos",
        "" => {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "`{lit}` has no unit: write `{lit}ms`, `{lit}s` (or `us`, `ns`), or a `Duration`"
                ),
            ))
        }
        other => {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown unit `{other}`: the units are `s`, `ms`, `us` and `ns`; for longer waits write a `Duration`"
                ),
            ))
        }
    };
    let value: u64 = lit.base10_parse()?;
    let constructor = Ident::new(constructor, lit.span());
    let span = lit.span();
    Ok(quote_spanned!(span=> ::core::time::Duration::#constructor(#value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse::Parser;
    use syn::parse_quote;

    fn read(attrs: &[Attribute], question: bool) -> (NodeAttrs, Vec<String>) {
        let (out, errors) = node_attrs(attrs, "t", question);
        (out, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn units_and_expressions() {
        let parse = |tokens: TokenStream| duration.parse2(tokens).map(|t| t.to_string());
        assert_eq!(
            parse(quote::quote!(500ms)).unwrap(),
            ":: core :: time :: Duration :: from_millis (500u64)"
        );
        assert_eq!(
            parse(quote::quote!(2s)).unwrap(),
            ":: core :: time :: Duration :: from_secs (2u64)"
        );
        assert_eq!(
            parse(quote::quote!(Duration::from_secs(1))).unwrap(),
            "Duration :: from_secs (1)"
        );
        assert_eq!(parse(quote::quote!(limit * 2)).unwrap(), "limit * 2");
        let error = parse(quote::quote!(50)).unwrap_err().to_string();
        assert!(error.contains("`50` has no unit"), "{error}");
        let error = parse(quote::quote!(5min)).unwrap_err().to_string();
        assert!(error.contains("unknown unit `min`"), "{error}");
        let error = parse(quote::quote!(1.5s)).unwrap_err().to_string();
        assert!(error.contains("`1500ms` for `1.5s`"), "{error}");
    }

    #[test]
    fn retry_with_backoff() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[retry(3, backoff = 10ms)])];
        let (out, errors) = read(&attrs, true);
        assert!(errors.is_empty(), "{errors:?}");
        let retry = out.retry.unwrap();
        assert_eq!(retry.retries.into_token_stream().to_string(), "3");
        assert_eq!(
            retry.backoff.unwrap().to_string(),
            ":: core :: time :: Duration :: from_millis (10u64)"
        );
    }

    #[test]
    fn misuse() {
        let cases: Vec<(Attribute, bool, &str)> = vec![
            (parse_quote!(#[retry]), true, "`#[retry]` needs how many"),
            (parse_quote!(#[retry(2)]), false, "task `t` cannot fail"),
            (
                parse_quote!(#[retry(2, wait = 1s)]),
                true,
                "unknown option `wait`",
            ),
            (
                parse_quote!(#[timeout]),
                true,
                "`#[timeout]` needs the longest",
            ),
            (
                parse_quote!(#[timeout = 5]),
                true,
                "`#[timeout]` needs the longest",
            ),
            (
                parse_quote!(#[spawn(x)]),
                true,
                "`#[spawn]` takes no arguments",
            ),
            (
                parse_quote!(#[tokio::spawn]),
                true,
                "unknown attribute `tokio::spawn`",
            ),
        ];
        for (attr, question, expected) in cases {
            let (_, errors) = read(&[attr], question);
            assert_eq!(errors.len(), 1, "{expected}: {errors:?}");
            assert!(errors[0].contains(expected), "{expected}: {errors:?}");
        }
        let attrs: Vec<Attribute> = vec![parse_quote!(#[blocking]), parse_quote!(#[timeout(1s)])];
        let (_, errors) = read(&attrs, true);
        assert!(
            errors[0].contains("a `#[blocking]` closure cannot be interrupted"),
            "{errors:?}"
        );
        let attrs: Vec<Attribute> =
            vec![parse_quote!(#[timeout(1s)]), parse_quote!(#[timeout(2s)])];
        let (_, errors) = read(&attrs, true);
        assert_eq!(errors, ["`#[timeout]` is given more than once on task `t`"]);
    }
}
