//! libtest's command line, parsed as libtest parses it: the same options through the same
//! `getopts` parser, the same environment variables, and the same refusals (message and
//! exit code) for the options libtest keeps to nightly toolchains.

use std::time::Duration;

/// Whether `#[ignore]` tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunIgnored {
    /// Only the others (the default).
    No,
    /// Both (`--include-ignored`).
    Yes,
    /// Only the ignored ones, as if they were not (`--ignored`).
    Only,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// `--format` (or `-q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Pretty,
    Terse,
    Json,
    Junit,
}

/// `--report-time` / `--ensure-time`: when a test's time is shown in warning or critical
/// colours, and whether the critical time fails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeOptions {
    /// `--ensure-time`: a test that takes `critical` or longer fails.
    pub ensure: bool,
    pub warn: Duration,
    pub critical: Duration,
}

/// Everything the command line and the environment ask of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub list: bool,
    /// Positional filters: a test runs if its name contains any (or equals one, `--exact`).
    pub filters: Vec<String>,
    pub exact: bool,
    pub skip: Vec<String>,
    pub run_ignored: RunIgnored,
    /// `--bench` without `--test`: tests are reported as ignored, as libtest does.
    pub benchmarks_only: bool,
    pub exclude_should_panic: bool,
    pub fail_fast: bool,
    pub nocapture: bool,
    pub show_output: bool,
    pub color: ColorChoice,
    pub format: Format,
    /// The explicit `--test-threads`, else `RUST_TEST_THREADS`; `None`: one per core.
    pub test_threads: Option<usize>,
    pub time: Option<TimeOptions>,
    /// `--shuffle-seed N`, or a seed taken from the clock for `--shuffle`.
    pub shuffle_seed: Option<u64>,
    pub logfile: Option<String>,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    Run(Box<Options>),
    /// `-h`/`--help`: the usage text, to print on stdout before exiting 0.
    Help(String),
}

/// Where a run reads its environment: the process's, or a test's fixed list.
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optflag("", "include-ignored", "Run the #[ignore] tests too")
        .optflag("", "ignored", "Run only the #[ignore] tests")
        .optflag(
            "",
            "force-run-in-process",
            "Accepted for libtest (unstable)",
        )
        .optflag(
            "",
            "exclude-should-panic",
            "Leave out #[should_panic] tests (unstable)",
        )
        .optflag("", "test", "Run tests (with --bench: tests too)")
        .optflag("", "bench", "Run benchmarks only: nstest has none")
        .optflag("", "list", "Print the test names and exit")
        .optflag(
            "",
            "fail-fast",
            "Start no test after the first failure (unstable)",
        )
        .optflag("h", "help", "Print this text")
        .optopt(
            "",
            "logfile",
            "Also write each result to PATH (deprecated)",
            "PATH",
        )
        .optflag("", "no-capture", "Let tests print straight to the terminal")
        .optmulti(
            "",
            "test-threads",
            "How many tests run at once",
            "n_threads",
        )
        .optmulti(
            "",
            "skip",
            "Leave out tests whose names contain FILTER",
            "FILTER",
        )
        .optflag("q", "quiet", "Same as --format=terse")
        .optflag("", "exact", "Filters must equal the whole test name")
        .optmulti("", "color", "Colour the output", "auto|always|never")
        .optopt(
            "",
            "format",
            "How results are printed",
            "pretty|terse|json|junit",
        )
        .optflag("", "show-output", "Print the output of passing tests too")
        .optopt("Z", "", "Allow unstable options", "unstable-options")
        .optflag("", "report-time", "Print each test's time (unstable)")
        .optflag(
            "",
            "ensure-time",
            "Fail tests slower than RUST_TEST_TIME_* (unstable)",
        )
        .optflag("", "shuffle", "Run the tests in a random order (unstable)")
        .optopt(
            "",
            "shuffle-seed",
            "Run them in the order SEED gives (unstable)",
            "SEED",
        );
    o
}

