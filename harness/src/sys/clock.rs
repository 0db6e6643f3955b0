//! The wall clock of a test process: the C library's wall-clock functions defined again in
//! the test binary, so that every caller linked into it (std's `SystemTime::now()`, chrono,
//! the `time` crate, rustls, C code) reads them through here, shifted by this process's
//! offset, and forwarded to the C library's own.
//!
//! The kernel has no per-namespace CLOCK_REALTIME (time_namespaces(7)), so the shift is
//! made where the clock is read. A `#[no_mangle]` function of the executable wins over the
//! shared C library's symbol of the same name, for the executable's own calls (std's
//! included: it reaches the clock through libc) and for every shared library's (the
//! executable comes first in the dynamic linker's search order). The C library's own
//! internal callers do not go through the symbol, which is why `time(2)`,
//! `gettimeofday(2)` and `timespec_get(3)` are defined here too, not only
//! `clock_gettime(2)`; `clock_nanosleep(2)` is, so that a sleep until a wall-clock instant
//! lasts as long as it should.
//!
//! Shifted: `CLOCK_REALTIME`, `CLOCK_REALTIME_COARSE`, `CLOCK_REALTIME_ALARM` and
//! `CLOCK_TAI` (the wall clock, read coarsely, as alarms read it, and with the leap
//! seconds counted: each is CLOCK_REALTIME plus a constant). Never shifted: the monotonic,
//! boot-time and CPU-time clocks (a time namespace moves the first two), and dynamic clock
//! ids (negative, such as a PTP device's).
//!
//! Only with the GNU C library, dynamically linked, on a 64-bit target (`cfg(nstest_wall)`,
//! set by build.rs): there the executable's definition takes precedence over
//! `libc.so.6`'s, and `dlsym(RTLD_NEXT)` finds the next one: the C library's, or the
//! preload shim's in a program that a test with `wall` started, which then adds its
//! offset. A static musl binary would get two definitions of one symbol, and a 32-bit
//! glibc target reads the clock through `__clock_gettime64` instead.
//!
//! # Safety
//!
//! This file keeps the rules of `sys` and these:
//!
//! 1. The interposers have the C library's exact signatures (clock_gettime(2),
//!    gettimeofday(2), time(2), timespec_get(3), clock_nanosleep(2)) and its contracts: the real function is
//!    called with the caller's arguments, and its result is changed in place only when
//!    the call succeeded and the pointer is not null.
//! 2. Once the real functions are known (rule 3) they are async-signal-safe, as the
//!    originals are: an atomic load, a call through a pointer, integer arithmetic. They
//!    never allocate, lock or panic (arithmetic saturates or wraps), so they may be called
//!    after `fork()` in a multithreaded process, in a signal handler, and from within the
//!    allocator.
//! 3. The real functions are looked up with `dlsym(RTLD_NEXT, ...)` the first time each
//!    is needed, which nstest's runner does before it forks anything or starts a thread
//!    (see [`resolve_real_clocks`]); in a binary that never starts nstest's runner, the
//!    first clock read does it, as glibc's own lazy binding would. Where one is not found,
//!    the interposer makes the system call itself (`syscall(SYS_clock_gettime)`), which
//!    gives the same answer without the vDSO's speed. A pointer once stored is never
//!    changed, and is only ever the next definition of that C function, with the signature
//!    named by its type: the C library's, or the preload shim's (`shim/wall.c`) in a
//!    program that a test with `wall` started.
//! 4. The offset is one `AtomicI64` of nanoseconds, zero unless a test set it; it is read
//!    with `Relaxed` ordering (a clock read orders nothing else), and written only by
//!    `sandbox::wall` in a test process.
//! 5. [`publish_env`] accesses the C library's `environ` pointer only atomically, and never
//!    frees an environment array or string: the ones it makes are leaked, and glibc frees
//!    only arrays it allocated itself (stdlib/setenv.c, `last_environ`), never one it did
//!    not make.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicUsize, Ordering};

