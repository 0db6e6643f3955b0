//! Runs in: the test process. The panic message of a test, named after the test as libtest
//! names it.
//!
//! std's default panic hook starts its message with the name of the thread that panicked:
//! `thread 'main' (7) panicked at src/lib.rs:3:5:`. A test runs on its process's main
//! thread (see `test_process::run` for why), so [`print_as`] lets the default hook write into
//! a memory file instead of stderr, puts the test's name where `'main'` is in that first
//! line, and writes the text to stderr. The rest (message, backtrace, notes) stays exactly
//! what the toolchain that built the test prints.

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
        let _ = std::io::stderr().write_all(&rename(&text, name));
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
    use super::rename;

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
