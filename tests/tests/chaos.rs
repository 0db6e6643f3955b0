//! Seeded chaos, packet capture and per-host clocks as a user meets them: `fixture_chaos`
//! run one test at a time, and what the runner printed (its failure section in every
//! output format) and left on disk checked.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use support::{Run, run};

const BIN: &str = env!("CARGO_BIN_EXE_fixture_chaos");

/// Runs one fixture test by its exact name, with `args` after and `envs`.
fn one(test: &str, args: &[&str], envs: &[(&str, String)]) -> Run {
    let mut all = vec![test, "--exact"];
    all.extend_from_slice(args);
    run(BIN, &all, envs)
}

/// The values of `fixture: <key> <value>` lines, in order.
fn values(r: &Run, key: &str) -> Vec<String> {
    let prefix = format!("fixture: {key} ");
    r.stdout
        .lines()
        .filter_map(|l| l.split_once(&prefix).map(|(_, v)| v.to_owned()))
        .collect()
}

fn listed(seed: Option<&str>, env_seed: Option<&str>) -> (String, Vec<String>) {
    let mut envs = Vec::new();
    if let Some(seed) = seed {
        envs.push(("FIXTURE_SEED", seed.to_owned()));
    }
    if let Some(seed) = env_seed {
        envs.push(("NSTEST_SEED", seed.to_owned()));
    }
    let r = one("schedule_is_listed", &["--nocapture"], &envs);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let events = values(&r, "event");
    assert_eq!(events.len(), 8, "{}", r.dump());
    (values(&r, "seed")[0].clone(), events)
}

#[test]
fn a_seed_replays_its_schedule_and_nstest_seed_overrides_it() {
    let (seed, first) = listed(Some("424242"), None);
    assert_eq!(seed, "424242");
    assert!(first[0].starts_with("+10ms "), "{first:#?}");
    let (_, again) = listed(Some("424242"), None);
    assert_eq!(first, again, "the same seed, the same events");

    let (other_seed, other) = listed(Some("5"), None);
    assert_eq!(other_seed, "5");
    assert_ne!(first, other, "another seed, other events");

    // NSTEST_SEED wins over the seed in code: seed 5 in code, 424242 from outside.
    let (seed, replayed) = listed(Some("5"), Some("424242"));
    assert_eq!(seed, "424242");
    assert_eq!(replayed, first);
}

#[test]
fn partitions_lose_some_datagrams_and_stop_heals_the_network() {
    let r = one(
        "partitions_cut_traffic_and_stop_heals",
        &["--nocapture"],
        &[],
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
}

/// The failure section's text for each output format, from a run of a failing test.
fn failure_sections(test: &str, envs: &[(&str, String)]) -> BTreeMap<&'static str, Run> {
    let formats: [(&str, &[&str]); 4] = [
        ("pretty", &[]),
        ("terse", &["--format", "terse"]),
        ("json", &["--format", "json", "-Z", "unstable-options"]),
        ("junit", &["--format", "junit", "-Z", "unstable-options"]),
    ];
    formats
        .into_iter()
        .map(|(name, args)| {
            // libtest takes `-Z unstable-options` only from a nightly, or with this.
            let mut envs = envs.to_vec();
            envs.push(("RUSTC_BOOTSTRAP", "1".into()));
            let r = one(test, args, &envs);
            assert_eq!(r.code, Some(101), "{name}: {}", r.dump());
            (name, r)
        })
        .collect()
}