use libc::{clockid_t, time_t, timespec, timeval};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Nanoseconds added to the true wall clock in this process. Zero everywhere but in a test
/// process whose test asked for a wall clock, or moved it.
static OFFSET_NS: AtomicI64 = AtomicI64::new(0);

/// The offset of this process's wall clock from the true one, in nanoseconds.
pub(crate) fn wall_offset_ns() -> i64 {
    OFFSET_NS.load(Ordering::Relaxed)
}

/// Moves this process's wall clock: from now on every thread reads the true wall clock
/// plus `offset_ns` (an NTP step: at once, and for every reader).
pub(crate) fn set_wall_offset_ns(offset_ns: i64) {
    OFFSET_NS.store(offset_ns, Ordering::Relaxed);
}

/// The true wall clock (CLOCK_REALTIME, never shifted), in nanoseconds since the epoch.
pub(crate) fn true_wall_ns() -> i128 {
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // CLOCK_REALTIME exists on every Linux; the call cannot fail with a valid pointer.
    let _ = real_clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    i128::from(ts.tv_sec) * i128::from(NANOS_PER_SEC) + i128::from(ts.tv_nsec)
}

/// Looks up the C library's clock functions, so that no later call has to: the runner
/// calls it once, before it forks anything, and every process of the run inherits them.
pub(crate) fn resolve_real_clocks() {
    for real in [
        &REAL_CLOCK_GETTIME,
        &REAL_GETTIMEOFDAY,
        &REAL_TIME,
        &REAL_TIMESPEC_GET,
        &REAL_CLOCK_NANOSLEEP,
    ] {
        real.get();
    }
}

unsafe extern "C" {
    /// The process's environment: a null-terminated array of `NAME=value` strings, which
    /// `getenv(3)`, `setenv(3)` and std read and replace through this one pointer.
    static mut environ: *mut *mut c_char;
}

/// Sets each `(name, value)` in the environment that programs started later inherit,
/// safely while other threads run: the environment is copied into a new array with the
/// changes, and the new array published with one atomic store of `environ`. Nothing is
/// ever freed (a few hundred bytes per call), so a thread that read the old pointer, in
/// `getenv` or in std's `Command::spawn`, goes on reading valid memory, and sees the
/// environment before the change or after it, never between.
///
/// `std::env::set_var` cannot give this: glibc's `setenv` reallocates, and so frees, the
/// array it made before when it adds a name, under a lock that `getenv` does not take.
/// A `setenv` from another thread at the same moment may still lose this change, or this
/// one its: two writers race, as they do with std's own `set_var`.
pub(crate) fn publish_env(changes: &[(&str, &std::ffi::OsStr)]) {
    use std::os::unix::ffi::OsStrExt;
    // Taking the address reads nothing.
    let address = &raw mut environ;
    // SAFETY: `environ` is aligned and lives as long as the process; it is read and written
    // here only atomically (rule 5).
    let published = unsafe { AtomicPtr::from_ptr(address) };
    let current = published.load(Ordering::Acquire);
    let mut entries: Vec<*mut c_char> = Vec::new();
    let mut at = current;
    while !at.is_null() {
        // SAFETY: `at` walks the null-terminated array `environ` points to, which is never
        // freed while this reads it (rule 5).
        let entry = unsafe { *at };
        if entry.is_null() {
            break;
        }
        // SAFETY: each entry is a NUL-terminated `NAME=value` string (environ(7)).
        let text = unsafe { CStr::from_ptr(entry) }.to_bytes();
        let changed = changes.iter().any(|(name, _)| {
            text.len() > name.len() && text.starts_with(name.as_bytes()) && text[name.len()] == b'='
        });
        if !changed {
            entries.push(entry);
        }
        // SAFETY: the array goes on at least up to its null terminator, not yet reached.
        at = unsafe { at.add(1) };
    }
    for (name, value) in changes {
        let mut text = Vec::with_capacity(name.len() + value.len() + 1);
        text.extend_from_slice(name.as_bytes());
        text.push(b'=');
        text.extend_from_slice(value.as_bytes());
        let text = std::ffi::CString::new(text).unwrap_or_default();
        entries.push(text.into_raw());
    }
    entries.push(std::ptr::null_mut());
    let array = Box::leak(entries.into_boxed_slice()).as_mut_ptr();
    published.store(array, Ordering::Release);
}

