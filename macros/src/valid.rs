//! Stage 2: the options checked against each other and against the function, into the
//! final [`Config`] that `expand` emits. Nothing here reads tokens; every rule that
//! involves more than one option, or an option and the function, lives here.

use proc_macro2::Span;
use syn::{LitStr, ReturnType};

use crate::ast::TestFn;
use crate::attr::{Flavor, Given, Kind, Options};
use crate::errors::Errors;
use crate::wall::Wall;

/// What the test asked for, checked: the registration is made from this alone. (Not
/// `Debug`: syn's `LitStr` is not, without a feature this crate does not need.)
pub(crate) struct Config {
    pub(crate) namespaces: Namespaces,
    pub(crate) hostname: Option<String>,
    pub(crate) time: Option<Offsets>,
    /// `wall`: where the test's wall clock starts. It needs no namespace, and combines
    /// with every other option (with `time`, each moves its own clocks).
    pub(crate) wall: Option<Wall>,
    pub(crate) timeout_secs: Option<u64>,
    /// `writable` paths as written, each once.
    pub(crate) writable: Vec<String>,
    pub(crate) limits: Limits,
    /// `Some` exactly when the function is an `async fn`.
    pub(crate) runtime: Option<Runtime>,
    pub(crate) ignore: bool,
    pub(crate) should_panic: ShouldPanic,
}

/// The namespace kinds selected: the ones named, or all of them when none is named.
/// (Settings such as `hostname` add their namespace in the harness, on top of these;
/// `writable` adds the mount namespace here, as its paths mean nothing without one.)
#[derive(Debug)]
pub(crate) struct Namespaces {
    named: Vec<Kind>,
    /// A setting that needs a mount namespace was given.
    needs_mount: bool,
}

impl Namespaces {
    /// Whether the test gets `kind`.
    pub(crate) fn has(&self, kind: Kind) -> bool {
        self.named.is_empty()
            || self.named.contains(&kind)
            || (kind == Kind::Mount && self.needs_mount)
    }
}

/// The resource limits the test asked for; `None` where it asked for none (the harness
/// then applies its default process limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) pids: Option<u32>,
    pub(crate) memory: Option<u64>,
    pub(crate) disk: Option<u64>,
    pub(crate) cpu_secs: Option<u64>,
}

/// Seconds added to each clock in the test's time namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offsets {
    pub(crate) monotonic: i64,
    pub(crate) boottime: i64,
}

/// The tokio runtime an async test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    CurrentThread,
    MultiThread { worker_threads: Option<usize> },
}

/// What `#[should_panic]` asked for.
pub(crate) enum ShouldPanic {
    No,
    Yes,
    WithMessage(LitStr),
}

/// Checks the function itself: its signature and leftover attributes. Runs even when the
/// options could not be read, so every error shows in one compile.
pub(crate) fn check_function(test: &TestFn, errors: &mut Errors) {
    let sig = &test.function.sig;
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
    if let Some(attr) = &test.test_attr {
        errors.push(syn::Error::new_spanned(
            attr,
            "remove #[test]: #[ns_test] already makes this a test, run by nstest::main!()",
        ));
    }
    if let (Some(should_panic), ReturnType::Type(_, ty)) = (&test.should_panic, &sig.output) {
        if !is_unit(ty) {
            let mut e = syn::Error::new_spanned(
                ty,
                "#[should_panic] tests must return `()`, as with #[test]",
            );
            e.combine(syn::Error::new_spanned(
                &should_panic.attr,
                "#[should_panic] given here",
            ));
            errors.push(e);
        }
    }
}

impl Options {
    /// Checks the options against each other and against `test`, into the final config.
    ///
    /// # Errors
    ///
    /// Every rule broken, combined into one error.
    pub(crate) fn build(self, test: &TestFn) -> syn::Result<Config> {
        let mut errors = Errors::default();
        let time = self.offsets(&mut errors);
        let runtime = self.runtime(test, &mut errors);
        let namespaces = Namespaces {
            named: self.kinds.iter().map(|given| given.value).collect(),
            needs_mount: self.writable.is_some(),
        };
        let limits = self.limits(&namespaces, &mut errors);
        let config = Config {
            namespaces,
            hostname: self.hostname.map(|given| given.value),
            time,
            wall: self.wall.map(|given| given.value),
            timeout_secs: self.timeout.map(|given| given.value),
            writable: self.writable.map_or_else(Vec::new, |given| given.value),
            limits,
            runtime,
            ignore: test.ignore.is_some(),
            should_panic: match &test.should_panic {
                None => ShouldPanic::No,
                Some(attr) => match &attr.expected {
                    None => ShouldPanic::Yes,
                    Some(text) => ShouldPanic::WithMessage(text.clone()),
                },
            },
        };
        errors.finish(Ok(config))
    }

