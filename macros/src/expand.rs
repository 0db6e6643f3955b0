//! Code generation for `#[ns_test]`: the function stays as written, and a registration
//! naming it is submitted to `inventory` for `nstest::main!()` to find.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ItemFn, LitStr, ReturnType};

use crate::args::{self, Args};

/// Expands `#[ns_test(attr)] item`. On any error the function is still emitted (minus
/// the test attributes), with the errors as `compile_error!`s, so IDEs keep working.
pub(crate) fn ns_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                "#[ns_test] goes on a function: `#[ns_test] fn name() { ... }`",
            )
            .to_compile_error();
            return quote!(#item #error);
        }
    };
    let mut errors = Vec::new();
    let args = args::parse(attr).unwrap_or_else(|e| {
        errors.push(e);
        Args::default()
    });
    let test_attrs = take_test_attributes(&mut function.attrs, &mut errors);
    check_signature(&function, &test_attrs, &mut errors);
    check_runtime_options(&function, &args, &mut errors);

    if let Some(error) = combine(errors) {
        let error = error.to_compile_error();
        return quote!(#function #error);
    }
    let registration = registration(&function, &args, &test_attrs);
    quote!(#function #registration)
}

/// `#[ignore]` and `#[should_panic]`, removed from the function (rustc would warn that
/// they do nothing on a non-`#[test]` function).
#[derive(Default)]
struct TestAttrs {
    ignore: bool,
    /// `None`: no `#[should_panic]`; `Some(None)`: any panic; `Some(Some(s))`: expected.
    should_panic: Option<Option<LitStr>>,
    /// The `#[should_panic]` attribute itself, to point at in errors.
    should_panic_attr: Option<Attribute>,
}

fn take_test_attributes(attrs: &mut Vec<Attribute>, errors: &mut Vec<syn::Error>) -> TestAttrs {
    let mut found = TestAttrs::default();
    attrs.retain(|attr| {
        let path = attr.path();
        if path.is_ident("ignore") {
            // `#[ignore]` or `#[ignore = "reason"]`; the reason is for readers only.
            found.ignore = true;
            false
        } else if path.is_ident("should_panic") {
            found.should_panic_attr = Some(attr.clone());
            match parse_should_panic(attr) {
                Ok(expected) => found.should_panic = Some(expected),
                Err(e) => errors.push(e),
            }
            false
        } else if path.is_ident("test") {
            errors.push(syn::Error::new_spanned(
                attr,
                "remove #[test]: #[ns_test] already makes this a test, run by nstest::main!()",
            ));
            false
        } else {
            true
        }
    });
    found
}

/// `#[should_panic]`, `#[should_panic = "text"]`, `#[should_panic(expected = "text")]`.
fn parse_should_panic(attr: &Attribute) -> syn::Result<Option<LitStr>> {
    let usage = "expected `#[should_panic]` or `#[should_panic(expected = \"text\")]`";
    match &attr.meta {
        syn::Meta::Path(_) => Ok(None),
        syn::Meta::NameValue(nv) => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => Ok(Some(lit.clone())),
            other => Err(syn::Error::new_spanned(other, usage)),
        },
        syn::Meta::List(_) => {
            let mut expected = None;
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("expected") && expected.is_none() {
                    expected = Some(meta.value()?.parse::<LitStr>()?);
                    Ok(())
                } else {
                    Err(meta.error(usage))
                }
            })?;
            Ok(expected)
        }
    }
}

fn check_signature(function: &ItemFn, attrs: &TestAttrs, errors: &mut Vec<syn::Error>) {
    let sig = &function.sig;
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            "#[ns_test] functions take no parameters",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "#[ns_test] functions cannot be generic",
        ));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            token,
            "#[ns_test] functions cannot be `unsafe fn`; use an `unsafe` block inside",
        ));
    }
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            token,
            "#[ns_test] functions cannot be `const fn`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "#[ns_test] functions cannot have an `extern` ABI",
        ));
    }
    if let (Some(attr), ReturnType::Type(_, ty)) = (&attrs.should_panic_attr, &sig.output) {
        if !is_unit(ty) {
            let mut e = syn::Error::new_spanned(
                ty,
                "#[should_panic] tests must return `()`, as with #[test]",
            );
            e.combine(syn::Error::new_spanned(attr, "#[should_panic] given here"));
            errors.push(e);
        }
    }
}