/// Where a real function's address is kept once looked up: 0 until then.
struct Real {
    name: &'static CStr,
    address: AtomicUsize,
}

impl Real {
    const fn new(name: &'static CStr) -> Real {
        Real {
            name,
            address: AtomicUsize::new(0),
        }
    }

    /// The next definition of the function (the C library's), or 0 while none is found.
    fn get(&self) -> usize {
        let known = self.address.load(Ordering::Relaxed);
        if known != 0 {
            return known;
        }
        // SAFETY: `RTLD_NEXT` asks for the next definition after the object this code is
        // in, the executable: the C library's or the preload shim's, of the same C
        // signature (rule 3); `name` is a NUL-terminated string. dlsym reads no clock, so
        // it cannot come back here.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) } as usize;
        if found != 0 {
            self.address.store(found, Ordering::Relaxed);
        }
        found
    }
}

static REAL_CLOCK_GETTIME: Real = Real::new(c"clock_gettime");
static REAL_GETTIMEOFDAY: Real = Real::new(c"gettimeofday");
static REAL_TIME: Real = Real::new(c"time");
static REAL_TIMESPEC_GET: Real = Real::new(c"timespec_get");
static REAL_CLOCK_NANOSLEEP: Real = Real::new(c"clock_nanosleep");

type ClockGettime = unsafe extern "C" fn(clockid_t, *mut timespec) -> c_int;
type Gettimeofday = unsafe extern "C" fn(*mut timeval, *mut c_void) -> c_int;
type Time = unsafe extern "C" fn(*mut time_t) -> time_t;
type TimespecGet = unsafe extern "C" fn(*mut timespec, c_int) -> c_int;
type ClockNanosleep =
    unsafe extern "C" fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int;

/// The C library's clock_gettime, or the system call where it is not found yet.
fn real_clock_gettime(clock: clockid_t, ts: *mut timespec) -> c_int {
    match REAL_CLOCK_GETTIME.get() {
        0 => {
            // SAFETY: the system call's arguments are clock_gettime(2)'s, passed on as the
            // caller gave them; the kernel checks the pointer (EFAULT).
            let r = unsafe { libc::syscall(libc::SYS_clock_gettime, clock, ts) };
            r as c_int
        }
        address => {
            // SAFETY: the address is the next `clock_gettime` (rule 3), whose type is
            // `ClockGettime`.
            let real: ClockGettime = unsafe { std::mem::transmute::<usize, ClockGettime>(address) };
            // SAFETY: the arguments are the caller's, passed on unchanged (rule 1).
            unsafe { real(clock, ts) }
        }
    }
}

/// Whether `clock` reads the wall clock: CLOCK_REALTIME and the clocks that are it plus a
/// constant.
fn is_wall_clock(clock: clockid_t) -> bool {
    matches!(
        clock,
        libc::CLOCK_REALTIME
            | libc::CLOCK_REALTIME_COARSE
            | libc::CLOCK_REALTIME_ALARM
            | libc::CLOCK_TAI
    )
}

/// `ts` moved by `offset_ns`, its nanoseconds kept in `0..1e9`; saturating at the ends of
/// `time_t` (rule 2: no panic).
fn shifted(ts: timespec, offset_ns: i64) -> timespec {
    let nanos = ts.tv_nsec + offset_ns.rem_euclid(NANOS_PER_SEC);
    let secs = offset_ns.div_euclid(NANOS_PER_SEC) + nanos.div_euclid(NANOS_PER_SEC);
    timespec {
        tv_sec: ts.tv_sec.saturating_add(secs),
        tv_nsec: nanos.rem_euclid(NANOS_PER_SEC),
    }
}

