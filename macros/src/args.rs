//! Parsing `#[ns_test(...)]` into [`Args`], with an error at each offending token.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{LitStr, Token};

use crate::duration;

/// Every key the attribute accepts, as listed in errors.
pub(crate) const KEYS: &str = "user, net, mount, uts, ipc, pid, hostname = \"...\", time = \"...\", \
     boottime = \"...\", monotonic = \"...\", timeout = \"...\", \
     flavor = \"current_thread\"|\"multi_thread\" (async), worker_threads = N (async)";

/// The parsed attribute. (Not `PartialEq`: spans have no equality.)
#[derive(Debug, Default, Clone)]
pub(crate) struct Args {
    /// `user`: only the user namespace (which every test gets).
    pub user: bool,
    pub net: bool,
    pub mount: bool,
    pub uts: bool,
    pub ipc: bool,
    pub pid: bool,
    pub hostname: Option<String>,
    /// Seconds added to CLOCK_MONOTONIC; `Some` when any clock option was given.
    pub monotonic: Option<i64>,
    /// Seconds added to CLOCK_BOOTTIME; `Some` when any clock option was given.
    pub boottime: Option<i64>,
    /// Seconds after which the test and everything it started are killed.
    pub timeout: Option<u64>,
    /// `flavor = "multi_thread"` (async tests); `false` is tokio's default, current_thread.
    pub multi_thread: Option<(bool, proc_macro2::Span)>,
    /// `worker_threads = N` (async tests with the multi_thread flavor).
    pub worker_threads: Option<(usize, proc_macro2::Span)>,
}

impl Args {
    /// Whether the attribute named a namespace kind. If it did not, the test gets the full
    /// hermetic set; settings (`hostname`, clock offsets) add their namespace either way.
    pub(crate) fn names_a_kind(&self) -> bool {
        self.user || self.net || self.mount || self.uts || self.ipc || self.pid
    }

    /// Whether a time namespace is needed.
    pub(crate) fn wants_time(&self) -> bool {
        self.monotonic.is_some() || self.boottime.is_some()
    }
}

/// Where each option was seen, for duplicate and conflict errors.
#[derive(Default)]
struct Seen {
    keys: Vec<String>,
    time: bool,
    per_clock: bool,
}

/// Parses the attribute's arguments; all errors are combined into one.
pub(crate) fn parse(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args::default();
    let mut seen = Seen::default();
    let mut errors: Option<syn::Error> = None;
    let parser = syn::meta::parser(|meta| {
        if let Err(e) = parse_one(&meta, &mut args, &mut seen) {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
            // Skip the value of a key that failed, so the next key is still checked.
            if meta.input.peek(Token![=]) {
                let _ = meta.value().and_then(|v| v.parse::<syn::Expr>());
            }
        }
        Ok(())
    });
    parser.parse2(attr)?;
    match errors {
        Some(e) => Err(e),
        None => Ok(args),
    }
}

fn parse_one(meta: &ParseNestedMeta<'_>, args: &mut Args, seen: &mut Seen) -> syn::Result<()> {
    let Some(ident) = meta.path.get_ident() else {
        return Err(meta.error(format!("unknown ns_test option; expected one of: {KEYS}")));
    };
    let key = ident.to_string();
    if seen.keys.contains(&key) {
        return Err(meta.error(format!("duplicate ns_test option `{key}`")));
    }
    seen.keys.push(key.clone());
    let flag = |field: &mut bool| -> syn::Result<()> {
        if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
            return Err(meta.error(format!("`{key}` takes no value: write `{key}` alone")));
        }
        *field = true;
        Ok(())
    };
    match key.as_str() {
        "user" => flag(&mut args.user),
        "net" => flag(&mut args.net),
        "mount" => flag(&mut args.mount),
        "uts" => flag(&mut args.uts),
        "ipc" => flag(&mut args.ipc),
        "pid" => flag(&mut args.pid),
        "hostname" => {
            let lit = string_value(meta, &key, "\"my-host\"")?;
            args.hostname = Some(check_hostname(&lit)?);
            Ok(())
        }
        "time" => {
            if seen.per_clock {
                return Err(meta.error(
                    "`time` sets both clocks and conflicts with `boottime`/`monotonic`; \
                     use either `time` or the per-clock options",
                ));
            }
            seen.time = true;
            let secs = offset_value(meta, &key)?;
            args.monotonic = Some(secs);
            args.boottime = Some(secs);
            Ok(())
        }
        "boottime" | "monotonic" => {
            if seen.time {
                return Err(meta.error(format!(
                    "`{key}` conflicts with `time`, which already sets both clocks"
                )));
            }
            seen.per_clock = true;
            let secs = offset_value(meta, &key)?;
            if key == "boottime" {
                args.boottime = Some(secs);
                args.monotonic.get_or_insert(0);
            } else {
                args.monotonic = Some(secs);
                args.boottime.get_or_insert(0);
            }
            Ok(())
        }
        "timeout" => {
            let lit = string_value(meta, &key, "\"10s\"")?;
            let secs = duration::parse_timeout(&lit.value())
                .map_err(|why| syn::Error::new(lit.span(), format!("invalid `timeout`: {why}")))?;
            args.timeout = Some(secs);
            Ok(())
        }
        "flavor" => {
            let lit = string_value(meta, &key, "\"multi_thread\"")?;
            let multi = match lit.value().as_str() {
                "current_thread" => false,
                "multi_thread" => true,
                _ => {
                    return Err(syn::Error::new(
                        lit.span(),
                        "invalid `flavor`: expected \"current_thread\" or \"multi_thread\"",
                    ));
                }
            };
            args.multi_thread = Some((multi, lit.span()));
            Ok(())
        }
        "worker_threads" => {
            if !meta.input.peek(Token![=]) {
                return Err(meta.error("`worker_threads` needs a value: `worker_threads = 2`"));
            }
            let lit: syn::LitInt = meta.value()?.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "`worker_threads` takes a number, like `worker_threads = 2`",
                )
            })?;
            match lit.base10_parse::<usize>() {
                Ok(n) if n > 0 => {
                    args.worker_threads = Some((n, lit.span()));
                    Ok(())
                }
                _ => Err(syn::Error::new(
                    lit.span(),
                    "invalid `worker_threads`: expected a number greater than zero",
                )),
            }
        }
        _ => Err(meta.error(format!(
            "unknown ns_test option `{key}`; expected one of: {KEYS}"
        ))),
    }
}

