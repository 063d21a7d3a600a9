//! `#[venom_test]`: parse the arguments, check the signature, emit a `#[test]` that calls
//! `venomqa::__private::run_test`. Every error points at the user's token.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Lit, LitStr, Type};

const KEYS: &str = "backend, url, config, crate";

#[derive(Default)]
struct Args {
    backend: Option<LitStr>,
    url: Option<LitStr>,
    config: Option<LitStr>,
    krate: Option<syn::Path>,
}

fn string_value(
    meta: &syn::meta::ParseNestedMeta<'_>,
    key: &str,
    example: &str,
) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            if s.value().trim().is_empty() {
                Err(syn::Error::new_spanned(
                    s,
                    format!("`{key}` must not be empty"),
                ))
            } else {
                Ok(s)
            }
        }
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, like {key} = {example}"),
        )),
    }
}

fn parse_args(tokens: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let parser = syn::meta::parser(|meta| {
        let duplicate =
            |key: &str| syn::Error::new_spanned(&meta.path, format!("duplicate key `{key}`"));
        if meta.path.is_ident("backend") {
            if args.backend.is_some() {
                return Err(duplicate("backend"));
            }
            args.backend = Some(string_value(&meta, "backend", "\"mysql\"")?);
        } else if meta.path.is_ident("url") {
            if args.url.is_some() {
                return Err(duplicate("url"));
            }
            args.url = Some(string_value(
                &meta,
                "url",
                "\"mysql://root@127.0.0.1/test\"",
            )?);
        } else if meta.path.is_ident("config") {
            if args.config.is_some() {
                return Err(duplicate("config"));
            }
            args.config = Some(string_value(&meta, "config", "\"analytics\"")?);
        } else if meta.path.is_ident("crate") {
            if args.krate.is_some() {
                return Err(duplicate("crate"));
            }
            let lit = string_value(&meta, "crate", "\"my_crate::venomqa\"")?;
            args.krate = Some(lit.parse()?);
        } else {
            let key = meta.path.to_token_stream().to_string().replace(' ', "");
            return Err(syn::Error::new_spanned(
                &meta.path,
                format!("unknown key `{key}`; valid keys: {KEYS}"),
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, tokens)?;
    Ok(args)
}

fn is_test_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "test")
}

fn check_signature(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(attr) = func.attrs.iter().find(|a| is_test_attr(a)) {
        errors.push(syn::Error::new_spanned(
            attr,
            "#[venom_test] already makes this function a test; remove this attribute",
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            c,
            "a #[venom_test] function cannot be `const`",
        ));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            u,
            "a #[venom_test] function cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "a #[venom_test] function cannot have an `extern` ABI",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a #[venom_test] function cannot be generic",
        ));
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        if let Type::ImplTrait(_) = &**ty {
            errors.push(syn::Error::new_spanned(
                ty,
                "a #[venom_test] function must return `()` or a `Result`; name the type instead of `impl Trait`",
            ));
        }
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            v,
            "a #[venom_test] function cannot be variadic",
        ));
    }
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                "a #[venom_test] function cannot take `self`; write a free function",
            )),
            FnArg::Typed(_) if i > 0 => errors.push(syn::Error::new_spanned(
                input,
                "a #[venom_test] function takes at most one parameter, its session (`&mut venomqa::Session` or a typed session)",
            )),
            FnArg::Typed(pat) => match &*pat.ty {
                Type::Reference(r) if r.mutability.is_some() => {}
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "the session parameter must be a mutable reference: `&mut venomqa::Session`, or a typed session such as `&mut venomqa::sqlite::SqliteSession`",
                )),
            },
        }
    }
    match errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn option(lit: &Option<LitStr>) -> TokenStream {
    match lit {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

fn expand_fn(args: Args, func: ItemFn) -> syn::Result<TokenStream> {
    check_signature(&func)?;
    let krate = args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::venomqa));
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let ident = &sig.ident;
    let output = &sig.output;
    let inner_sig = &sig;
    let session = format_ident!("__venomqa_session", span = Span::mixed_site());
    let call = match sig.inputs.first() {
        None => quote!(#ident()),
        Some(FnArg::Typed(param)) => {
            // Point a type mismatch (a parameter that is not a session) at the user's type.
            let arg = format_ident!(
                "__venomqa_session",
                span = Span::mixed_site().located_at(param.ty.span())
            );
            quote!(#ident(#arg))
        }
        Some(FnArg::Receiver(_)) => unreachable!("rejected by check_signature"),
    };
    let call = if sig.asyncness.is_some() {
        quote_spanned!(sig.asyncness.span()=> #krate::__private::block_on(#call))
    } else {
        call
    };
    let closure = if sig.inputs.is_empty() {
        quote!(|_: &mut #krate::Session| #call)
    } else {
        quote!(|#session| #call)
    };
    let (backend, url, config) = (
        option(&args.backend),
        option(&args.url),
        option(&args.config),
    );
    let check = backend_check(&krate, args.backend.as_ref(), sig.inputs.first());
    // A return type that is neither `()` nor a `Result` is reported at the user's type.
    let run_test = match output {
        syn::ReturnType::Type(_, ty) => quote_spanned!(ty.span()=> #krate::__private::run_test),
        syn::ReturnType::Default => quote!(#krate::__private::run_test),
    };
    Ok(quote! {
        #(#attrs)*
        #[cfg_attr(test, ::core::prelude::v1::test)]
        #[cfg_attr(not(test), allow(dead_code))]
        #vis fn #ident() #output {
            #inner_sig #block
            #check
            #run_test(
                &#krate::__private::TestSpec {
                    test: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    backend: #backend,
                    url: #url,
                    config: #config,
                    manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
                },
                #closure,
            )
        }
    })
}

/// With `backend = ".."` and a session parameter: a compile-time check that the type's
/// own backend, if it has one, is not another built-in backend (the decision is
/// `__private::backend_agrees`). On a conflict, rustc reports an unsatisfied bound whose
/// message names the attribute's backend, at the parameter's type, with the attribute's
/// string as the call that introduced it.
fn backend_check(
    krate: &syn::Path,
    backend: Option<&LitStr>,
    param: Option<&FnArg>,
) -> TokenStream {
    let (Some(backend), Some(FnArg::Typed(param))) = (backend, param) else {
        return TokenStream::new();
    };
    let Type::Reference(reference) = &*param.ty else {
        return TokenStream::new();
    };
    let ty = &reference.elem;
    let name = backend.value();
    // `on_unimplemented` reads `{..}` as a format argument.
    let shown = name.replace('{', "{{").replace('}', "}}");
    let message = format!(
        "#[venom_test(backend = {shown:?})] conflicts with the parameter's type `{{S}}`, a session on another backend"
    );
    let label = format!("this session type does not run on {shown:?}");
    let note = format!(
        "a typed session runs on its own backend: remove `backend = {shown:?}`, take the session type of {shown:?}, or take `&mut venomqa::Session` (any backend)"
    );
    let site = Span::mixed_site();
    let agrees = format_ident!("__VenomqaBackendAgrees", span = site);
    let require = format_ident!("__venomqa_backend", span = site);
    // The call that introduces the bound is shown at the attribute's string.
    let call = format_ident!("__venomqa_backend", span = site.located_at(backend.span()));
    let agree = quote! {
        #krate::__private::Agree::<{
            use #krate::__private::UntypedSession as _;
            #krate::__private::backend_agrees(#backend, #krate::__private::SessionOf::<#ty>::NAME)
        }>
    };
    // The unsatisfied bound is reported at the argument: a variable at the user's type.
    let value = format_ident!("__venomqa_agree", span = site.located_at(ty.span()));
    quote! {
        {
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            trait #agrees<S: ?::core::marker::Sized> {}
            #[diagnostic::do_not_recommend]
            impl<S: ?::core::marker::Sized> #agrees<S> for #krate::__private::Agree<true> {}
            fn #require<S: ?::core::marker::Sized, A: #agrees<S>>(_: ::core::marker::PhantomData<S>, _: A) {}
            let #value = #agree;
            #call(::core::marker::PhantomData::<#ty>, #value);
        }
    }
}

/// Expands `#[venom_test(args)] item`. On error, emits the error and the function as it
/// was (without a test attribute), so editors keep resolving the code inside it.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            let mut out = e.into_compile_error();
            out.extend(item);
            return out;
        }
    };
    match parse_args(args).and_then(|args| expand_fn(args, func.clone())) {
        Ok(out) => out,
        Err(e) => {
            let mut out = e.into_compile_error();
            let ItemFn {
                mut attrs,
                vis,
                mut sig,
                block,
            } = func;
            attrs.retain(|a| !is_test_attr(a));
            // Keep the body checkable without piling rustc's errors on top of ours.
            sig.inputs = sig
                .inputs
                .into_iter()
                .filter(|a| matches!(a, FnArg::Typed(_)))
                .collect();
            out.extend(quote!(#(#attrs)* #[allow(dead_code, unused)] #vis #sig #block));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(tokens: TokenStream) -> String {
        prettyplease::unparse(&syn::parse2(tokens).expect("expansion parses as a file"))
    }

    fn expand_str(args: &str, item: &str) -> String {
        pretty(expand(args.parse().unwrap(), item.parse().unwrap()))
    }

    #[test]
    fn sync_test_with_session() {
        let out = expand_str(
            r#"url = "sqlite::memory:""#,
            "#[should_panic] fn t(db: &mut SqliteSession) { db.x(); }",
        );
        let expected = r#"#[should_panic]
#[cfg_attr(test, ::core::prelude::v1::test)]
#[cfg_attr(not(test), allow(dead_code))]
fn t() {
    fn t(db: &mut SqliteSession) {
        db.x();
    }
    ::venomqa::__private::run_test(
        &::venomqa::__private::TestSpec {
            test: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(t)),
            backend: ::core::option::Option::None,
            url: ::core::option::Option::Some("sqlite::memory:"),
            config: ::core::option::Option::None,
            manifest_dir: ::core::env!("CARGO_MANIFEST_DIR"),
        },
        |__venomqa_session| t(__venomqa_session),
    )
}
"#;
        assert_eq!(out, expected);
    }

    #[test]
    fn backend_check_only_with_a_backend_and_a_session() {
        let out = expand_str(r#"backend = "mysql""#, "fn t(db: &mut SqliteSession) {}");
        assert!(
            out.contains("::venomqa::__private::SessionOf::<SqliteSession>::NAME"),
            "{out}"
        );
        assert!(
            out.contains(r##"message = "#[venom_test(backend = \"mysql\")] conflicts with the parameter's type `{S}`"##),
            "{out}"
        );
        for (args, item) in [
            ("", "fn t(db: &mut SqliteSession) {}"),
            (r#"config = "x""#, "fn t(db: &mut SqliteSession) {}"),
            (r#"backend = "mysql""#, "fn t() {}"),
        ] {
            let out = expand_str(args, item);
            assert!(!out.contains("SessionOf"), "{args} {item}: {out}");
        }
        // A name that is also a format string stays literal in the message.
        let out = expand_str(r#"backend = "{x}""#, "fn t(db: &mut Session) {}");
        assert!(out.contains(r#"backend = \"{{x}}\""#), "{out}");
    }

    #[test]
    fn no_parameter_result_and_options() {
        let out = expand_str(
            r#"config = "analytics", url = "postgres://x/y", crate = "my::vq""#,
            "pub fn t() -> Result<(), String> { Ok(()) }",
        );
        assert!(out.contains("pub fn t() -> Result<(), String> {"), "{out}");
        assert!(out.contains("my::vq::__private::run_test("), "{out}");
        assert!(out.contains("|_: &mut my::vq::Session| t()"), "{out}");
        assert!(
            out.contains(r#"config: ::core::option::Option::Some("analytics")"#),
            "{out}"
        );
        assert!(
            out.contains(r#"url: ::core::option::Option::Some("postgres://x/y")"#),
            "{out}"
        );
        assert!(
            out.contains("backend: ::core::option::Option::None"),
            "{out}"
        );
    }

    #[test]
    fn async_test_is_driven_by_block_on() {
        let out = expand_str(
            "",
            "async fn t(s: &mut Session) -> anyhow::Result<()> { Ok(()) }",
        );
        assert!(out.contains("fn t() -> anyhow::Result<()> {"), "{out}");
        assert!(
            out.contains("async fn t(s: &mut Session) -> anyhow::Result<()>"),
            "{out}"
        );
        assert!(
            out.contains(
                "|__venomqa_session| ::venomqa::__private::block_on(t(__venomqa_session))"
            ),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            "bakend = \"x\"".parse().unwrap(),
            "fn t() { let x = 1; }".parse().unwrap(),
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains("unknown key `bakend`; valid keys: backend, url, config, crate"),
            "{out}"
        );
        assert!(out.contains("fn t ()"), "{out}");
        assert!(!out.contains("test"), "no test attribute on error: {out}");
    }

    #[test]
    fn signature_errors() {
        for (item, message) in [
            ("#[test] fn t() {}", "remove this attribute"),
            ("#[tokio::test] async fn t() {}", "remove this attribute"),
            ("fn t<T>() {}", "cannot be generic"),
            ("fn t(a: &mut Session, b: u8) {}", "at most one parameter"),
            ("fn t(a: Session) {}", "must be a mutable reference"),
            ("fn t(a: &Session) {}", "must be a mutable reference"),
            ("unsafe fn t() {}", "cannot be `unsafe`"),
            ("const fn t() {}", "cannot be `const`"),
            (
                "fn t() -> impl std::process::Termination {}",
                "name the type instead of `impl Trait`",
            ),
        ] {
            let out = expand(TokenStream::new(), item.parse().unwrap()).to_string();
            assert!(out.contains(message), "{item}: {out}");
        }
    }

    #[test]
    fn argument_errors() {
        for (args, message) in [
            (
                "backend = \"a\", backend = \"b\"",
                "duplicate key `backend`",
            ),
            ("backend = mysql", "`backend` takes a string literal"),
            ("backend = 3", "`backend` takes a string literal"),
            ("backend = \"\"", "must not be empty"),
            ("timeout = 3", "unknown key `timeout`"),
        ] {
            let out = expand(args.parse().unwrap(), "fn t() {}".parse().unwrap()).to_string();
            assert!(out.contains(message), "{args}: {out}");
        }
    }
}
