//! Stage 1: `#[ns_test(...)]` read into [`Options`], a builder that holds each option as
//! written, with where it was written.
//!
//! Each value is checked against its own grammar here, with the error at the value; an
//! unknown option is an error at its key listing the valid ones, a repeated one an error
//! at its second key. How options combine with each other and with the function is
//! `valid`'s job.
//!
//! Adding an option: a field in [`Options`] and a row in [`SETTINGS`] (a namespace kind: a
//! variant of [`Kind`] and its key), then its rule in `valid` and its output in `expand`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{LitInt, LitStr, Token};

use crate::duration;
use crate::errors::Errors;
use crate::size;
use crate::wall::{self, Wall};

/// A namespace kind the attribute can name. Naming kinds selects exactly those; naming
/// none selects all of them (`valid` decides this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `user`: the user namespace, which every test has; named alone, it is all the test
    /// gets.
    User,
    Net,
    Mount,
    Uts,
    Ipc,
    Pid,
    Cgroup,
}

impl Kind {
    /// Every kind, in the order the unknown-option error lists them.
    pub(crate) const ALL: [Kind; 7] = [
        Kind::User,
        Kind::Net,
        Kind::Mount,
        Kind::Uts,
        Kind::Ipc,
        Kind::Pid,
        Kind::Cgroup,
    ];

    /// The key that names it in the attribute.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Net => "net",
            Kind::Mount => "mount",
            Kind::Uts => "uts",
            Kind::Ipc => "ipc",
            Kind::Pid => "pid",
            Kind::Cgroup => "cgroup",
        }
    }
}

/// `flavor = "..."`: the tokio runtime of an async test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    CurrentThread,
    MultiThread,
}

/// An option's value as written, with the spans its errors point at.
#[derive(Debug, Clone)]
pub(crate) struct Given<T> {
    pub(crate) value: T,
    /// The option's key (`timeout` in `timeout = "10s"`).
    pub(crate) key: Span,
    /// The value (`"10s"`); the key for a kind, which has no value.
    pub(crate) span: Span,
}

/// The attribute's options, each `None` until given; a kind is in `kinds` once named.
#[derive(Debug, Default)]
pub(crate) struct Options {
    pub(crate) kinds: Vec<Given<Kind>>,
    pub(crate) hostname: Option<Given<String>>,
    /// Seconds added to both clocks.
    pub(crate) time: Option<Given<i64>>,
    /// Seconds added to CLOCK_BOOTTIME.
    pub(crate) boottime: Option<Given<i64>>,
    /// Seconds added to CLOCK_MONOTONIC.
    pub(crate) monotonic: Option<Given<i64>>,
    /// Seconds after which the test and everything it started are killed.
    pub(crate) timeout: Option<Given<u64>>,
    /// Where the test's wall clock starts.
    pub(crate) wall: Option<Given<Wall>>,
    pub(crate) flavor: Option<Given<Flavor>>,
    pub(crate) worker_threads: Option<Given<usize>>,
    /// Host paths kept writable, as written (relative ones are joined to the package root
    /// in `expand`).
    pub(crate) writable: Option<Given<Vec<String>>>,
    /// `pids = N`: at most N tasks in the test's tree.
    pub(crate) pids: Option<Given<u32>>,
    /// `memory = "64M"`, in bytes.
    pub(crate) memory: Option<Given<u64>>,
    /// `disk = "8M"`, in bytes, for each private scratch directory.
    pub(crate) disk: Option<Given<u64>>,
    /// `cpu = "1s"`, in seconds of CPU time.
    pub(crate) cpu: Option<Given<u64>>,
}

