//! Runs in: the test process. The panic message of a test, named after the test as libtest
//! names it.
//!
//! std's default panic hook starts its message with the name of the thread that panicked:
//! `thread 'main' (7) panicked at src/lib.rs:3:5:`. A test runs on its process's main
//! thread (see `test_process::run` for why), so [`print_as`] lets the default hook write into
//! a memory file instead of stderr, puts the test's name where `'main'` is in that first
//! line, and writes the text to stderr. The rest (message, backtrace, notes) stays what the
//! toolchain that built the test prints, but for the frames of a `RUST_BACKTRACE`
//! backtrace that name functions the macro emitted: they are shown as libtest shows a
//! test's frames (see [`name_frames`]).

use std::io::{Read, Seek, SeekFrom, Write};

use nix::sys::memfd::{MFdFlags, memfd_create};

/// Runs `hook` (the default panic hook) with stderr captured, and prints what it wrote with
/// the thread name replaced by `name`. If stderr cannot be redirected, `hook` prints as is.
///
/// Only the main thread may call this: fd 2 is the process's, so another thread writing to
/// stderr meanwhile has its text printed after the panic message rather than before.
pub(crate) fn print_as(name: &str, hook: impl FnOnce()) {
    let redirected = (|| {
        let file = memfd_create(c"nstest-panic", MFdFlags::MFD_CLOEXEC).ok()?;
        let saved = nix::unistd::dup(std::io::stderr()).ok()?;
        nix::unistd::dup2_stderr(&file).ok()?;
        Some((std::fs::File::from(file), saved))
    })();
    let Some((mut file, saved)) = redirected else {
        return hook();
    };
    hook();
    let restored = nix::unistd::dup2_stderr(&saved).is_ok();
    let mut text = Vec::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut text));
    if restored && read.is_ok() {
        let _ = std::io::stderr().write_all(&rename(&name_frames(&text), name));
    }
}

/// `text` with its backtrace frames named as libtest names a test's: `#[ns_test]` emits the
/// test function as `__nstest_NAME`, called from a function `__nstest_call`, where libtest
/// has the function `NAME` called from a closure. So `crate::__nstest_NAME` becomes
/// `crate::NAME`, and the `__nstest_call` frame below it `crate::NAME::{{closure}}`.
/// Frames of other functions, and text that is not UTF-8, are left as they are.
fn name_frames(text: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(text) else {
        return text.to_vec();
    };
    if !text.contains("__nstest_") {
        return text.as_bytes().to_vec();
    }
    let mut out = String::with_capacity(text.len());
    // The test function's path, as last seen in a frame above.
    let mut test_fn: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let Some(at) = frame_symbol_start(line) else {
            out.push_str(line);
            continue;
        };
        let (head, symbol) = line.split_at(at);
        let (symbol, end) = symbol.split_at(symbol.trim_end().len());
        // `RUST_BACKTRACE=full` ends each symbol with its hash: `::h0123456789abcdef`.
        let (path, hash) = split_hash(symbol);
        out.push_str(head);
        match (path.ends_with("::__nstest_call"), &test_fn) {
            (true, Some(test_fn)) => out.push_str(&format!("{test_fn}::{{{{closure}}}}{hash}")),
            (true, None) => out.push_str(symbol),
            (false, _) if path.contains("__nstest_") => {
                let renamed = path.replace("__nstest_", "");
                let mut base = renamed.as_str();
                while let Some(outer) = base.strip_suffix("::{{closure}}") {
                    base = outer;
                }
                test_fn = Some(base.to_owned());
                out.push_str(&renamed);
                out.push_str(hash);
            }
            _ => out.push_str(symbol),
        }
        out.push_str(end);
    }
    out.into_bytes()
}

/// Where the symbol of a backtrace frame line starts: after `  12: ` (and, with
/// `RUST_BACKTRACE=full`, after `0x55d4c3b5a1f4 - `); `None` for other lines.
fn frame_symbol_start(line: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = &line[indent..];
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let after = rest[digits..].strip_prefix(": ").filter(|_| digits > 0)?;
    let address = after.trim_start_matches(' ');
    if address.starts_with("0x") {
        let symbol = address.find(" - ")? + 3;
        return Some(line.len() - address.len() + symbol);
    }
    Some(indent + digits + 2)
}

