//! Stage 1, the item: the function under `#[ns_test]`, with the test attributes it
//! carries (`#[ignore]`, `#[should_panic]`, a leftover `#[test]`) read and taken off.
//!
//! They are taken off because on a function that is not a `#[test]` rustc would warn that
//! they do nothing; the registration carries their meaning instead.

use syn::{Attribute, ItemFn, LitStr};

use crate::errors::Errors;

/// The function, ready to be emitted as written minus its test attributes.
pub(crate) struct TestFn {
    /// The function without `#[ignore]`, `#[should_panic]` and `#[test]`.
    pub(crate) function: ItemFn,
    /// `#[ignore]` or `#[ignore = "reason"]`, as written (libtest's harness gets it as is).
    pub(crate) ignore: Option<Attribute>,
    /// The reason of `#[ignore = "reason"]`, which libtest prints as `ignored, reason`.
    pub(crate) ignore_reason: Option<LitStr>,
    pub(crate) should_panic: Option<ShouldPanicAttr>,
    /// A `#[test]` left on the function, which `valid` rejects.
    pub(crate) test_attr: Option<Attribute>,
}

/// `#[should_panic]`, with the message it expects if it names one.
pub(crate) struct ShouldPanicAttr {
    /// The attribute itself, for errors to point at.
    pub(crate) attr: Attribute,
    /// `Some` for `#[should_panic = "text"]` and `#[should_panic(expected = "text")]`.
    pub(crate) expected: Option<LitStr>,
}

impl TestFn {
    /// Takes the test attributes off `function`; a malformed one is pushed to `errors`
    /// and otherwise left out.
    pub(crate) fn from_item(mut function: ItemFn, errors: &mut Errors) -> TestFn {
        let mut ignore = None;
        let mut ignore_reason = None;
        let mut should_panic = None;
        let mut test_attr = None;
        function.attrs.retain(|attr| {
            let path = attr.path();
            if path.is_ident("ignore") {
                if let syn::Meta::NameValue(syn::MetaNameValue {
                    value:
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(reason),
                            ..
                        }),
                    ..
                }) = &attr.meta
                {
                    ignore_reason = Some(reason.clone());
                }
                ignore = Some(attr.clone());
            } else if path.is_ident("should_panic") {
                if should_panic.is_some() {
                    errors.push(syn::Error::new_spanned(
                        attr,
                        "duplicate #[should_panic]: give it once",
                    ));
                } else {
                    match parse_should_panic(attr) {
                        Ok(expected) => {
                            should_panic = Some(ShouldPanicAttr {
                                attr: attr.clone(),
                                expected,
                            });
                        }
                        Err(e) => errors.push(e),
                    }
                }
            } else if path.is_ident("test") {
                test_attr = Some(attr.clone());
            } else {
                return true;
            }
            false
        });
        TestFn {
            function,
            ignore,
            ignore_reason,
            should_panic,
            test_attr,
        }
    }
}

/// `#[should_panic]`, `#[should_panic = "text"]`, `#[should_panic(expected = "text")]`.
fn parse_should_panic(attr: &Attribute) -> syn::Result<Option<LitStr>> {
    let usage = "expected `#[should_panic]`, `#[should_panic = \"text\"]` or \
                 `#[should_panic(expected = \"text\")]`";
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

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn read(item: proc_macro2::TokenStream) -> (TestFn, syn::Result<()>) {
        let mut errors = Errors::default();
        let test = TestFn::from_item(syn::parse2(item).unwrap(), &mut errors);
        (test, errors.finish(Ok(())))
    }

    fn expected(test: &TestFn) -> Option<String> {
        let should_panic = test.should_panic.as_ref().expect("#[should_panic]");
        should_panic.expected.as_ref().map(LitStr::value)
    }

    #[test]
    fn test_attributes_are_read_and_taken_off_others_kept() {
        let (test, result) = read(quote!(
            #[inline]
            #[ignore = "slow"]
            #[should_panic(expected = "boom")]
            #[test]
            fn t() {}
        ));
        assert!(result.is_ok());
        assert!(test.ignore.is_some() && test.test_attr.is_some());
        assert_eq!(expected(&test).as_deref(), Some("boom"));
        assert_eq!(test.function.attrs.len(), 1);
        assert!(test.function.attrs[0].path().is_ident("inline"));
    }

    #[test]
    fn every_should_panic_form_is_read() {
        let (test, _) = read(quote!(
            #[should_panic]
            fn t() {}
        ));
        assert_eq!(expected(&test), None);
        let (test, _) = read(quote!(
            #[should_panic = "text"]
            fn t() {}
        ));
        assert_eq!(expected(&test).as_deref(), Some("text"));
        let (test, _) = read(quote!(
            #[ignore]
            fn t() {}
        ));
        assert!(test.ignore.is_some() && test.should_panic.is_none() && test.test_attr.is_none());
    }

    #[test]
    fn a_malformed_or_repeated_should_panic_is_an_error() {
        for item in [
            quote!(
                #[should_panic(message = "x")]
                fn t() {}
            ),
            quote!(
                #[should_panic = 3]
                fn t() {}
            ),
            quote!(
                #[should_panic(expected = "a", expected = "b")]
                fn t() {}
            ),
        ] {
            let (test, result) = read(item);
            let error = result.unwrap_err().to_string();
            assert!(error.starts_with("expected `#[should_panic]`"), "{error}");
            assert!(test.function.attrs.is_empty());
        }
        let (test, result) = read(quote!(
            #[should_panic]
            #[should_panic = "b"]
            fn t() {}
        ));
        assert_eq!(
            result.unwrap_err().to_string(),
            "duplicate #[should_panic]: give it once"
        );
        assert_eq!(expected(&test), None);
    }
}