/// Parses `args` (the first is the program) as libtest would.
///
/// # Errors
///
/// libtest's message for the bad argument, for `error: {message}` and exit code 101.
pub(crate) fn parse(args: &[String], env: &dyn Env) -> Result<Parsed, String> {
    let mut opts = options();
    // libtest's old spelling of --no-capture, still accepted and not shown in the help.
    opts.optflag("", "nocapture", "");
    let program = args.first().map_or("test-binary", String::as_str);
    let matches = opts
        .parse(args.get(1..).unwrap_or_default())
        .map_err(|fail| fail.to_string())?;
    if matches.opt_present("h") {
        let brief = format!("Usage: {program} [OPTIONS] [FILTERS...]");
        return Ok(Parsed::Help(format!(
            "{}\n\nFILTERS select the tests whose names contain any of them (with --exact: \
             equal one). Each test runs in its own process inside fresh Linux namespaces; \
             see the nstest README.",
            options().usage(&brief)
        )));
    }

    let unstable = allow_unstable(&matches, env)?;
    let flag = |name: &'static str| -> Result<bool, String> {
        let present = matches.opt_present(name);
        if present && !unstable {
            return Err(format!(
                "The \"{name}\" flag is only accepted on the nightly compiler with -Z unstable-options"
            ));
        }
        Ok(present)
    };
    let _force_run_in_process = flag("force-run-in-process")?;
    let exclude_should_panic = flag("exclude-should-panic")?;
    let fail_fast = flag("fail-fast")?;
    let report_time = flag("report-time")?;
    let ensure_time = flag("ensure-time")?;
    let time = (report_time || ensure_time)
        .then(|| time_thresholds(env, ensure_time))
        .transpose()?;
    let mut shuffle = flag("shuffle")?;
    if !shuffle && unstable {
        shuffle = env.var("RUST_TEST_SHUFFLE").is_some_and(|v| v != "0");
    }
    let seed_arg = matches.opt_str("shuffle-seed");
    if seed_arg.is_some() && !unstable {
        return Err(
            "The \"shuffle-seed\" option is only accepted on the nightly compiler with -Z unstable-options"
                .into(),
        );
    }
    let mut shuffle_seed =
        match seed_arg {
            Some(text) => Some(text.parse::<u64>().map_err(|e| {
                format!("argument for --shuffle-seed must be a number (error: {e})")
            })?),
            None => None,
        };
    if shuffle_seed.is_none() && unstable {
        if let Some(text) = env.var("RUST_TEST_SHUFFLE_SEED") {
            shuffle_seed =
                Some(text.parse().map_err(|_| {
                    format!("RUST_TEST_SHUFFLE_SEED is `{text}`, should be a number.")
                })?);
        }
    }
    if shuffle_seed.is_none() && shuffle {
        shuffle_seed = Some(seed_from_clock());
    }

    let run_ignored = match (
        matches.opt_present("include-ignored"),
        matches.opt_present("ignored"),
    ) {
        (true, true) => {
            return Err(
                "the options --include-ignored and --ignored are mutually exclusive".into(),
            );
        }
        (true, false) => RunIgnored::Yes,
        (false, true) => RunIgnored::Only,
        (false, false) => RunIgnored::No,
    };
    let nocapture = matches.opt_present("nocapture")
        || matches.opt_present("no-capture")
        || env.var("RUST_TEST_NOCAPTURE").is_some_and(|v| v != "0");
    let mut test_threads = None;
    for text in matches.opt_strs("test-threads") {
        test_threads = Some(parse_threads(&text)?);
    }
    let mut color = ColorChoice::Auto;
    for text in matches.opt_strs("color") {
        color = match text.as_str() {
            "auto" => ColorChoice::Auto,
            "always" => ColorChoice::Always,
            "never" => ColorChoice::Never,
            other => {
                return Err(format!(
                    "argument for --color must be auto, always, or never (was {other})"
                ));
            }
        };
    }
    let format = match matches.opt_str("format").as_deref() {
        None if matches.opt_present("quiet") => Format::Terse,
        None | Some("pretty") => Format::Pretty,
        Some("terse") => Format::Terse,
        Some(name @ ("json" | "junit")) => {
            if !unstable {
                return Err(format!(
                    "The \"{name}\" format is only accepted on the nightly compiler with -Z unstable-options"
                ));
            }
            if name == "json" {
                Format::Json
            } else {
                Format::Junit
            }
        }
        Some(other) => {
            return Err(format!(
                "argument for --format must be pretty, terse, json or junit (was {other})"
            ));
        }
    };
    let benchmarks_only = matches.opt_present("bench") && !matches.opt_present("test");
    Ok(Parsed::Run(Box::new(Options {
        list: matches.opt_present("list"),
        filters: matches.free.clone(),
        exact: matches.opt_present("exact"),
        skip: matches.opt_strs("skip"),
        run_ignored,
        benchmarks_only,
        exclude_should_panic,
        fail_fast,
        nocapture,
        show_output: matches.opt_present("show-output"),
        color,
        format,
        test_threads,
        time,
        shuffle_seed,
        logfile: matches.opt_str("logfile"),
    })))
}