/// clock_gettime(2) (<https://man7.org/linux/man-pages/man2/clock_gettime.2.html>), with
/// the wall clocks shifted by this process's offset.
///
/// # Safety
///
/// clock_gettime(2)'s: `ts` is null or points to a writable `timespec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_gettime(clock: clockid_t, ts: *mut timespec) -> c_int {
    let result = real_clock_gettime(clock, ts);
    let offset = OFFSET_NS.load(Ordering::Relaxed);
    if offset != 0 && result == 0 && !ts.is_null() && is_wall_clock(clock) {
        // SAFETY: the real call succeeded, so `ts` points to the `timespec` it wrote.
        let read = unsafe { &mut *ts };
        *read = shifted(*read, offset);
    }
    result
}

/// gettimeofday(2) (<https://man7.org/linux/man-pages/man2/gettimeofday.2.html>), shifted
/// by this process's offset. glibc's own does not call `clock_gettime` through its symbol,
/// so it needs its own.
///
/// # Safety
///
/// gettimeofday(2)'s: `tv` and `tz` are null or point to writable structures.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, tz: *mut c_void) -> c_int {
    let offset = OFFSET_NS.load(Ordering::Relaxed);
    let address = REAL_GETTIMEOFDAY.get();
    if offset == 0 && address != 0 {
        // SAFETY: the C library's `gettimeofday` (rule 3), with the caller's arguments.
        let real = unsafe { std::mem::transmute::<usize, Gettimeofday>(address) };
        // SAFETY: the arguments are the caller's, passed on unchanged (rule 1).
        return unsafe { real(tv, tz) };
    }
    if !tz.is_null() {
        // The time zone argument is obsolete; Linux reports zeros there unless `settimeofday`
        // set it, and glibc's own fills it the same way from the kernel.
        // SAFETY: a writable `struct timezone` by the caller's contract.
        let r =
            unsafe { libc::syscall(libc::SYS_gettimeofday, std::ptr::null_mut::<c_void>(), tz) };
        if r != 0 {
            return r as c_int;
        }
    }
    if tv.is_null() {
        return 0;
    }
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let result = real_clock_gettime(libc::CLOCK_REALTIME, &mut ts);
    if result != 0 {
        return result;
    }
    let ts = shifted(ts, offset);
    // SAFETY: `tv` is not null, and writable by the caller's contract.
    unsafe {
        *tv = timeval {
            tv_sec: ts.tv_sec,
            tv_usec: ts.tv_nsec / 1000,
        };
    }
    0
}

/// time(2) (<https://man7.org/linux/man-pages/man2/time.2.html>), shifted by this process's
/// offset: the whole seconds of the shifted CLOCK_REALTIME, so that it agrees with
/// `clock_gettime` read at the same moment.
///
/// # Safety
///
/// time(2)'s: `out` is null or points to a writable `time_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn time(out: *mut time_t) -> time_t {
    let offset = OFFSET_NS.load(Ordering::Relaxed);
    let address = REAL_TIME.get();
    if offset == 0 && address != 0 {
        // SAFETY: the C library's `time` (rule 3).
        let real = unsafe { std::mem::transmute::<usize, Time>(address) };
        // SAFETY: the argument is the caller's, passed on unchanged (rule 1).
        return unsafe { real(out) };
    }
    let mut ts = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if real_clock_gettime(libc::CLOCK_REALTIME, &mut ts) != 0 {
        return -1;
    }
    let secs = shifted(ts, offset).tv_sec;
    if !out.is_null() {
        // SAFETY: not null, and writable by the caller's contract.
        unsafe { *out = secs };
    }
    secs
}

