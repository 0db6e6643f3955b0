//! The LLVM profile runtime of an instrumented binary (`-C instrument-coverage`), reached
//! through weak references, so that forked test processes write their own counts.
//!
//! Runs in: the runner (whether the runtime is linked), the fork server (stops writing)
//! and test processes (reset, name and write their profile).
#![allow(unsafe_code)]

// The LLVM profile runtime (`-C instrument-coverage`, as cargo-llvm-cov and tarpaulin's
// llvm engine build), reached through weak references so that a binary without it links
// and finds nothing. Its symbols are hidden, so `dlsym(3)` never finds them, and
// `cfg(coverage)` is set only for the user's own workspace, never for nstest as a
// dependency; a weak undefined symbol, which the static linker resolves to the runtime's
// definition when it is linked in and to 0 otherwise, is what is left, and stable Rust
// can only spell it in assembly. Each pointer lives in `.data.rel.ro`, which the dynamic
// linker may relocate and then makes read-only.
#[cfg(target_pointer_width = "64")]
macro_rules! profile_runtime_pointers {
    ($($name:literal),*) => {
        core::arch::global_asm!(
            $(concat!(".weak ", $name),)*
            ".pushsection .data.rel.ro.nstest_llvm_profile,\"aw\"",
            ".balign 8",
            $(
                concat!(".globl nstest_ptr", $name),
                concat!(".hidden nstest_ptr", $name),
                concat!("nstest_ptr", $name, ":"),
                concat!(".quad ", $name),
            )*
            ".popsection",
        );
    };
}
#[cfg(target_pointer_width = "32")]
macro_rules! profile_runtime_pointers {
    ($($name:literal),*) => {
        core::arch::global_asm!(
            $(concat!(".weak ", $name),)*
            ".pushsection .data.rel.ro.nstest_llvm_profile,\"aw\"",
            ".balign 4",
            $(
                concat!(".globl nstest_ptr", $name),
                concat!(".hidden nstest_ptr", $name),
                concat!("nstest_ptr", $name, ":"),
                concat!(".long ", $name),
            )*
            ".popsection",
        );
    };
}
profile_runtime_pointers!(
    "__llvm_profile_write_file",
    "__llvm_profile_reset_counters",
    "__llvm_profile_set_dumped",
    "__llvm_profile_set_filename",
    "__llvm_profile_is_continuous_mode_enabled"
);

// SAFETY (of the declarations): each static is a pointer-sized word defined by the
// assembly above, holding either 0 or the address of the runtime function of that name,
// whose C signature (compiler-rt's `InstrProfiling.h`) is the one written here; `Option`
// of an `extern "C" fn` has the layout of a nullable pointer.
unsafe extern "C" {
    #[link_name = "nstest_ptr__llvm_profile_write_file"]
    static PROFILE_WRITE_FILE: Option<unsafe extern "C" fn() -> libc::c_int>;
    #[link_name = "nstest_ptr__llvm_profile_reset_counters"]
    static PROFILE_RESET_COUNTERS: Option<unsafe extern "C" fn()>;
    #[link_name = "nstest_ptr__llvm_profile_set_dumped"]
    static PROFILE_SET_DUMPED: Option<unsafe extern "C" fn()>;
    #[link_name = "nstest_ptr__llvm_profile_set_filename"]
    static PROFILE_SET_FILENAME: Option<unsafe extern "C" fn(*const libc::c_char)>;
    #[link_name = "nstest_ptr__llvm_profile_is_continuous_mode_enabled"]
    static PROFILE_IS_CONTINUOUS: Option<unsafe extern "C" fn() -> libc::c_int>;
}

/// Whether the binary was built with `-C instrument-coverage`: the LLVM profile runtime's
/// writer is linked in. One load of a word; false costs nothing more.
pub(crate) fn profiler_linked() -> bool {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    unsafe { PROFILE_WRITE_FILE }.is_some()
}

/// `__llvm_profile_is_continuous_mode_enabled()`: whether the counters are mapped onto the
/// profile file (`%c` in `LLVM_PROFILE_FILE`), so every process that shares the mapping,
/// forked children too, counts straight into the file. False without the runtime.
pub(crate) fn profile_is_continuous() -> bool {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    let Some(call) = (unsafe { PROFILE_IS_CONTINUOUS }) else {
        return false;
    };
    // SAFETY: the runtime's function, taking nothing and reading its own state.
    unsafe { call() != 0 }
}

/// `__llvm_profile_reset_counters()`: zeroes every counter this process inherited, and
/// clears the "already written" mark of [`profile_set_dumped`], so that this process
/// counts only what it runs from here on and writes it at its end. No-op without the
/// runtime. Never call it in continuous mode: the counters are then the file's pages.
pub(crate) fn profile_reset_counters() {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    if let Some(call) = unsafe { PROFILE_RESET_COUNTERS } {
        // SAFETY: the runtime's function; it writes only the counter sections of this
        // process, and the caller is single-threaded (rule 1), so nothing counts meanwhile.
        unsafe { call() }
    }
}

/// `__llvm_profile_set_dumped()`: marks the profile as written, so that neither
/// [`profile_write_file`] nor the runtime's `atexit` handler writes this process's counts.
/// No-op without the runtime.
pub(crate) fn profile_set_dumped() {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    if let Some(call) = unsafe { PROFILE_SET_DUMPED } {
        // SAFETY: the runtime's function; it sets one flag of its own.
        unsafe { call() }
    }
}

/// `__llvm_profile_set_filename(pattern)`: the file pattern (`%p`, `%m`, ... as in
/// `LLVM_PROFILE_FILE`) this process writes with from now on. The runtime copies it.
/// No-op without the runtime.
pub(crate) fn profile_set_filename(pattern: &std::ffi::CStr) {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    if let Some(call) = unsafe { PROFILE_SET_FILENAME } {
        // SAFETY: `pattern` is a NUL-terminated string that outlives the call (rule 2);
        // the runtime parses it and keeps its own copy (`strdup`), not the pointer.
        unsafe { call(pattern.as_ptr()) }
    }
}

/// `__llvm_profile_write_file()`: writes (or, with `%m`, merges under a file lock) this
/// process's counters into its profile file, as the runtime's `atexit` handler would;
/// `_exit(2)` skips that handler. Returns the runtime's status, 0 on success (on failure
/// it has printed `LLVM Profile Error: ...` with the file and `strerror` to stderr).
/// `None` without the runtime.
pub(crate) fn profile_write_file() -> Option<libc::c_int> {
    // SAFETY: a read of a word the linker initialised and nothing ever writes.
    let call = unsafe { PROFILE_WRITE_FILE }?;
    // SAFETY: the runtime's function; it allocates on the stack, opens, locks and writes
    // the profile file, and the caller is single-threaded or at least not racing it.
    Some(unsafe { call() })
}