    /// `time` sets both clocks, so it excludes `boottime` and `monotonic`; either of those
    /// alone leaves the other clock at 0.
    fn offsets(&self, errors: &mut Errors) -> Option<Offsets> {
        let per_clock = [("boottime", &self.boottime), ("monotonic", &self.monotonic)];
        if let Some(time) = &self.time {
            for (name, given) in per_clock {
                if let Some(given) = given {
                    errors.push(syn::Error::new(
                        given.key,
                        format!(
                            "`{name}` conflicts with `time`, which already sets both clocks; \
                             write either `time` or the per-clock `boottime`/`monotonic`"
                        ),
                    ));
                }
            }
            return Some(Offsets {
                monotonic: time.value,
                boottime: time.value,
            });
        }
        if self.boottime.is_none() && self.monotonic.is_none() {
            return None;
        }
        let secs = |given: &Option<Given<i64>>| given.as_ref().map_or(0, |g| g.value);
        Some(Offsets {
            monotonic: secs(&self.monotonic),
            boottime: secs(&self.boottime),
        })
    }

    /// `disk` sizes the test's private scratch tmpfs, which only a mount namespace has.
    fn limits(&self, namespaces: &Namespaces, errors: &mut Errors) -> Limits {
        if let Some(disk) = &self.disk {
            if !namespaces.has(Kind::Mount) {
                errors.push(syn::Error::new(
                    disk.key,
                    "`disk` needs the `mount` kind: it sizes the fresh tmpfs on /tmp, /var/tmp, \
                     /dev/shm and CARGO_TARGET_TMPDIR, which only a mount namespace has; add \
                     `mount` to the kinds named, like `#[ns_test(mount, disk = \"8M\")]`",
                ));
            }
        }
        let value = |given: &Option<Given<u64>>| given.as_ref().map(|g| g.value);
        Limits {
            pids: self.pids.as_ref().map(|given| given.value),
            memory: value(&self.memory),
            disk: value(&self.disk),
            cpu_secs: value(&self.cpu),
        }
    }

    /// `flavor` and `worker_threads` only mean something for an `async fn`, and
    /// `worker_threads` only with the multi_thread flavor, as with `#[tokio::test]`.
    fn runtime(&self, test: &TestFn, errors: &mut Errors) -> Option<Runtime> {
        let is_async = test.function.sig.asyncness.is_some();
        if !is_async {
            let given: [(&str, Option<Span>); 2] = [
                ("flavor", self.flavor.as_ref().map(|g| g.span)),
                (
                    "worker_threads",
                    self.worker_threads.as_ref().map(|g| g.span),
                ),
            ];
            for (name, span) in given {
                if let Some(span) = span {
                    errors.push(syn::Error::new(
                        span,
                        format!("`{name}` is for `async fn` tests, which run on a tokio runtime"),
                    ));
                }
            }
            return None;
        }
        let workers = self.worker_threads.as_ref().map(|given| given.value);
        match self.flavor.as_ref().map(|given| given.value) {
            Some(Flavor::MultiThread) => Some(Runtime::MultiThread {
                worker_threads: workers,
            }),
            Some(Flavor::CurrentThread) | None => {
                if let Some(given) = &self.worker_threads {
                    errors.push(syn::Error::new(
                        given.span,
                        "`worker_threads` needs `flavor = \"multi_thread\"` (the current_thread \
                         flavor runs everything on the test's thread)",
                    ));
                }
                Some(Runtime::CurrentThread)
            }
        }
    }
}