/// `-Z unstable-options`, which libtest takes only from a nightly toolchain or with
/// `RUSTC_BOOTSTRAP` set. nstest's tests are built by the user's toolchain and it cannot
/// tell which channel that was, so it behaves as a stable libtest: `RUSTC_BOOTSTRAP` (any
/// value) unlocks the unstable options.
fn allow_unstable(matches: &getopts::Matches, env: &dyn Env) -> Result<bool, String> {
    let Some(value) = matches.opt_str("Z") else {
        return Ok(false);
    };
    if env.var("RUSTC_BOOTSTRAP").is_none() {
        return Err("the option `Z` is only accepted on the nightly compiler".into());
    }
    match value.as_str() {
        "unstable-options" => Ok(true),
        _ => Err("Unrecognized option to `Z`".into()),
    }
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("argument for --test-threads must not be 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!(
            "argument for --test-threads must be a number > 0 (error: {e})"
        )),
    }
}

/// libtest's thresholds for integration tests (the `tests/` directory, where nstest's
/// targets live): `RUST_TEST_TIME_INTEGRATION=WARN_MS,CRITICAL_MS`, else 500 and 1000 ms.
fn time_thresholds(env: &dyn Env, ensure: bool) -> Result<TimeOptions, String> {
    const VAR: &str = "RUST_TEST_TIME_INTEGRATION";
    let (warn, critical) = match env.var(VAR) {
        None => (500, 1000),
        Some(text) => {
            let mut parts = text.splitn(2, ',').map(|part| {
                part.parse::<u64>().map_err(|_| {
                    format!(
                        "Duration value in variable {VAR} is expected to be a number, but got {part}"
                    )
                })
            });
            let malformed = || {
                format!(
                    "Duration variable {VAR} expected to have 2 numbers separated by comma, but got {text}"
                )
            };
            let warn = parts.next().ok_or_else(malformed)??;
            let critical = parts.next().ok_or_else(malformed)??;
            if warn > critical {
                return Err(
                    "Test execution warn time should be less or equal to the critical time".into(),
                );
            }
            (warn, critical)
        }
    };
    Ok(TimeOptions {
        ensure,
        warn: Duration::from_millis(warn),
        critical: Duration::from_millis(critical),
    })
}

