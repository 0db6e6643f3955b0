//! The `#[ns_test]` attribute of [nstest](https://docs.rs/nstest). Use it through
//! `nstest::ns_test`; this crate is an implementation detail pinned by `nstest`.
//!
//! The entry point is a shim. The work is plain functions on `proc_macro2::TokenStream`,
//! unit-tested without a compiler, in three stages: `attr` and `ast` read the attribute
//! and the function, `valid` checks them against each other into a final config, and
//! `expand` emits the function and its registration.
#![deny(unsafe_code)]

mod ast;
mod attr;
mod duration;
mod errors;
mod expand;
mod valid;

/// Runs the function as a hermetic test in fresh Linux namespaces. See `nstest`.
#[proc_macro_attribute]
pub fn ns_test(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::ns_test(attr.into(), item.into()).into()
}