/// An option that takes a value: its key, how the unknown-option error shows it, and how
/// its value is read into [`Options`].
struct Setting {
    key: &'static str,
    shown: &'static str,
    read: fn(&ParseNestedMeta<'_>, &mut Options) -> syn::Result<()>,
}

/// Every option but the kinds, in the order the unknown-option error lists them.
const SETTINGS: &[Setting] = &[
    Setting {
        key: "hostname",
        shown: "hostname = \"...\"",
        read: |meta, options| set(&mut options.hostname, meta, hostname(meta)?),
    },
    Setting {
        key: "time",
        shown: "time = \"...\"",
        read: |meta, options| set(&mut options.time, meta, offset(meta)?),
    },
    Setting {
        key: "boottime",
        shown: "boottime = \"...\"",
        read: |meta, options| set(&mut options.boottime, meta, offset(meta)?),
    },
    Setting {
        key: "monotonic",
        shown: "monotonic = \"...\"",
        read: |meta, options| set(&mut options.monotonic, meta, offset(meta)?),
    },
    Setting {
        key: "wall",
        shown: "wall = \"...\"",
        read: |meta, options| set(&mut options.wall, meta, wall_clock(meta)?),
    },
    Setting {
        key: "timeout",
        shown: "timeout = \"...\"",
        read: |meta, options| set(&mut options.timeout, meta, timeout(meta)?),
    },
    Setting {
        key: "writable",
        shown: "writable = \"path\"|[...]",
        read: |meta, options| set(&mut options.writable, meta, writable(meta)?),
    },
    Setting {
        key: "pids",
        shown: "pids = N",
        read: |meta, options| set(&mut options.pids, meta, pids(meta)?),
    },
    Setting {
        key: "memory",
        shown: "memory = \"64M\"",
        read: |meta, options| set(&mut options.memory, meta, size(meta, "\"64M\"")?),
    },
    Setting {
        key: "disk",
        shown: "disk = \"8M\"",
        read: |meta, options| set(&mut options.disk, meta, size(meta, "\"8M\"")?),
    },
    Setting {
        key: "cpu",
        shown: "cpu = \"...\"",
        read: |meta, options| set(&mut options.cpu, meta, cpu(meta)?),
    },
    Setting {
        key: "flavor",
        shown: "flavor = \"current_thread\"|\"multi_thread\" (async)",
        read: |meta, options| set(&mut options.flavor, meta, flavor(meta)?),
    },
    Setting {
        key: "worker_threads",
        shown: "worker_threads = N (async)",
        read: |meta, options| set(&mut options.worker_threads, meta, worker_threads(meta)?),
    },
];

/// Every option, as the unknown-option error lists them.
pub(crate) fn expected() -> String {
    let kinds = Kind::ALL.iter().map(|kind| kind.key());
    let settings = SETTINGS.iter().map(|setting| setting.shown);
    kinds.chain(settings).collect::<Vec<_>>().join(", ")
}

/// Reads the attribute's arguments.
///
/// # Errors
///
/// Every malformed, unknown or repeated option, combined into one error.
pub(crate) fn parse(attr: TokenStream) -> syn::Result<Options> {
    let mut options = Options::default();
    let mut errors = Errors::default();
    let parser = syn::meta::parser(|meta| {
        if let Err(error) = read_option(&meta, &mut options) {
            errors.push(error);
            skip_value(&meta);
        }
        Ok(())
    });
    // A list syn cannot read at all (`net mount`, `"net"`) stops here, at the token syn
    // could not read, with syn's words and how the list is written.
    if let Err(unreadable) = parser.parse2(attr) {
        for error in unreadable {
            errors.push(syn::Error::new(
                error.span(),
                format!(
                    "{error}: the options are a comma-separated list of names and \
                     `name = value`, like `#[ns_test(net, timeout = \"10s\")]`"
                ),
            ));
        }
    }
    errors.finish(Ok(options))
}

fn read_option(meta: &ParseNestedMeta<'_>, options: &mut Options) -> syn::Result<()> {
    if meta.path.get_ident().is_none() {
        return Err(unknown(meta));
    }
    let name = key_name(meta);
    if let Some(kind) = Kind::ALL.into_iter().find(|kind| kind.key() == name) {
        no_value(meta)?;
        if options.kinds.iter().any(|given| given.value == kind) {
            return Err(duplicate(meta));
        }
        let key = meta.path.span();
        options.kinds.push(Given {
            value: kind,
            key,
            span: key,
        });
        return Ok(());
    }
    match SETTINGS.iter().find(|setting| setting.key == name) {
        Some(setting) => (setting.read)(meta, options),
        None => Err(unknown(meta)),
    }
}

/// After an error in one option, moves past the rest of it (up to the next top-level
/// comma), so the options after it are still read and checked.
fn skip_value(meta: &ParseNestedMeta<'_>) {
    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        if meta.input.parse::<TokenTree>().is_err() {
            break;
        }
    }
}

/// Stores a value read for the option at `meta`, or rejects it as given twice.
fn set<T>(
    slot: &mut Option<Given<T>>,
    meta: &ParseNestedMeta<'_>,
    (value, span): (T, Span),
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(duplicate(meta));
    }
    *slot = Some(Given {
        value,
        key: meta.path.span(),
        span,
    });
    Ok(())
}

