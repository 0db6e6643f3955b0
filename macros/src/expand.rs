//! Stage 3: code generation. Generated code names runtime items only through
//! `::nstest::__private`. The expansion serves both harnesses, since a macro cannot tell
//! which one its crate is built with (cargo passes `--cfg test` to `harness = false`
//! targets too; only libtest's harness gets rustc's `--test`):
//!
//! - the function as written (minus its test attributes), renamed `__nstest_<name>`
//!   (the panic printer in the test process shows its frames under the test's own name);
//! - a registration naming it, submitted to `inventory` for `nstest::main!()` to find,
//!   and a constructor arming the silent-skip guard (a binary that holds `#[ns_test]`s but
//!   never starts nstest's runner fails at exit, naming them);
//! - a `#[test]` of the function's own name, with the user's `#[ignore]` and
//!   `#[should_panic]`, that hands the test to `nstest::__private::libtest::run`, and whose
//!   body holds a constructor that starts the fork server before libtest's `main` starts
//!   threads (see the harness's `runner::libtest`). Without `--test` rustc drops a
//!   `#[test]` item whole, constructor included, so it exists exactly under libtest.
//!
//! Either way every `#[ns_test]` runs under the harness its binary has: none can be
//! compiled into a binary that would silently skip it.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

use crate::ast::TestFn;
use crate::attr::{self, Kind};
use crate::errors::Errors;
use crate::valid::{self, Config, Runtime, ShouldPanic};
use crate::wall::Wall;

/// Expands `#[ns_test(attr)] item`: read (`attr`, `ast`), check (`valid`), emit. On any
/// error the function is still emitted, minus the test attributes, with every error as a
/// `compile_error!`, so IDEs keep resolving the function and its body.
pub(crate) fn ns_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
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
    let mut errors = Errors::default();
    let test = TestFn::from_item(function, &mut errors);
    valid::check_function(&test, &mut errors);
    let config = attr::parse(attr).and_then(|options| options.build(&test));
    let function = &test.function;
    match errors.finish(config) {
        Ok(config) => {
            let mut body = function.clone();
            body.sig.ident = body_ident(&test);
            let registration = registration(&test, &config);
            let wrapper = libtest_wrapper(&test, &config);
            quote! {
                #[doc(hidden)]
                #body
                const _: () = { #registration };
                ::nstest::__unrun_guard!();
                #wrapper
            }
        }
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error)
        }
    }
}

/// The `inventory::submit!` of the test's `nstest::__private::Test`.
fn registration(test: &TestFn, config: &Config) -> TokenStream {
    let value = test_value(test, config, Harness::Nstest);
    quote! {
        ::nstest::__private::inventory::submit! { #value }
    }
}

/// Which harness runs the test: nstest's own (`nstest::main!()`), or libtest's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Harness {
    Nstest,
    Libtest,
}

/// The name the function is emitted under; its own name goes to the `#[test]` wrapper.
fn body_ident(test: &TestFn) -> syn::Ident {
    let ident = &test.function.sig.ident;
    syn::Ident::new(&format!("__nstest_{ident}"), ident.span())
}

/// Under libtest's harness: a `#[test]` of the function's name, with the user's
/// `#[ignore]` and `#[should_panic]` (libtest decides those), and the constructor.
fn libtest_wrapper(test: &TestFn, config: &Config) -> TokenStream {
    let function = &test.function;
    let ident = &function.sig.ident;
    let vis = &function.vis;
    // `#[cfg]` on the function applies to the wrapper too, which names it.
    let cfgs = function.attrs.iter().filter(|a| a.path().is_ident("cfg"));
    let forwarded = test
        .ignore
        .iter()
        .chain(test.should_panic.as_ref().map(|attr| &attr.attr));
    let should_panic = test.should_panic.is_some();
    let value = test_value(test, config, Harness::Libtest);
    quote! {
        #(#cfgs)*
        #[::core::prelude::v1::test]
        #(#forwarded)*
        #vis fn #ident() {
            ::nstest::__libtest_constructor!();
            static TEST: ::nstest::__private::Test = #value;
            ::nstest::__private::libtest::run(&TEST, #should_panic)
        }
    }
}