/// libtest's seed for `--shuffle` without a seed: the wall clock in nanoseconds.
fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// How many tests run at once: the option, else `RUST_TEST_THREADS`, else one per core.
///
/// # Errors
///
/// libtest's message for a `RUST_TEST_THREADS` that is not a positive number.
pub(crate) fn concurrency(options: &Options, env: &dyn Env) -> Result<usize, String> {
    if let Some(n) = options.test_threads {
        return Ok(n);
    }
    match env.var("RUST_TEST_THREADS") {
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "RUST_TEST_THREADS is `{text}`, should be a positive integer."
            )),
        },
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FixedEnv(HashMap<&'static str, &'static str>);

    impl Env for FixedEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    fn parse_with(line: &str, env: &[(&'static str, &'static str)]) -> Result<Options, String> {
        let args: Vec<String> = std::iter::once("bin")
            .chain(line.split_whitespace())
            .map(str::to_owned)
            .collect();
        match parse(&args, &FixedEnv(env.iter().copied().collect()))? {
            Parsed::Run(options) => Ok(*options),
            Parsed::Help(_) => panic!("help for {line}"),
        }
    }

    #[test]
    fn several_filters_and_skips_are_kept_in_order() {
        let o = parse_with("b --skip x a --exact --skip y", &[]).unwrap();
        assert_eq!(o.filters, ["b", "a"]);
        assert_eq!(o.skip, ["x", "y"]);
        assert!(o.exact);
        assert_eq!(o.format, Format::Pretty);
    }

    #[test]
    fn unstable_options_need_z_and_a_nightly_or_bootstrap() {
        assert_eq!(
            parse_with("--format json", &[]).unwrap_err(),
            "The \"json\" format is only accepted on the nightly compiler with -Z unstable-options"
        );
        assert_eq!(
            parse_with("-Z unstable-options --format json", &[]).unwrap_err(),
            "the option `Z` is only accepted on the nightly compiler"
        );
        assert_eq!(
            parse_with("--report-time", &[("RUSTC_BOOTSTRAP", "1")]).unwrap_err(),
            "The \"report-time\" flag is only accepted on the nightly compiler with -Z unstable-options"
        );
        assert_eq!(
            parse_with("--shuffle-seed 3", &[]).unwrap_err(),
            "The \"shuffle-seed\" option is only accepted on the nightly compiler with -Z unstable-options"
        );
        let o = parse_with(
            "-Zunstable-options --format junit --shuffle-seed 3 --ensure-time",
            &[
                ("RUSTC_BOOTSTRAP", "1"),
                ("RUST_TEST_TIME_INTEGRATION", "5,7"),
            ],
        )
        .unwrap();
        assert_eq!(o.format, Format::Junit);
        assert_eq!(o.shuffle_seed, Some(3));
        assert_eq!(
            o.time,
            Some(TimeOptions {
                ensure: true,
                warn: Duration::from_millis(5),
                critical: Duration::from_millis(7)
            })
        );
    }

    #[test]
    fn bad_arguments_get_libtests_messages() {
        for (line, message) in [
            ("--bogus", "Unrecognized option: 'bogus'"),
            ("--exact --exact", "Option 'exact' given more than once"),
            (
                "--format xml",
                "argument for --format must be pretty, terse, json or junit (was xml)",
            ),
            (
                "--test-threads 0",
                "argument for --test-threads must not be 0",
            ),
            (
                "--color maybe",
                "argument for --color must be auto, always, or never (was maybe)",
            ),
            (
                "--ignored --include-ignored",
                "the options --include-ignored and --ignored are mutually exclusive",
            ),
        ] {
            assert_eq!(parse_with(line, &[]).unwrap_err(), message, "{line}");
        }
    }

    #[test]
    fn quiet_is_terse_unless_a_format_is_given_and_the_last_color_wins() {
        let o = parse_with("-q --color always --color never", &[]).unwrap();
        assert_eq!((o.format, o.color), (Format::Terse, ColorChoice::Never));
        assert_eq!(
            parse_with("-q --format pretty", &[]).unwrap().format,
            Format::Pretty
        );
        assert!(
            parse_with("", &[("RUST_TEST_NOCAPTURE", "1")])
                .unwrap()
                .nocapture
        );
        assert!(
            !parse_with("", &[("RUST_TEST_NOCAPTURE", "0")])
                .unwrap()
                .nocapture
        );
    }
}