/// The option's key as written: `net`, or `std::net` for a path (never an option).
fn key_name(meta: &ParseNestedMeta<'_>) -> String {
    let segments: Vec<String> = meta
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let lead = if meta.path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{lead}{}", segments.join("::"))
}

fn unknown(meta: &ParseNestedMeta<'_>) -> syn::Error {
    let (name, expected) = (key_name(meta), expected());
    syn::Error::new_spanned(
        &meta.path,
        format!("unknown ns_test option `{name}`; expected one of: {expected}"),
    )
}

fn duplicate(meta: &ParseNestedMeta<'_>) -> syn::Error {
    let name = key_name(meta);
    syn::Error::new_spanned(&meta.path, format!("duplicate ns_test option `{name}`"))
}

/// A kind is a bare key: `net`, never `net = true` or `net(...)`.
fn no_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        let name = key_name(meta);
        return Err(syn::Error::new_spanned(
            &meta.path,
            format!("`{name}` takes no value: write `{name}` alone"),
        ));
    }
    Ok(())
}

/// `key = <literal>`, or an error at the key when there is no `=`.
fn value_of<'a>(
    meta: &'a ParseNestedMeta<'a>,
    example: &str,
) -> syn::Result<syn::parse::ParseStream<'a>> {
    if !meta.input.peek(Token![=]) {
        let name = key_name(meta);
        return Err(syn::Error::new_spanned(
            &meta.path,
            format!("`{name}` needs a value: `{name} = {example}`"),
        ));
    }
    meta.value()
}

/// `key = "literal"`, or an error at the value saying what to write.
fn string(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let expr: syn::Expr = value_of(meta, example)?.parse()?;
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(lit),
        other => {
            let name = key_name(meta);
            Err(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a string literal, like `{name} = {example}`"),
            ))
        }
    }
}

/// Hostnames: 1 to 64 bytes (`HOST_NAME_MAX`, sethostname(2)), letters, digits, `-`, `.`.
fn hostname(meta: &ParseNestedMeta<'_>) -> syn::Result<(String, Span)> {
    let lit = string(meta, "\"my-host\"")?;
    let name = lit.value();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        return Err(syn::Error::new(
            lit.span(),
            "invalid hostname: expected 1 to 64 ASCII letters, digits, `-` or `.`",
        ));
    }
    Ok((name, lit.span()))
}

/// A clock offset in seconds, within the kernel's range.
fn offset(meta: &ParseNestedMeta<'_>) -> syn::Result<(i64, Span)> {
    let lit = string(meta, "\"+1h30m\"")?;
    let secs = duration::parse_offset(&lit.value()).map_err(|why| {
        let name = key_name(meta);
        syn::Error::new(lit.span(), format!("invalid `{name}` offset: {why}"))
    })?;
    Ok((secs, lit.span()))
}

/// `wall = "+30d"` or `wall = "2038-01-19T03:14:00Z"`.
fn wall_clock(meta: &ParseNestedMeta<'_>) -> syn::Result<(Wall, Span)> {
    let lit = string(meta, "\"+30d\"")?;
    let wall = wall::parse(&lit.value())
        .map_err(|why| syn::Error::new(lit.span(), format!("invalid `wall`: {why}")))?;
    Ok((wall, lit.span()))
}

fn timeout(meta: &ParseNestedMeta<'_>) -> syn::Result<(u64, Span)> {
    let lit = string(meta, "\"10s\"")?;
    let secs = duration::parse_timeout(&lit.value())
        .map_err(|why| syn::Error::new(lit.span(), format!("invalid `timeout`: {why}")))?;
    Ok((secs, lit.span()))
}

/// `pids = N`: a whole number of tasks, at least 1.
fn pids(meta: &ParseNestedMeta<'_>) -> syn::Result<(u32, Span)> {
    let expected = format!("expected a number of tasks from 1 to {}", u32::MAX);
    positive_number(meta, "32", &expected)
}

