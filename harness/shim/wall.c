/*
 * nstest's wall-clock shim for the programs a test starts (`LD_PRELOAD`).
 *
 * A test with a wall clock of its own shifts it inside its own process by defining the C
 * library's clock functions in the test binary (harness/src/sys/clock.rs). A program the
 * test starts is a new image, which only the dynamic linker can reach: nstest puts this
 * library in `LD_PRELOAD`, and the offset, in nanoseconds from the true wall clock, in
 * `NSTEST_WALL_OFFSET_NS`. Both are inherited by the program's own children.
 *
 * The offset is read once, when the library is loaded: a program keeps the wall clock it
 * started with, as `nstest::wall::advance` in the test moves only programs started after.
 *
 * What this cannot reach: statically linked programs (no dynamic linker: Go binaries,
 * musl static builds), raw system calls, set-user-ID programs (the dynamic linker ignores
 * `LD_PRELOAD` for them), and programs started with a cleared environment.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NANOS_PER_SEC 1000000000LL

static int64_t offset_ns;

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_gettimeofday)(struct timeval *, void *);
static time_t (*real_time)(time_t *);
static int (*real_timespec_get)(struct timespec *, int);
static int (*real_clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);

static int64_t parse_offset(const char *text) {
    int64_t sign = 1, value = 0;
    if (text == NULL) return 0;
    if (*text == '-' || *text == '+') sign = (*text++ == '-') ? -1 : 1;
    if (*text == '\0') return 0;
    for (; *text; text++) {
        if (*text < '0' || *text > '9') return 0;
        if (value > (INT64_MAX - 9) / 10) return 0;
        value = value * 10 + (*text - '0');
    }
    return sign * value;
}

__attribute__((constructor)) static void nstest_wall_init(void) {
    real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    real_gettimeofday = dlsym(RTLD_NEXT, "gettimeofday");
    real_time = dlsym(RTLD_NEXT, "time");
    real_timespec_get = dlsym(RTLD_NEXT, "timespec_get");
    real_clock_nanosleep = dlsym(RTLD_NEXT, "clock_nanosleep");
    offset_ns = parse_offset(getenv("NSTEST_WALL_OFFSET_NS"));
}

/* glibc declares these pointer arguments `nonnull`, yet callers pass null (gettimeofday
 * with only a time zone wanted, a bad clock_gettime that must fail with EFAULT): hiding
 * the pointer from the compiler keeps the checks it would otherwise delete. */
static const void *opaque(const void *pointer) {
    __asm__("" : "+r"(pointer));
    return pointer;
}

static int is_wall_clock(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE ||
           clock == CLOCK_REALTIME_ALARM || clock == CLOCK_TAI;
}

static void shift(struct timespec *ts, int64_t by) {
    int64_t rem = by % NANOS_PER_SEC, secs = by / NANOS_PER_SEC;
    int64_t nanos = (int64_t)ts->tv_nsec + rem;
    if (nanos < 0) { nanos += NANOS_PER_SEC; secs -= 1; }
    if (nanos >= NANOS_PER_SEC) { nanos -= NANOS_PER_SEC; secs += 1; }
    ts->tv_sec += secs;
    ts->tv_nsec = nanos;
}

static int true_clock_gettime(clockid_t clock, struct timespec *ts) {
    if (real_clock_gettime) return real_clock_gettime(clock, ts);
    return (int)syscall(SYS_clock_gettime, clock, ts);
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int result = true_clock_gettime(clock, ts);
    if (offset_ns != 0 && result == 0 && opaque(ts) != NULL && is_wall_clock(clock)) shift(ts, offset_ns);
    return result;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    if (offset_ns == 0 && real_gettimeofday) return real_gettimeofday(tv, tz);
    if (tz != NULL && syscall(SYS_gettimeofday, NULL, tz) != 0) return -1;
    if (opaque(tv) == NULL) return 0;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (offset_ns == 0 && real_time) return real_time(out);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}

int timespec_get(struct timespec *ts, int base) {
    if ((offset_ns == 0 || base != TIME_UTC) && real_timespec_get) return real_timespec_get(ts, base);
    if (base != TIME_UTC || opaque(ts) == NULL || clock_gettime(CLOCK_REALTIME, ts) != 0) return 0;
    return base;
}

/* A sleep until a shifted wall-clock instant: the kernel measures it against the true
 * clock, so the instant is moved back by the offset first. */
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *until, struct timespec *left) {
    struct timespec true_until;
    if (real_clock_nanosleep == NULL) return ENOSYS;
    if (offset_ns == 0 || !(flags & TIMER_ABSTIME) || !is_wall_clock(clock) || opaque(until) == NULL)
        return real_clock_nanosleep(clock, flags, until, left);
    true_until = *until;
    shift(&true_until, -offset_ns);
    return real_clock_nanosleep(clock, flags, &true_until, left);
}
