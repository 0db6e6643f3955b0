//! The `#[ns_test]` attribute of [nstest](https://docs.rs/nstest). Use it through
//! `nstest::ns_test`; this crate is an implementation detail pinned by `nstest`.
//!
//! The entry point is a shim: parsing (`args`) and code generation (`expand`) are plain
//! functions on `proc_macro2::TokenStream`, unit-tested without a compiler.
#![deny(unsafe_code)]

mod args;
mod duration;
mod expand;

/// Runs the function as a hermetic test in fresh Linux namespaces. See `nstest`.
#[proc_macro_attribute]
pub fn ns_test(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::ns_test(attr.into(), item.into()).into()
}
