//! Session tokens that expire, tested on the wall clock itself: `wall = "..."` starts the
//! test's `SystemTime` where the test needs it, and `nstest::wall::advance` moves it past
//! an expiry, for the code under test as written (it reads `SystemTime::now()`; no clock
//! is passed in) and for the programs the test starts. `Instant` and the host's clock are
//! untouched.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nstest::ns_test;
use nstest_examples::token::{Issuer, LEEWAY, Refused};

const HOUR: Duration = Duration::from_secs(3600);
const KEY: (u64, u64) = (0x5eed, 0xc0ffee);

#[ns_test]
fn a_fresh_token_is_accepted() {
    let issuer = Issuer::new(KEY);
    let token = issuer.issue("ada", HOUR);
    assert_eq!(issuer.verify(&token), Ok("ada"));
}

#[ns_test]
fn a_token_expires_after_its_lifetime_not_before() {
    let issuer = Issuer::new(KEY);
    let token = issuer.issue("ada", HOUR);
    nstest::wall::advance(HOUR - Duration::from_secs(5));
    assert_eq!(issuer.verify(&token), Ok("ada"));
    nstest::wall::advance(Duration::from_secs(65));
    // A minute past its expiry (a second more if the clock ticked over meanwhile).
    match issuer.verify(&token) {
        Err(Refused::Expired { ago }) => assert!(ago.as_secs() == 60 || ago.as_secs() == 61),
        other => panic!("{other:?}"),
    }
}

/// A token issued by a server whose clock runs an hour fast.
#[ns_test]
fn a_token_from_a_clock_that_runs_fast_is_not_yet_valid() {
    let issuer = Issuer::new(KEY);
    let token = issuer.issue("ada", 2 * HOUR);
    // An NTP step puts the clock back by an hour, as when this server's clock was fixed.
    nstest::wall::set(SystemTime::now() - HOUR);
    assert_eq!(issuer.verify(&token), Err(Refused::NotYetValid));
    nstest::wall::advance(HOUR - LEEWAY);
    assert_eq!(issuer.verify(&token), Ok("ada"));
}

/// Past 2038-01-19T03:14:07Z a signed 32-bit `time_t` wraps: tokens issued just before
/// must still expire just after.
#[ns_test(wall = "2038-01-19T02:14:00Z")]
fn tokens_outlive_the_32_bit_clock() {
    let issuer = Issuer::new(KEY);
    let token = issuer.issue("ada", 2 * HOUR);
    nstest::wall::advance(HOUR + Duration::from_secs(60));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now > i32::MAX as u64, "the clock is past 2038: {now}");
    assert_eq!(issuer.verify(&token), Ok("ada"));
    nstest::wall::advance(HOUR);
    assert!(matches!(
        issuer.verify(&token),
        Err(Refused::Expired { .. })
    ));
}

/// A verification service on a thread of the test, asked over TCP: the server reads the
/// same wall clock as the test, so a jump expires the token for it too.
#[ns_test(net, wall = "+30d")]
fn a_verifying_server_sees_the_same_clock() {
    let listener = TcpListener::bind("127.0.0.1:8443").unwrap();
    let server = std::thread::spawn(move || {
        let issuer = Issuer::new(KEY);
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut token = String::new();
            BufReader::new(&stream).read_line(&mut token).unwrap();
            let answer = match issuer.verify(token.trim()) {
                Ok(user) => format!("ok {user}"),
                Err(refused) => format!("refused {refused:?}"),
            };
            writeln!(stream, "{answer}").unwrap();
        }
    });
    let ask = |token: &str| {
        let mut stream = TcpStream::connect("127.0.0.1:8443").unwrap();
        writeln!(stream, "{token}").unwrap();
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).unwrap();
        answer.trim().to_owned()
    };
    let token = Issuer::new(KEY).issue("ada", HOUR);
    assert_eq!(ask(&token), "ok ada");
    nstest::wall::advance(2 * HOUR);
    assert!(ask(&token).starts_with("refused Expired { ago: 360"));
    server.join().unwrap();
}

/// Programs the test starts read the same wall clock: here `date`, as a shell script or a
/// certificate tool would.
#[ns_test(wall = "2038-01-19T03:14:08Z")]
fn programs_the_test_starts_see_its_clock() {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "2038-01-19");
}

nstest::main!();