/// `key = N`: an integer literal greater than zero that fits `T`.
fn positive_number<T>(
    meta: &ParseNestedMeta<'_>,
    example: &str,
    expected: &str,
) -> syn::Result<(T, Span)>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let name = key_name(meta);
    let value = value_of(meta, example)?;
    let lit: LitInt = value.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{name}` takes a number, like `{name} = {example}`"),
        )
    })?;
    match lit.base10_parse::<T>() {
        Ok(n) if n != T::default() => Ok((n, lit.span())),
        _ => Err(syn::Error::new(
            lit.span(),
            format!("invalid `{name}`: {expected}"),
        )),
    }
}

/// `memory` and `disk`: a size in binary units, greater than zero.
fn size(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<(u64, Span)> {
    let lit = string(meta, example)?;
    let bytes = size::parse_size(&lit.value()).map_err(|why| {
        let name = key_name(meta);
        syn::Error::new(lit.span(), format!("invalid `{name}`: {why}"))
    })?;
    Ok((bytes, lit.span()))
}

/// `cpu = "1s"`: CPU time, in the duration syntax of `timeout`.
fn cpu(meta: &ParseNestedMeta<'_>) -> syn::Result<(u64, Span)> {
    let lit = string(meta, "\"1s\"")?;
    let text = lit.value();
    let why = match duration::parse_seconds(&text) {
        Ok(secs) if secs > 0 => return Ok((secs as u64, lit.span())),
        Ok(_) => format!("cpu time `{text}` must be longer than zero, like \"1s\" or \"2m\""),
        Err(why) => why,
    };
    Err(syn::Error::new(lit.span(), format!("invalid `cpu`: {why}")))
}

/// `writable = "path"` or `writable = ["path", ...]`: non-empty string literals, each path
/// once.
fn writable(meta: &ParseNestedMeta<'_>) -> syn::Result<(Vec<String>, Span)> {
    const EXAMPLE: &str = "\"snapshots\"";
    let expr: syn::Expr = value_of(meta, EXAMPLE)?.parse()?;
    let not_a_string = |tokens: &dyn quote::ToTokens| {
        syn::Error::new_spanned(
            tokens,
            "`writable` takes a string literal or an array of them, like \
             `writable = \"snapshots\"` or `writable = [\"snapshots\", \"/var/cache/app\"]`",
        )
    };
    let literals: Vec<LitStr> = match &expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => vec![lit.clone()],
        syn::Expr::Array(array) => {
            if array.elems.is_empty() {
                return Err(syn::Error::new_spanned(
                    array,
                    "`writable` needs at least one path: `writable = [\"snapshots\"]`",
                ));
            }
            let mut literals = Vec::new();
            let mut errors = Errors::default();
            for elem in &array.elems {
                match elem {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(lit),
                        ..
                    }) => literals.push(lit.clone()),
                    other => errors.push(not_a_string(other)),
                }
            }
            errors.finish(Ok(literals))?
        }
        other => return Err(not_a_string(other)),
    };
    let mut errors = Errors::default();
    let mut paths: Vec<String> = Vec::new();
    for lit in &literals {
        let path = lit.value();
        if path.is_empty() {
            errors.push(syn::Error::new(
                lit.span(),
                "`writable` paths cannot be empty: name a file or directory, absolute or \
                 relative to the package root",
            ));
        } else if path.contains('\0') {
            errors.push(syn::Error::new(
                lit.span(),
                "`writable` paths cannot contain a NUL byte",
            ));
        } else if paths.contains(&path) {
            errors.push(syn::Error::new(
                lit.span(),
                format!("`writable` path {path:?} is given twice"),
            ));
        } else {
            paths.push(path);
        }
    }
    errors.finish(Ok((paths, expr.span())))
}

fn flavor(meta: &ParseNestedMeta<'_>) -> syn::Result<(Flavor, Span)> {
    let lit = string(meta, "\"multi_thread\"")?;
    let flavor = match lit.value().as_str() {
        "current_thread" => Flavor::CurrentThread,
        "multi_thread" => Flavor::MultiThread,
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                "invalid `flavor`: expected \"current_thread\" or \"multi_thread\"",
            ));
        }
    };
    Ok((flavor, lit.span()))
}