fn is_unit(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Tuple(t) if t.elems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr;
    use proc_macro2::TokenStream;
    use quote::quote;

    fn test_fn(item: TokenStream) -> TestFn {
        let mut errors = Errors::default();
        let test = TestFn::from_item(syn::parse2(item).unwrap(), &mut errors);
        errors.finish(Ok(test)).unwrap()
    }

    fn build(attr: TokenStream, item: TokenStream) -> syn::Result<Config> {
        attr::parse(attr).unwrap().build(&test_fn(item))
    }

    fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let error = build(attr, item).err().expect("an error");
        error.into_iter().map(|e| e.to_string()).collect()
    }

    fn function_errors(item: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        check_function(&test_fn(item), &mut errors);
        match errors.finish(Ok(())) {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn naming_no_kind_selects_every_kind_naming_some_selects_those() {
        let config = build(
            quote!(),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert!(Kind::ALL.iter().all(|&kind| config.namespaces.has(kind)));
        let config = build(
            quote!(net, pid, hostname = "h"),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        let has: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|&kind| config.namespaces.has(kind))
            .collect();
        assert_eq!(has, [Kind::Net, Kind::Pid]);
        assert_eq!(config.hostname.as_deref(), Some("h"));
        let config = build(
            quote!(user),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert!(!config.namespaces.has(Kind::Net) && config.namespaces.has(Kind::User));
        let config = build(
            quote!(net, writable = "snapshots"),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        let has: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|&kind| config.namespaces.has(kind))
            .collect();
        assert_eq!(has, [Kind::Net, Kind::Mount], "writable adds mount");
        assert_eq!(config.writable, ["snapshots"]);
    }

    #[test]
    fn limits_carry_into_the_config_and_disk_needs_a_mount_namespace() {
        let item = || {
            quote!(
                fn t() {}
            )
        };
        let config = build(
            quote!(net, mount, pids = 8, memory = "1M", disk = "2M", cpu = "3s"),
            item(),
        )
        .unwrap();
        let all = Limits {
            pids: Some(8),
            memory: Some(1 << 20),
            disk: Some(2 << 20),
            cpu_secs: Some(3),
        };
        assert_eq!(config.limits, all);
        assert_eq!(build(quote!(), item()).unwrap().limits, Limits::default());
        assert!(
            build(quote!(disk = "8M"), item()).is_ok(),
            "no kind named: all of them"
        );
        assert!(build(quote!(writable = "w", disk = "8M"), item()).is_ok());
        let found = errors(quote!(net, pid, disk = "8M"), item());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("`disk` needs the `mount` kind"),
            "{found:?}"
        );
        for alone in [
            quote!(net, pids = 2),
            quote!(user, memory = "1M"),
            quote!(pid, cpu = "1s"),
        ] {
            assert!(build(alone, item()).is_ok());
        }
    }

    #[test]
    fn time_sets_both_clocks_and_one_clock_leaves_the_other_at_zero() {
        let offsets = |attr| {
            build(
                attr,
                quote!(
                    fn t() {}
                ),
            )
            .unwrap()
            .time
        };
        assert_eq!(offsets(quote!()), None);
        assert_eq!(offsets(quote!(timeout = "5s")), None);
        let both = Offsets {
            monotonic: 60,
            boottime: 60,
        };
        assert_eq!(offsets(quote!(time = "1m")), Some(both));
        let boot = Offsets {
            monotonic: 0,
            boottime: 86_400,
        };
        assert_eq!(offsets(quote!(boottime = "1d")), Some(boot));
        let mono = Offsets {
            monotonic: -30,
            boottime: 0,
        };
        assert_eq!(offsets(quote!(monotonic = "-30s")), Some(mono));
        let each = Offsets {
            monotonic: 2,
            boottime: 1,
        };
        assert_eq!(offsets(quote!(boottime = "1", monotonic = "2")), Some(each));
    }

    #[test]
    fn time_with_a_per_clock_offset_is_an_error_at_each_per_clock_key() {
        let item = || {
            quote!(
                fn t() {}
            )
        };
        let found = errors(quote!(time = "1h", boottime = "1h"), item());
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("`boottime` conflicts with `time`"),
            "{found:?}"
        );
        let found = errors(
            quote!(monotonic = "1h", time = "1h", boottime = "2h"),
            item(),
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].starts_with("`boottime` conflicts"), "{found:?}");
        assert!(found[1].starts_with("`monotonic` conflicts"), "{found:?}");
    }

    #[test]
    fn runtime_options_need_an_async_fn_and_workers_need_multi_thread() {
        let config = build(
            quote!(),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(config.runtime, Some(Runtime::CurrentThread));
        assert_eq!(
            build(
                quote!(),
                quote!(
                    fn t() {}
                )
            )
            .unwrap()
            .runtime,
            None
        );
        let config = build(
            quote!(flavor = "multi_thread", worker_threads = 4),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap();
        let four = Runtime::MultiThread {
            worker_threads: Some(4),
        };
        assert_eq!(config.runtime, Some(four));
        let config = build(
            quote!(flavor = "current_thread"),
            quote!(
                async fn t() {}
            ),
        )
        .unwrap();
        assert_eq!(config.runtime, Some(Runtime::CurrentThread));

        let found = errors(
            quote!(flavor = "multi_thread", worker_threads = 2),
            quote!(
                fn t() {}
            ),
        );
        assert_eq!(
            found,
            [
                "`flavor` is for `async fn` tests, which run on a tokio runtime",
                "`worker_threads` is for `async fn` tests, which run on a tokio runtime",
            ]
        );
        for attr in [
            quote!(worker_threads = 2),
            quote!(flavor = "current_thread", worker_threads = 2),
        ] {
            let found = errors(
                attr,
                quote!(
                    async fn t() {}
                ),
            );
            assert_eq!(found.len(), 1);
            assert!(found[0].starts_with("`worker_threads` needs `flavor = \"multi_thread\"`"));
        }
    }

    #[test]
    fn test_attributes_carry_into_the_config() {
        let config = build(
            quote!(),
            quote!(
                #[ignore]
                #[should_panic]
                fn t() {}
            ),
        )
        .unwrap();
        assert!(config.ignore);
        assert!(matches!(config.should_panic, ShouldPanic::Yes));
        let config = build(
            quote!(),
            quote!(
                #[should_panic = "x"]
                fn t() {}
            ),
        )
        .unwrap();
        assert!(
            matches!(config.should_panic, ShouldPanic::WithMessage(text) if text.value() == "x")
        );
        let config = build(
            quote!(),
            quote!(
                fn t() {}
            ),
        )
        .unwrap();
        assert!(!config.ignore && matches!(config.should_panic, ShouldPanic::No));
    }

    #[test]
    fn the_function_must_be_a_plain_fn_without_parameters() {
        assert!(
            function_errors(quote!(
                fn t() {}
            ))
            .is_empty()
        );
        assert!(
            function_errors(quote!(
                async fn t() -> Result<(), String> {
                    Ok(())
                }
            ))
            .is_empty()
        );
        assert!(
            function_errors(quote!(
                #[should_panic]
                fn t() -> () {}
            ))
            .is_empty()
        );
        for (item, message) in [
            (
                quote!(
                    fn t(x: u8) {}
                ),
                "take no parameters",
            ),
            (
                quote!(
                    fn t<T>() {}
                ),
                "cannot be generic",
            ),
            (
                quote!(
                    fn t()
                    where
                        u8: Copy,
                    {
                    }
                ),
                "cannot be generic",
            ),
            (
                quote!(
                    unsafe fn t() {}
                ),
                "cannot be `unsafe fn`",
            ),
            (
                quote!(
                    const fn t() {}
                ),
                "cannot be `const fn`",
            ),
            (
                quote!(
                    extern "C" fn t() {}
                ),
                "cannot have an `extern` ABI",
            ),
            (
                quote!(
                    #[test]
                    fn t() {}
                ),
                "remove #[test]",
            ),
        ] {
            let found = function_errors(item);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].contains(message), "{found:?}");
        }
        let found = function_errors(quote!(
            #[should_panic]
            fn t() -> Result<(), String> {
                Ok(())
            }
        ));
        assert_eq!(
            found,
            [
                "#[should_panic] tests must return `()`, as with #[test]",
                "#[should_panic] given here",
            ]
        );
        assert_eq!(
            function_errors(quote!(
                unsafe fn t(x: u8) {}
            ))
            .len(),
            2
        );
    }
}