#[test]
fn a_failing_test_names_its_seed_and_the_replay_line_in_every_format() {
    for (format, r) in failure_sections("chaos_then_fails", &[("FIXTURE_SEED", "424242".into())]) {
        let line = "chaos seed 424242: replay with NSTEST_SEED=424242 cargo test -- --exact \
                    chaos_then_fails";
        // JSON escapes nothing in this line; JUnit's XML neither.
        assert!(r.stdout.contains(line), "{format}: {}", r.dump());
    }
    // Replayed from the environment, the line names the seed that ran.
    let r = one("chaos_then_fails", &[], &[("NSTEST_SEED", "99".into())]);
    assert!(
        r.stdout
            .contains("chaos seed 99: replay with NSTEST_SEED=99 cargo test -- --exact"),
        "{}",
        r.dump()
    );
    // A passing test says nothing about its seed.
    let r = one("chaos_passes", &[], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(!r.stdout.contains("chaos seed"), "{}", r.dump());
}

/// A pcapng file as its interfaces' names and its packets' (interface, bytes), read
/// without any library: the section header's byte-order magic, then blocks of type,
/// length, body, length.
fn read_pcapng(file: &[u8]) -> (Vec<String>, Vec<(u32, Vec<u8>)>) {
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(word(file, 0), 0x0a0d_0d0a, "a section header first");
    assert_eq!(word(file, 8), 0x1a2b_3c4d, "little-endian byte-order magic");
    let (mut names, mut packets) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at + 12 <= file.len() {
        let (kind, len) = (word(file, at), word(file, at + 4) as usize);
        assert!(len >= 12 && at + len <= file.len(), "a whole block at {at}");
        assert_eq!(word(file, at + len - 4) as usize, len);
        let body = &file[at + 8..at + len - 4];
        match kind {
            1 => {
                // Options after linktype (2), reserved (2), snaplen (4); if_name is 2.
                let mut o = 8;
                while o + 4 <= body.len() {
                    let code = u16::from_le_bytes([body[o], body[o + 1]]);
                    let olen = usize::from(u16::from_le_bytes([body[o + 2], body[o + 3]]));
                    if code == 2 {
                        names.push(String::from_utf8(body[o + 4..o + 4 + olen].to_vec()).unwrap());
                    }
                    if code == 0 {
                        break;
                    }
                    o += 4 + olen.next_multiple_of(4);
                }
            }
            6 => {
                let captured = word(body, 12) as usize;
                packets.push((word(body, 0), body[20..20 + captured].to_vec()));
            }
            _ => {}
        }
        at += len;
    }
    (names, packets)
}

/// The path the failure section names for the capture.
fn kept_capture(r: &Run) -> String {
    let (_, rest) = r
        .stdout
        .split_once("nstest: packets captured in ")
        .unwrap_or_else(|| panic!("no capture named:\n{}", r.dump()));
    // The path runs up to the note in parentheses: it may itself hold spaces (a checkout
    // in `/tmp/my clone`).
    rest.split_once(" (kept because").unwrap().0.to_owned()
}

fn check_capture(test: &str, payload: &[u8]) {
    let r = one(test, &[], &[]);
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let path = kept_capture(&r);
    assert!(Path::new(&path).is_absolute(), "{path}");
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}\n{}", r.dump()));
    let (names, packets) = read_pcapng(&file);
    assert_eq!(names, ["a", "b"], "one interface per host, named after it");
    let holding = |iface: u32| {
        packets
            .iter()
            .any(|(i, p)| *i == iface && p.windows(payload.len()).any(|w| w == payload))
    };
    assert!(holding(0), "a sent the payload: {} packets", packets.len());
    assert!(
        holding(1),
        "b received the payload: {} packets",
        packets.len()
    );
    let dir = Path::new(&path).parent().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    // `nstest-capture` itself, unless another kept capture is in it.
    let _ = std::fs::remove_dir(dir.parent().unwrap());
}

#[test]
fn a_failing_test_keeps_its_capture_and_names_it() {
    check_capture("capture_then_fails", b"nstest-capture-payload-failing");
}

#[test]
fn a_capture_outlives_a_test_with_a_read_only_view_of_the_host() {
    check_capture(
        "capture_then_fails_with_mount",
        b"nstest-capture-payload-mount",
    );
}

#[test]
fn a_capture_stops_at_its_cap_and_the_failure_says_so() {
    // 50 datagrams make some 17 KB of pcapng: the cap of 4000 bytes is reached mid-way.
    let r = one(
        "capture_many_then_fails",
        &[],
        &[("NSTEST_CAPTURE_LIMIT", "4000".into())],
    );
    assert_eq!(r.code, Some(101), "{}", r.dump());
    let path = kept_capture(&r);
    assert!(
        r.stdout.contains(&format!(
            "nstest: the capture {path} stopped at its cap of 4000 bytes"
        )),
        "{}",
        r.dump()
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!((1000..=4000).contains(&size), "{size} bytes");
    let dir = Path::new(&path).parent().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    let _ = std::fs::remove_dir(dir.parent().unwrap());
}

#[test]
fn a_passing_test_s_capture_is_removed() {
    let r = one("capture_passes", &["--nocapture"], &[]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
    let path = values(&r, "capture")[0].clone();
    assert!(!Path::new(&path).exists(), "{path} was left");
    assert!(
        !Path::new(&path).parent().unwrap().exists(),
        "its directory was left"
    );
    assert!(!r.stdout.contains("packets captured"), "{}", r.dump());
}

#[test]
fn a_host_s_clock_shifts_what_its_commands_see() {
    for test in [
        "host_clocks",
        "host_clocks_on_a_shifted_test",
        "host_clocks_with_mount_and_pid",
    ] {
        let r = one(test, &["--nocapture"], &[]);
        assert_eq!(r.code, Some(0), "{test}: {}", r.dump());
    }
}