/// The test's `nstest::__private::Test`. Under libtest's harness `#[ignore]` and
/// `#[should_panic]` are libtest's to apply, so the sandbox reports the test's raw end.
fn test_value(test: &TestFn, config: &Config, harness: Harness) -> TokenStream {
    let fn_name = test.function.sig.ident.to_string();
    let call = call(test, config);
    let plan = plan(config);
    let timeout = option(config.timeout_secs.map(|secs| quote!(#secs)));
    let ours = harness == Harness::Nstest;
    let ignore = ours && config.ignore;
    let ignore_message = option(
        test.ignore_reason
            .as_ref()
            .filter(|_| ours)
            .map(|reason| quote!(#reason)),
    );
    let should_panic = match &config.should_panic {
        ShouldPanic::Yes if ours => quote!(::nstest::__private::ShouldPanic::Yes),
        ShouldPanic::WithMessage(expected) if ours => {
            quote!(::nstest::__private::ShouldPanic::WithMessage(#expected))
        }
        _ => quote!(::nstest::__private::ShouldPanic::No),
    };
    // Spanned at the name, so `line!()` and `column!()` say where it is written.
    let ident = &test.function.sig.ident;
    let name_len = fn_name.chars().count() as u32;
    let file = quote_spanned!(ident.span()=> ::core::file!());
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let column = quote_spanned!(ident.span()=> ::core::column!());
    quote! {
        ::nstest::__private::Test {
            path: ::core::concat!(::core::module_path!(), "::", #fn_name),
            source: ::nstest::__private::Source {
                file: #file,
                line: #line,
                column: #column,
                end_column: #column + #name_len,
            },
            // Named for the panic printer, which shows this frame as libtest shows the
            // closure it calls a test through: `NAME::{{closure}}`.
            run: {
                fn __nstest_call() -> ::core::result::Result<(), ::std::string::String> {
                    #call
                }
                __nstest_call
            },
            plan: #plan,
            timeout_secs: #timeout,
            ignore: #ignore,
            ignore_message: #ignore_message,
            should_panic: #should_panic,
        }
    }
}

/// The `nstest::__private::Plan` literal: the namespaces and settings of the sandbox.
fn plan(config: &Config) -> TokenStream {
    let has = |kind| config.namespaces.has(kind);
    let (net, mount, uts, ipc, pid, cgroup) = (
        has(Kind::Net),
        has(Kind::Mount),
        has(Kind::Uts),
        has(Kind::Ipc),
        has(Kind::Pid),
        has(Kind::Cgroup),
    );
    // Relative paths are the package root's, read where the test is compiled.
    let writable = config.writable.iter().map(|path| {
        let absolute = path.starts_with('/');
        let path = without_dot_segments(path);
        match (absolute, path.as_str()) {
            (true, path) => {
                let path = format!("/{path}");
                quote!(#path)
            }
            // `writable = "."`: the package root itself.
            (false, "") => quote!(::core::env!("CARGO_MANIFEST_DIR")),
            (false, path) => {
                quote!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/", #path))
            }
        }
    });
    let hostname = option(config.hostname.as_ref().map(|name| quote!(#name)));
    let limits = &config.limits;
    let pids = option(limits.pids.map(|n| quote!(#n)));
    let memory = option(limits.memory.map(|n| quote!(#n)));
    let disk = option(limits.disk.map(|n| quote!(#n)));
    let cpu_secs = option(limits.cpu_secs.map(|n| quote!(#n)));
    let time = option(config.time.map(|offsets| {
        let (monotonic, boottime) = (offsets.monotonic, offsets.boottime);
        quote!(::nstest::__private::TimeOffsets {
            monotonic: #monotonic,
            boottime: #boottime,
        })
    }));
    let wall = option(config.wall.map(|wall| match wall {
        Wall::Offset(secs) => quote!(::nstest::__private::Wall::Offset { secs: #secs }),
        Wall::At { unix_secs, nanos } => quote!(::nstest::__private::Wall::At {
            unix_secs: #unix_secs,
            nanos: #nanos,
        }),
    }));
    quote! {
        ::nstest::__private::Plan {
            net: #net,
            mount: #mount,
            uts: #uts,
            ipc: #ipc,
            pid: #pid,
            cgroup: #cgroup,
            hostname: #hostname,
            time: #time,
            wall: #wall,
            writable: &[#(#writable),*],
            limits: ::nstest::__private::Limits {
                pids: #pids,
                memory: #memory,
                disk: #disk,
                cpu_secs: #cpu_secs,
            },
            manifest_dir: ::core::option_env!("CARGO_MANIFEST_DIR"),
            // Cargo sets it when compiling integration tests and benches only, never when
            // running them, so it is read here.
            target_tmpdir: ::core::option_env!("CARGO_TARGET_TMPDIR"),
        }
    }
}

/// `path` without `.` segments, empty segments and a trailing `/`, and without its leading
/// `/`: the sandbox binds a path at the path itself, and a mount point spelled `dir/.`
/// cannot be created.
fn without_dot_segments(path: &str) -> String {
    path.split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The body of the wrapper: calls the function (on a runtime, if async) and turns its
/// return value into the test's result.
fn call(test: &TestFn, config: &Config) -> TokenStream {
    let sig = &test.function.sig;
    let ident = &body_ident(test);
    // The conversion is spanned at the return type, so `E: Debug` errors point there.
    let return_span = match &sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => ident.span(),
    };
    let value = match (&sig.asyncness, config.runtime) {
        // Spanned at `async`, so a missing `tokio` feature is reported at the test.
        (Some(token), Some(runtime)) => {
            let flavor = match runtime {
                Runtime::CurrentThread => quote!(::nstest::__private::Flavor::CurrentThread),
                Runtime::MultiThread { worker_threads } => {
                    let workers = option(worker_threads.map(|n| quote!(#n)));
                    quote!(::nstest::__private::Flavor::MultiThread { worker_threads: #workers })
                }
            };
            quote_spanned! {token.span=>
                ::nstest::__private::block_on(#flavor, #ident())
            }
        }
        _ => quote_spanned!(return_span=> #ident()),
    };
    quote_spanned! {return_span=>
        ::nstest::__private::TestReturn::into_test_result(#value)
    }
}

/// `Some(value)` or `None`, spelled out so the user's prelude cannot change them.
fn option(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
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
            out.contains(
                "pid : true , cgroup : true , hostname : :: core :: option :: Option :: Some (\"box\")"
            ),
            "{out}"
        );
    }

    #[test]
    fn wall_is_an_offset_or_an_instant_and_selects_no_namespace() {
        let out = expand(
            quote!(net, wall = "-1d"),
            quote!(
                fn t() {}
            ),
        );
        assert!(out.contains("net : true , mount : false"), "{out}");
        assert!(
            out.contains("wall : :: core :: option :: Option :: Some (:: nstest :: __private :: Wall :: Offset { secs : - 86400i64 })"),
            "{out}"
        );
        let out = expand(
            quote!(wall = "2038-01-19T03:14:00Z", time = "+1h"),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains("Wall :: At { unix_secs : 2147483640i64 , nanos : 0u32 , }"),
            "{out}"
        );
        assert!(out.contains("monotonic : 3600i64"), "{out}");
        let out = expand(
            quote!(),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains("wall : :: core :: option :: Option :: None"),
            "{out}"
        );
    }

    #[test]
    fn writable_paths_lose_their_dot_segments() {
        let out = expand(
            quote!(writable = [".", "./snapshots/", "/var//tmp/."]),
            quote!(
                fn t() {}
            ),
        );
        assert!(
            out.contains(
                "writable : & [:: core :: env ! (\"CARGO_MANIFEST_DIR\") , :: core :: concat ! (:: core :: env ! (\"CARGO_MANIFEST_DIR\") , \"/\" , \"snapshots\") , \"/var/tmp\"]"
            ),
            "{out}"
        );
    }

    #[test]
    fn writable_paths_are_absolute_or_joined_to_the_package_root() {
        let out = expand(
            quote!(net, writable = ["snapshots", "/var/cache/app"]),
            quote!(
                fn t() {}
            ),
        );
        assert!(out.contains("net : true , mount : true"), "{out}");
        assert!(
            out.contains(
                "writable : & [:: core :: concat ! (:: core :: env ! (\"CARGO_MANIFEST_DIR\") , \"/\" , \"snapshots\") , \"/var/cache/app\"]"
            ),
            "{out}"
        );
        assert!(
            out.contains("target_tmpdir : :: core :: option_env ! (\"CARGO_TARGET_TMPDIR\")"),
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
    fn test_attributes_go_to_the_harness_that_applies_them() {
        let out = expand(
            quote!(),
            quote!(
                #[ignore = "slow"]
                #[should_panic(expected = "boom")]
                #[inline]
                fn t() {}
            ),
        );
        // nstest's registration carries them ...
        assert!(out.contains("ignore : true"), "{out}");
        assert!(
            out.contains("ignore_message : :: core :: option :: Option :: Some (\"slow\")"),
            "{out}"
        );
        assert!(
            out.contains("ShouldPanic :: WithMessage (\"boom\")"),
            "{out}"
        );
        // ... the function keeps its other attributes, under its emitted name ...
        assert!(out.contains("# [inline] fn __nstest_t"), "{out}");
        // ... and libtest's `#[test]` of the same name gets them as written, once.
        let wrapper = out
            .split_once("# [:: core :: prelude :: v1 :: test]")
            .map(|(_, w)| w)
            .unwrap_or_else(|| panic!("no #[test] wrapper: {out}"));
        assert!(
            wrapper.starts_with(
                " # [ignore = \"slow\"] # [should_panic (expected = \"boom\")] fn t ()"
            ),
            "{wrapper}"
        );
        assert_eq!(out.matches("# [ignore").count(), 1, "{out}");
        assert!(
            wrapper.contains("libtest :: run (& TEST , true)"),
            "{wrapper}"
        );
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
            out.contains(
                "block_on (:: nstest :: __private :: Flavor :: CurrentThread , __nstest_t ())"
            ),
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