/// timespec_get(3) (<https://man7.org/linux/man-pages/man3/timespec_get.3.html>), C11's
/// wall clock, shifted by this process's offset for `TIME_UTC`.
///
/// # Safety
///
/// timespec_get(3)'s: `ts` points to a writable `timespec`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn timespec_get(ts: *mut timespec, base: c_int) -> c_int {
    const TIME_UTC: c_int = 1;
    let offset = OFFSET_NS.load(Ordering::Relaxed);
    let address = REAL_TIMESPEC_GET.get();
    if (offset == 0 || base != TIME_UTC) && address != 0 {
        // SAFETY: the C library's `timespec_get` (rule 3).
        let real = unsafe { std::mem::transmute::<usize, TimespecGet>(address) };
        // SAFETY: the arguments are the caller's, passed on unchanged (rule 1).
        return unsafe { real(ts, base) };
    }
    if base != TIME_UTC || ts.is_null() {
        return 0;
    }
    // SAFETY: writable by the caller's contract; the function of this file above.
    if unsafe { clock_gettime(libc::CLOCK_REALTIME, ts) } != 0 {
        return 0;
    }
    base
}

/// clock_nanosleep(2) (<https://man7.org/linux/man-pages/man2/clock_nanosleep.2.html>): a
/// sleep until an instant of a wall clock (`TIMER_ABSTIME`) is measured by the kernel
/// against the true clock, so the instant, read on the shifted clock, is moved back by
/// the offset first. Relative sleeps and other clocks pass through unchanged.
///
/// # Safety
///
/// clock_nanosleep(2)'s: `until` points to a valid `timespec`, `left` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    until: *const timespec,
    left: *mut timespec,
) -> c_int {
    let offset = OFFSET_NS.load(Ordering::Relaxed);
    let true_until;
    let until = if offset != 0
        && flags & libc::TIMER_ABSTIME != 0
        && is_wall_clock(clock)
        && !until.is_null()
    {
        // SAFETY: not null, and valid by the caller's contract.
        true_until = shifted(unsafe { *until }, offset.saturating_neg());
        &true_until as *const timespec
    } else {
        until
    };
    match REAL_CLOCK_NANOSLEEP.get() {
        // Without the C library's, the system call: it returns the error number as
        // clock_nanosleep(3) does, negated in the C library's convention for `syscall`.
        0 => {
            // SAFETY: clock_nanosleep(2)'s arguments, the caller's or a copy on this stack
            // that outlives the call.
            let r = unsafe { libc::syscall(libc::SYS_clock_nanosleep, clock, flags, until, left) };
            if r == 0 {
                0
            } else {
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EINVAL)
            }
        }
        address => {
            // SAFETY: the C library's `clock_nanosleep` (rule 3).
            let real = unsafe { std::mem::transmute::<usize, ClockNanosleep>(address) };
            // SAFETY: the caller's arguments, or a copy of `until` on this stack that
            // outlives the call (rule 1).
            unsafe { real(clock, flags, until, left) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(tv_sec: i64, tv_nsec: i64) -> timespec {
        timespec { tv_sec, tv_nsec }
    }

    fn pair(t: timespec) -> (i64, i64) {
        (t.tv_sec, t.tv_nsec)
    }

    #[test]
    fn shifting_keeps_nanoseconds_in_range_both_ways() {
        assert_eq!(pair(shifted(ts(10, 500), 0)), (10, 500));
        assert_eq!(pair(shifted(ts(10, 999_999_999), 1)), (11, 0));
        assert_eq!(pair(shifted(ts(10, 0), -1)), (9, 999_999_999));
        assert_eq!(pair(shifted(ts(10, 5), -1_500_000_000)), (8, 500_000_005));
        assert_eq!(
            pair(shifted(ts(10, 5), 86_400 * NANOS_PER_SEC)),
            (86_410, 5)
        );
        assert_eq!(pair(shifted(ts(i64::MAX, 0), NANOS_PER_SEC)).0, i64::MAX);
    }

    #[test]
    fn only_the_wall_clocks_are_shifted() {
        assert!(is_wall_clock(libc::CLOCK_REALTIME));
        assert!(is_wall_clock(libc::CLOCK_REALTIME_COARSE));
        assert!(is_wall_clock(libc::CLOCK_TAI));
        assert!(!is_wall_clock(libc::CLOCK_MONOTONIC));
        assert!(!is_wall_clock(libc::CLOCK_BOOTTIME));
        assert!(!is_wall_clock(libc::CLOCK_PROCESS_CPUTIME_ID));
        assert!(!is_wall_clock(-3));
    }
}