/// `key = "literal"`, or an error at the value saying what to write.
fn string_value(meta: &ParseNestedMeta<'_>, key: &str, example: &str) -> syn::Result<LitStr> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!("`{key}` needs a value: `{key} = {example}`")));
    }
    let value = meta.value()?;
    let expr: syn::Expr = value.parse()?;
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a string literal, like `{key} = {example}`"),
        )),
    }
}

fn offset_value(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<i64> {
    let lit = string_value(meta, key, "\"+1h30m\"")?;
    duration::parse_offset(&lit.value())
        .map_err(|why| syn::Error::new(lit.span(), format!("invalid `{key}` offset: {why}")))
}

/// Hostnames: 1 to 64 bytes (`HOST_NAME_MAX`, sethostname(2)), letters, digits, `-`, `.`.
fn check_hostname(lit: &LitStr) -> syn::Result<String> {
    let name = lit.value();
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(name)
    } else {
        Err(syn::Error::new(
            lit.span(),
            "invalid hostname: expected 1 to 64 ASCII letters, digits, `-` or `.`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn err(attr: TokenStream) -> String {
        parse(attr).unwrap_err().to_string()
    }

    #[test]
    fn empty_means_no_kind_named() {
        let args = parse(quote!()).unwrap();
        assert!(!args.names_a_kind() && !args.wants_time());
    }

    #[test]
    fn kinds_and_settings_parse() {
        let args = parse(quote!(net, mount, hostname = "box", time = "+1h")).unwrap();
        assert!(args.net && args.mount && !args.pid);
        assert_eq!(args.hostname.as_deref(), Some("box"));
        assert_eq!((args.monotonic, args.boottime), (Some(3600), Some(3600)));
        let args = parse(quote!(boottime = "+1d", monotonic = "-30s")).unwrap();
        assert_eq!((args.monotonic, args.boottime), (Some(-30), Some(86_400)));
        let args = parse(quote!(boottime = "5")).unwrap();
        assert_eq!((args.monotonic, args.boottime), (Some(0), Some(5)));
        let args = parse(quote!(net, timeout = "1m")).unwrap();
        assert_eq!(args.timeout, Some(60));
        assert!(!args.wants_time());
    }

    #[test]
    fn bad_input_names_what_is_accepted() {
        assert!(
            err(quote!(nett))
                .contains("unknown ns_test option `nett`; expected one of: user, net,")
        );
        assert_eq!(err(quote!(net, net)), "duplicate ns_test option `net`");
        assert!(err(quote!(net = true)).contains("takes no value"));
        assert!(err(quote!(time = "+1x")).contains("unknown unit `x`"));
        assert!(err(quote!(time = 5)).contains("takes a string literal"));
        assert!(err(quote!(time)).contains("needs a value"));
        assert!(err(quote!(time = "1h", boottime = "1h")).contains("conflicts with `time`"));
        assert!(err(quote!(monotonic = "1h", time = "1h")).contains("conflicts with"));
        assert!(err(quote!(hostname = "a b")).contains("invalid hostname"));
        assert!(err(quote!(timeout = "0s")).contains("longer than zero"));
        assert!(err(quote!(timeout = "-1m")).contains("longer than zero"));
        assert!(err(quote!(a::b)).contains("unknown ns_test option"));
    }

    #[test]
    fn every_key_the_error_lists_is_accepted() {
        for key in KEYS.split(", ") {
            let attr: TokenStream = match key.split_once(" = ") {
                Some(("flavor", _)) => "flavor = \"multi_thread\"".parse().unwrap(),
                Some(("worker_threads", _)) => "worker_threads = 2".parse().unwrap(),
                Some((name, _)) => format!("{name} = \"1h\"").parse().unwrap(),
                None => key.parse().unwrap(),
            };
            let result = parse(attr);
            assert!(
                result.is_ok(),
                "{key}: {:?}",
                result.err().map(|e| e.to_string())
            );
        }
        assert!(KEYS.contains("timeout"));
    }

    #[test]
    fn every_error_is_reported_not_only_the_first() {
        let e = parse(quote!(bogus, time = "x", net, net)).unwrap_err();
        assert_eq!(e.into_iter().count(), 3);
    }
}
