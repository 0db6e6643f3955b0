//! Every diagnostic of one expansion, gathered across the stages so the user sees all of
//! them at once rather than one per compile.

/// The errors found so far, combined into one `syn::Error` (which holds many).
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds `error` after the ones already found.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `value`, unless an error was found: then every error, the ones found here first.
    ///
    /// # Errors
    ///
    /// When `value` is an error or any error was pushed.
    pub(crate) fn finish<T>(self, value: syn::Result<T>) -> syn::Result<T> {
        match (value, self.0) {
            (Ok(value), None) => Ok(value),
            (Ok(_), Some(all)) => Err(all),
            (Err(mut first), rest) => {
                first.extend(rest);
                Err(first)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn error(text: &str) -> syn::Error {
        syn::Error::new(Span::call_site(), text)
    }

    fn messages(result: syn::Result<u8>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn a_value_passes_only_when_nothing_was_found() {
        assert_eq!(Errors::default().finish(Ok(1)).unwrap(), 1);
        let mut errors = Errors::default();
        errors.push(error("a"));
        assert_eq!(messages(errors.finish(Ok(1))), ["a"]);
    }

    #[test]
    fn every_error_is_kept_the_value_error_first() {
        let mut errors = Errors::default();
        errors.push(error("a"));
        errors.push(error("b"));
        assert_eq!(messages(errors.finish(Err(error("c")))), ["c", "a", "b"]);
    }
}
