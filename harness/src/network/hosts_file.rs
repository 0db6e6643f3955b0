//! The test's private `/etc/hosts`, written by the test process, listing every host of
//! every `Network` of the test.
//!
//! Only in a test with a mount namespace of its own (whose `/tmp` is then its own tmpfs): a
//! file in that tmpfs holding the host's `/etc/hosts` plus one line per address is
//! bind-mounted over `/etc/hosts`, then unlinked (the mount keeps it), and rewritten as
//! hosts are added. The resolvers of glibc and musl re-read the file on every lookup, so a
//! name resolves as soon as `Network::host` has returned, and the test's `/tmp` stays as
//! empty as it was. Neither a memfd nor an `O_TMPFILE` file: mount(2) refuses to bind from
//! a kernel-internal mount (EINVAL) or a file without a name (ENOENT).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::Mode;

use super::error::Error;

struct HostsFile {
    file: OwnedFd,
    text: String,
}

/// `None` until the first host is listed.
static HOSTS: Mutex<Option<HostsFile>> = Mutex::new(None);

/// Lists `name` with both addresses, mounting the private file on first use.
///
/// # Errors
///
/// open, write, mount or unlink, by name.
pub(super) fn add(name: &str, v4: Ipv4Addr, v6: Ipv6Addr) -> Result<(), Error> {
    let sys = |call: &str| {
        let call = call.to_owned();
        move |source| Error::Sys { call, source }
    };
    let mut guard = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# hosts of nstest::Network, in this test only\n");
        let source = format!("/tmp/.nstest-hosts-{}", std::process::id());
        let file = open(
            source.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(sys(&format!(
            "open({source:?}, O_CREAT|O_EXCL|O_RDWR, 0644)"
        )))?;
        write_all(&file, &text)?;
        let mounted = mount(
            Some(source.as_str()),
            "/etc/hosts",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(&format!(
            "mount({source:?}, \"/etc/hosts\", \"\", MS_BIND, \"\")"
        )));
        let unlinked =
            nix::unistd::unlink(source.as_str()).map_err(sys(&format!("unlink({source:?})")));
        mounted?;
        unlinked?;
        *guard = Some(HostsFile { file, text });
    }
    let file = guard.as_mut().expect("set above");
    file.text.push_str(&format!("{v4}\t{name}\n{v6}\t{name}\n"));
    write_all(&file.file, &file.text)
}

fn write_all(fd: &OwnedFd, text: &str) -> Result<(), Error> {
    let mut at = 0;
    while at < text.len() {
        match crate::sys::retry_on_eintr(|| {
            nix::sys::uio::pwrite(fd.as_fd(), &text.as_bytes()[at..], at as i64)
        }) {
            Ok(n) => at += n,
            Err(source) => {
                return Err(Error::Sys {
                    call: "pwrite(the test's /etc/hosts)".into(),
                    source,
                });
            }
        }
    }
    Ok(())
}