/// `symbol` split before a trailing `::h` and 16 hex digits, if it has them.
fn split_hash(symbol: &str) -> (&str, &str) {
    let hashed = symbol.len() > 19
        && symbol.is_char_boundary(symbol.len() - 19)
        && symbol[symbol.len() - 19..].starts_with("::h")
        && symbol[symbol.len() - 16..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    if hashed {
        symbol.split_at(symbol.len() - 19)
    } else {
        (symbol, "")
    }
}

/// `text` with the thread name of its first `thread 'main' ` line replaced by `name`.
/// A process forked before `main` (the fork server under libtest's harness starts in a
/// constructor) has a main thread std has not named yet: `thread '<unnamed>' `. Text
/// without such a line (a toolchain whose format differs) is returned unchanged.
fn rename(text: &[u8], name: &str) -> Vec<u8> {
    let at_line_start = |i: usize| i == 0 || text[i - 1] == b'\n';
    let found = [&b"thread 'main' "[..], b"thread '<unnamed>' "]
        .into_iter()
        .find_map(|pattern| {
            text.windows(pattern.len())
                .enumerate()
                .position(|(i, window)| window == pattern && at_line_start(i))
                .map(|at| (at, pattern.len()))
        });
    let Some((at, len)) = found else {
        return text.to_vec();
    };
    let mut renamed = Vec::with_capacity(text.len() + name.len());
    renamed.extend_from_slice(&text[..at]);
    renamed.extend_from_slice(format!("thread '{name}' ").as_bytes());
    renamed.extend_from_slice(&text[at + len..]);
    renamed
}

#[cfg(test)]
mod tests {
    use super::{name_frames, rename};

    fn framed(text: &str) -> String {
        String::from_utf8(name_frames(text.as_bytes())).unwrap()
    }

    #[test]
    fn frames_of_the_emitted_functions_read_as_libtests() {
        let short = "stack backtrace:\n   0: __rustc::rust_begin_unwind\n             at /r/panicking.rs:1:2\n   2: fixture::__nstest_binds_80\n             at ./tests/x.rs:9:5\n   3: fixture::_::_::__INVENTORY::__nstest_call\n             at ./tests/x.rs:8:4\nnote: Some details are omitted\n";
        assert_eq!(
            framed(short),
            "stack backtrace:\n   0: __rustc::rust_begin_unwind\n             at /r/panicking.rs:1:2\n   2: fixture::binds_80\n             at ./tests/x.rs:9:5\n   3: fixture::binds_80::{{closure}}\n             at ./tests/x.rs:8:4\nnote: Some details are omitted\n"
        );
        // Async: the body is a closure of the function; its caller is the function's.
        let nested =
            "  12: net::__nstest_serves::{{closure}}\n  40: net::serves::TEST::__nstest_call\n";
        assert_eq!(
            framed(nested),
            "  12: net::serves::{{closure}}\n  40: net::serves::{{closure}}\n"
        );
        let full = "   4:     0x55d4c3b5a1f4 - fixture::__nstest_t::h0123456789abcdef\n   5:     0x55d4c3b5a200 - fixture::_::__nstest_call::hfedcba9876543210\n";
        assert_eq!(
            framed(full),
            "   4:     0x55d4c3b5a1f4 - fixture::t::h0123456789abcdef\n   5:     0x55d4c3b5a200 - fixture::t::{{closure}}::hfedcba9876543210\n"
        );
    }

    #[test]
    fn other_text_and_frames_stay_as_they_are() {
        for text in [
            "",
            "boom __nstest_x is not a frame\n",
            "   2: my_crate::helper\n   3: my_crate::_::__nstest_call\n",
            "   1: core::panicking::panic_fmt\n",
        ] {
            assert_eq!(framed(text), text);
        }
    }

    fn renamed(text: &str) -> String {
        String::from_utf8(rename(text.as_bytes(), "net::binds_80")).unwrap()
    }

    #[test]
    fn the_first_thread_line_takes_the_test_name() {
        assert_eq!(
            renamed("\nthread 'main' (7) panicked at src/lib.rs:3:5:\nboom\n"),
            "\nthread 'net::binds_80' (7) panicked at src/lib.rs:3:5:\nboom\n"
        );
        // Older toolchains: no leading newline and no thread id.
        assert_eq!(
            renamed("thread 'main' panicked at src/lib.rs:3:5:\nboom\n"),
            "thread 'net::binds_80' panicked at src/lib.rs:3:5:\nboom\n"
        );
    }

    #[test]
    fn only_a_line_that_starts_with_it_and_only_the_first() {
        let message = "x thread 'main' y\nthread 'main' (1) panicked at a:\nthread 'main' z\n";
        assert_eq!(
            renamed(message),
            "x thread 'main' y\nthread 'net::binds_80' (1) panicked at a:\nthread 'main' z\n"
        );
        assert_eq!(renamed("no thread line\n"), "no thread line\n");
        assert_eq!(
            renamed("\nthread '<unnamed>' (9) panicked at a:\n"),
            "\nthread 'net::binds_80' (9) panicked at a:\n"
        );
        assert_eq!(renamed(""), "");
    }
}