fn worker_threads(meta: &ParseNestedMeta<'_>) -> syn::Result<(usize, Span)> {
    positive_number(meta, "2", "expected a number greater than zero")
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn err(attr: TokenStream) -> String {
        parse(attr).unwrap_err().to_string()
    }

    fn all_errors(attr: TokenStream) -> Vec<String> {
        parse(attr)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    fn kinds(options: &Options) -> Vec<Kind> {
        options.kinds.iter().map(|given| given.value).collect()
    }

    #[test]
    fn empty_gives_nothing() {
        let options = parse(quote!()).unwrap();
        assert!(options.kinds.is_empty());
        assert!(options.hostname.is_none() && options.time.is_none());
        assert!(options.timeout.is_none() && options.flavor.is_none());
    }

    #[test]
    fn kinds_and_settings_are_read_as_written() {
        let options = parse(quote!(net, mount, hostname = "box", time = "+1h")).unwrap();
        assert_eq!(kinds(&options), [Kind::Net, Kind::Mount]);
        assert_eq!(options.hostname.unwrap().value, "box");
        assert_eq!(options.time.unwrap().value, 3600);
        assert!(options.boottime.is_none() && options.monotonic.is_none());
        let options = parse(quote!(boottime = "+1d", monotonic = "-30s")).unwrap();
        assert_eq!(options.boottime.unwrap().value, 86_400);
        assert_eq!(options.monotonic.unwrap().value, -30);
        let options = parse(quote!(user, timeout = "1m")).unwrap();
        assert_eq!(kinds(&options), [Kind::User]);
        assert_eq!(options.timeout.unwrap().value, 60);
        let options = parse(quote!(flavor = "multi_thread", worker_threads = 3)).unwrap();
        assert_eq!(options.flavor.unwrap().value, Flavor::MultiThread);
        assert_eq!(options.worker_threads.unwrap().value, 3);
        let options = parse(quote!(flavor = "current_thread")).unwrap();
        assert_eq!(options.flavor.unwrap().value, Flavor::CurrentThread);
        let options = parse(quote!(cgroup, writable = "snapshots")).unwrap();
        assert_eq!(kinds(&options), [Kind::Cgroup]);
        assert_eq!(options.writable.unwrap().value, ["snapshots"]);
        let options = parse(quote!(writable = ["a", "/var/cache/app"])).unwrap();
        assert_eq!(options.writable.unwrap().value, ["a", "/var/cache/app"]);
    }

    #[test]
    fn writable_takes_non_empty_distinct_strings() {
        let takes = "`writable` takes a string literal or an array of them";
        assert!(err(quote!(writable = 5)).starts_with(takes));
        assert!(err(quote!(writable = snapshots)).starts_with(takes));
        assert!(err(quote!(writable = ["a", 5])).starts_with(takes));
        assert!(err(quote!(writable)).contains("`writable` needs a value"));
        assert!(err(quote!(writable = "")).starts_with("`writable` paths cannot be empty"));
        assert!(err(quote!(writable = ["a", ""])).starts_with("`writable` paths cannot be empty"));
        assert!(err(quote!(writable = [])).starts_with("`writable` needs at least one path"));
        assert_eq!(
            err(quote!(writable = ["a", "a"])),
            "`writable` path \"a\" is given twice"
        );
        assert_eq!(
            err(quote!(writable = "a", writable = "b")),
            "duplicate ns_test option `writable`"
        );
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        assert!(err(quote!(net = true)).contains("`net` takes no value"));
        assert!(err(quote!(pid(x))).contains("`pid` takes no value"));
        assert!(err(quote!(time = "+1x")).contains("invalid `time` offset: unknown unit `x`"));
        assert!(err(quote!(time = 5)).contains("`time` takes a string literal"));
        assert!(err(quote!(time)).contains("`time` needs a value: `time = \"+1h30m\"`"));
        assert!(err(quote!(hostname = "a b")).contains("invalid hostname"));
        assert!(err(quote!(hostname = "")).contains("invalid hostname"));
        let long = "a".repeat(65);
        assert!(err(quote!(hostname = #long)).contains("invalid hostname"));
        assert!(parse(quote!(hostname = "a-b.c")).is_ok());
        assert!(err(quote!(timeout = "0s")).contains("longer than zero"));
        assert!(err(quote!(wall = "+1x")).starts_with("invalid `wall`: unknown unit `x`"));
        assert!(err(quote!(wall = "2038-02-30T00:00:00Z")).contains("has no day 30"));
        assert!(err(quote!(wall = 5)).contains("`wall` takes a string literal"));
        assert!(err(quote!(timeout = "-1m")).contains("longer than zero"));
        assert!(err(quote!(flavor = "many")).contains("invalid `flavor`"));
        assert!(err(quote!(worker_threads = 0)).contains("greater than zero"));
        assert!(err(quote!(worker_threads = "2")).contains("takes a number"));
        assert!(err(quote!(worker_threads)).contains("needs a value"));
    }

    #[test]
    fn limits_take_a_count_a_size_or_a_duration() {
        let options = parse(quote!(pids = 32, memory = "64M", disk = "8K", cpu = "1m")).unwrap();
        assert_eq!(options.pids.unwrap().value, 32);
        assert_eq!(options.memory.unwrap().value, 64 << 20);
        assert_eq!(options.disk.unwrap().value, 8 << 10);
        assert_eq!(options.cpu.unwrap().value, 60);
        assert!(err(quote!(pids = 0)).contains("invalid `pids`: expected a number of tasks"));
        assert!(err(quote!(pids = 99999999999)).contains("invalid `pids`"));
        assert!(err(quote!(pids = "32")).contains("`pids` takes a number"));
        assert!(err(quote!(memory = "64 MB")).contains("invalid `memory`: `64 MB` is not a size"));
        assert!(err(quote!(memory = "0M")).contains("greater than zero"));
        assert!(err(quote!(memory = 64)).contains("`memory` takes a string literal"));
        assert!(err(quote!(disk = "lots")).contains("invalid `disk`: `lots` is not a size"));
        assert!(err(quote!(cpu = "0s")).contains("invalid `cpu`: cpu time `0s` must be longer"));
        assert_eq!(
            err(quote!(pids = 1, pids = 2)),
            "duplicate ns_test option `pids`"
        );
        assert_eq!(
            err(quote!(memory = "1M", memory = "2M")),
            "duplicate ns_test option `memory`"
        );
    }

    #[test]
    fn unknown_and_repeated_options_are_named() {
        assert!(
            err(quote!(nett))
                .starts_with("unknown ns_test option `nett`; expected one of: user, net,")
        );
        assert!(err(quote!(a::b)).starts_with("unknown ns_test option `a::b`;"));
        assert!(err(quote!(::net)).starts_with("unknown ns_test option `::net`;"));
        assert_eq!(err(quote!(net, net)), "duplicate ns_test option `net`");
        assert_eq!(
            err(quote!(timeout = "1s", timeout = "2s")),
            "duplicate ns_test option `timeout`"
        );
    }

    #[test]
    fn every_option_the_error_lists_is_accepted() {
        let listed = expected();
        for shown in listed.split(", ") {
            let attr: TokenStream = match shown.split_once(" = ") {
                Some(("flavor", _)) => quote!(flavor = "multi_thread"),
                Some(("worker_threads", _)) => quote!(worker_threads = 2),
                Some(("hostname", _)) => quote!(hostname = "h"),
                Some(("writable", _)) => quote!(writable = "w"),
                Some(("wall", _)) => quote!(wall = "2038-01-19T03:14:00Z"),
                Some(("pids", _)) => quote!(pids = 32),
                Some(("memory", _)) => quote!(memory = "64M"),
                Some(("disk", _)) => quote!(disk = "8M"),
                Some((name, _)) => format!("{name} = \"1h\"").parse().unwrap(),
                None => shown.parse().unwrap(),
            };
            let result = parse(attr);
            assert!(result.is_ok(), "{shown}: {:?}", result.err());
        }
        assert_eq!(listed.split(", ").count(), Kind::ALL.len() + SETTINGS.len());
        assert!(listed.contains("timeout = \"...\""));
    }

    #[test]
    fn every_error_is_reported_not_only_the_first() {
        let errors = all_errors(quote!(bogus, time = "x", net, net));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("unknown ns_test option `bogus`"));
        assert!(errors[1].starts_with("invalid `time` offset: unknown unit `x` in `x`"));
        assert_eq!(errors[2], "duplicate ns_test option `net`");
    }

    #[test]
    fn a_value_that_fails_is_skipped_so_the_next_option_is_checked() {
        let errors = all_errors(quote!(worker_threads = many threads, pid = 1, uts));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("takes a number"), "{errors:?}");
        assert!(errors[1].contains("`pid` takes no value"), "{errors:?}");
        let errors = all_errors(quote!(net(a, b), bogus));
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn a_list_syn_cannot_read_keeps_the_errors_before_it() {
        let errors = all_errors(quote!(bogus, net mount));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("`bogus`"), "{errors:?}");
        assert!(
            errors[1].starts_with("expected `,`: the options are a comma-separated list"),
            "{errors:?}"
        );
    }
}