/// `flavor` and `worker_threads` only mean something for an `async fn`, and
/// `worker_threads` only with the multi_thread flavor, as with `#[tokio::test]`.
fn check_runtime_options(function: &ItemFn, args: &Args, errors: &mut Vec<syn::Error>) {
    let is_async = function.sig.asyncness.is_some();
    for (name, span) in [
        ("flavor", args.multi_thread.map(|(_, s)| s)),
        ("worker_threads", args.worker_threads.map(|(_, s)| s)),
    ] {
        if let (Some(span), false) = (span, is_async) {
            errors.push(syn::Error::new(
                span,
                format!("`{name}` is for `async fn` tests, which run on a tokio runtime"),
            ));
        }
    }
    if let (Some((_, span)), Some((false, _)) | None) = (args.worker_threads, args.multi_thread) {
        if is_async {
            errors.push(syn::Error::new(
                span,
                "`worker_threads` needs `flavor = \"multi_thread\"` (the current_thread flavor \
                 runs everything on the test's thread)",
            ));
        }
    }
}

fn is_unit(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
}

fn combine(errors: Vec<syn::Error>) -> Option<syn::Error> {
    errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    })
}

/// The `inventory::submit!` for `function`.
fn registration(function: &ItemFn, args: &Args, attrs: &TestAttrs) -> TokenStream {
    let ident = &function.sig.ident;
    let fn_name = ident.to_string();
    let all = !args.names_a_kind();
    let (net, mount, uts, ipc, pid) = (
        all || args.net,
        all || args.mount,
        all || args.uts,
        all || args.ipc,
        all || args.pid,
    );
    let hostname = match &args.hostname {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let time = match (args.wants_time(), args.monotonic, args.boottime) {
        (true, monotonic, boottime) => {
            let (monotonic, boottime) = (monotonic.unwrap_or(0), boottime.unwrap_or(0));
            quote!(::core::option::Option::Some(::nstest::__private::TimeOffsets {
                monotonic: #monotonic,
                boottime: #boottime,
            }))
        }
        (false, ..) => quote!(::core::option::Option::None),
    };
    let timeout = match args.timeout {
        Some(secs) => quote!(::core::option::Option::Some(#secs)),
        None => quote!(::core::option::Option::None),
    };
    let ignore = attrs.ignore;
    let should_panic = match &attrs.should_panic {
        None => quote!(::nstest::__private::ShouldPanic::No),
        Some(None) => quote!(::nstest::__private::ShouldPanic::Yes),
        Some(Some(expected)) => {
            quote!(::nstest::__private::ShouldPanic::WithMessage(#expected))
        }
    };
    // The conversion is spanned at the return type, so `E: Debug` errors point there.
    let return_span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    let value = match &function.sig.asyncness {
        // Spanned at `async`, so a missing `tokio` feature is reported at the test.
        Some(token) => {
            let flavor = match (args.multi_thread, args.worker_threads) {
                (Some((true, _)), workers) => {
                    let workers = match workers {
                        Some((n, _)) => quote!(::core::option::Option::Some(#n)),
                        None => quote!(::core::option::Option::None),
                    };
                    quote!(::nstest::__private::Flavor::MultiThread { worker_threads: #workers })
                }
                _ => quote!(::nstest::__private::Flavor::CurrentThread),
            };
            quote_spanned! {token.span=>
                ::nstest::__private::block_on(#flavor, #ident())
            }
        }
        None => quote_spanned!(return_span=> #ident()),
    };
    let call = quote_spanned! {return_span=>
        ::nstest::__private::TestReturn::into_test_result(#value)
    };
    quote! {
        ::nstest::__private::inventory::submit! {
            ::nstest::__private::Test {
                path: ::core::concat!(::core::module_path!(), "::", #fn_name),
                run: {
                    fn run() -> ::core::result::Result<(), ::std::string::String> {
                        #call
                    }
                    run
                },
                plan: ::nstest::__private::Plan {
                    net: #net,
                    mount: #mount,
                    uts: #uts,
                    ipc: #ipc,
                    pid: #pid,
                    hostname: #hostname,
                    time: #time,
                },
                timeout_secs: #timeout,
                ignore: #ignore,
                should_panic: #should_panic,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(attr: TokenStream, item: TokenStream) -> String {
        ns_test(attr, item).to_string()
    }

    #[test]
    fn a_bare_attribute_asks_for_the_full_hermetic_set() {
        let out = expand(
            quote!(),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains("net : true , mount : true , uts : true , ipc : true , pid : true"),
            "{out}"
        );
        assert!(
            out.contains("time : :: core :: option :: Option :: None"),
            "{out}"
        );
    }

    #[test]
    fn naming_a_kind_selects_only_it_and_settings_add_their_namespace() {
        let out = expand(
            quote!(net, time = "+1h"),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains("net : true , mount : false , uts : false , ipc : false , pid : false"),
            "{out}"
        );
        assert!(
            out.contains("monotonic : 3600i64 , boottime : 3600i64"),
            "{out}"
        );
        let out = expand(
            quote!(hostname = "box"),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains("pid : true , hostname : :: core :: option :: Option :: Some (\"box\")"),
            "{out}"
        );
    }

    #[test]
    fn user_alone_asks_for_only_the_user_namespace() {
        let out = expand(
            quote!(user),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains("net : false , mount : false , uts : false , ipc : false , pid : false"),
            "{out}"
        );
        let out = expand(
            quote!(user, net),
            quote!(
                fn t() {}
            ),
        );
        assert!(out.contains("net : true , mount : false"), "{out}");
    }

    #[test]
    fn test_attributes_are_taken_off_the_function() {
        let out = expand(
            quote!(),
            quote!(
                #[ignore = "slow"]
                #[should_panic(expected = "boom")]
                #[inline]
                fn t() {}
            ),
        );
        assert!(out.contains("ignore : true"), "{out}");
        assert!(
            out.contains("ShouldPanic :: WithMessage (\"boom\")"),
            "{out}"
        );
        assert!(out.contains("# [inline] fn t"), "{out}");
        assert!(!out.contains("# [ignore"), "{out}");
        assert!(!out.contains("# [should_panic"), "{out}");
    }

    #[test]
    fn async_tests_run_on_the_runtime_they_ask_for() {
        let out = expand(
            quote!(net),
            quote!(
                async fn t() {}
            ),
        );
        assert!(
            out.contains("block_on (:: nstest :: __private :: Flavor :: CurrentThread , t ())"),
            "{out}"
        );
        let out = expand(
            quote!(flavor = "multi_thread", worker_threads = 2),
            quote!(
                async fn t() {}
            ),
        );
        assert!(out.contains("Flavor :: MultiThread { worker_threads : :: core :: option :: Option :: Some (2usize) }"), "{out}");
        let out = expand(
            quote!(worker_threads = 2),
            quote!(
                async fn t() {}
            ),
        );
        assert!(
            out.contains("needs `flavor = \\\"multi_thread\\\"`"),
            "{out}"
        );
        let out = expand(
            quote!(flavor = "multi_thread"),
            quote!(
                fn t() {}
            ),
        );
        assert!(out.contains("`flavor` is for `async fn` tests"), "{out}");
    }

    #[test]
    fn errors_keep_the_function_and_add_compile_errors() {
        let out = expand(
            quote!(bogus),
            quote!(
                fn t<T>(x: u8) {}
            ),
        );
        assert!(out.contains("fn t < T > (x : u8) { }"), "{out}");
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        assert!(!out.contains("inventory"), "{out}");
    }
}
