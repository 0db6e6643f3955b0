//! Where the runner may make cgroups: for each controller, its own cgroup in the v1
//! hierarchy of that controller (this project's CI hosts), else a cgroup2 directory whose
//! controllers it may hand to children of its own.

/// A controller nstest puts a test's tree under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Pids,
    Memory,
}

impl Controller {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Pids => "pids",
            Controller::Memory => "memory",
        }
    }
}

/// Which cgroup version a directory belongs to: the control files are named differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// A directory under which nstest makes the run's cgroups, for one controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    pub(crate) controller: Controller,
    pub(crate) version: Version,
    pub(crate) dir: String,
}

/// What [`find`] reads of the host, so that it can be tested without one.
pub(crate) struct Host<'a> {
    /// `/proc/self/mountinfo`.
    pub(crate) mountinfo: &'a str,
    /// `/proc/self/cgroup`.
    pub(crate) cgroups: &'a str,
    /// `NSTEST_CGROUP`: an empty cgroup2 directory delegated to the user, for the run.
    pub(crate) given: Option<&'a str>,
    /// The runner runs as root.
    pub(crate) root: bool,
    /// Whether the caller may write into a directory.
    pub(crate) writable: &'a dyn Fn(&str) -> bool,
    /// `cgroup.controllers` of a cgroup2 directory: the controllers its parent hands it.
    pub(crate) controllers: &'a dyn Fn(&str) -> String,
}

/// For each of `pids` and `memory`: the runner's own cgroup in that controller's v1
/// hierarchy if it may write there; else `NSTEST_CGROUP`, or for root the cgroup2 root,
/// if that controller is available there and the directory writable. The cgroup2 root may
/// hold processes and still hand controllers to its children; any other cgroup2 directory
/// must hold none (the "no internal processes" rule, cgroups(7)), which is why a runner
/// that shares its cgroup with cargo cannot use its own, and `NSTEST_CGROUP` names one.
pub(crate) fn find(host: &Host<'_>) -> Vec<Hierarchy> {
    let v2 = host
        .given
        .map(|dir| dir.trim_end_matches('/').to_owned())
        .or_else(|| host.root.then(|| v2_root(host.mountinfo)).flatten());
    [Controller::Pids, Controller::Memory]
        .into_iter()
        .filter_map(|controller| {
            if let Some(dir) = v1_dir(host.mountinfo, host.cgroups, controller.name()) {
                if (host.writable)(&dir) {
                    return Some(Hierarchy {
                        controller,
                        version: Version::V1,
                        dir,
                    });
                }
            }
            let dir = v2.clone()?;
            let handed = (host.controllers)(&dir)
                .split_whitespace()
                .any(|name| name == controller.name());
            (handed && (host.writable)(&dir)).then_some(Hierarchy {
                controller,
                version: Version::V2,
                dir,
            })
        })
        .collect()
}

/// The calling process's cgroup directory in the v1 hierarchy of `controller`, from
/// mountinfo(5) (mount root, mount point, `cgroup` type, super options naming the
/// controller) and `/proc/self/cgroup` (`id:controllers:path`, cgroups(7)).
pub(crate) fn v1_dir(mountinfo: &str, cgroups: &str, controller: &str) -> Option<String> {
    let (root, point) = mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        let mut rest = rest.split(' ');
        let (fstype, _source, options) = (rest.next()?, rest.next()?, rest.next()?);
        let named = options.split(',').any(|option| option == controller);
        let fields: Vec<&str> = fields.split(' ').collect();
        (fstype == "cgroup" && named).then(|| (fields.get(3).copied(), fields.get(4).copied()))
    })?;
    let (root, point) = (root?, point?);
    let path = cgroups.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
        names
            .split(',')
            .any(|name| name == controller)
            .then_some(path)
    })?;
    let inside = path
        .strip_prefix(root.trim_end_matches('/'))
        .unwrap_or(path);
    Some(format!("{point}{}", inside.trim_end_matches('/')))
}

/// The mount point of the cgroup2 hierarchy mounted at its root.
fn v2_root(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        let fields: Vec<&str> = fields.split(' ').collect();
        (rest.starts_with("cgroup2 ") && fields.get(3) == Some(&"/"))
            .then(|| fields.get(4).map(|point| (*point).to_owned()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    const UNIFIED: &str = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";

    #[test]
    fn a_v1_directory_is_the_mount_point_and_the_cgroup_path() {
        let cgroups = "8:pids:/\n4:memory:/process_api/f06a\n0::/\n";
        assert_eq!(
            v1_dir(HYBRID, cgroups, "pids").as_deref(),
            Some("/sys/fs/cgroup/pids")
        );
        assert_eq!(
            v1_dir(HYBRID, cgroups, "memory").as_deref(),
            Some("/sys/fs/cgroup/memory/process_api/f06a")
        );
        assert_eq!(v1_dir(HYBRID, cgroups, "cpu"), None);
        // A hierarchy mounted at a cgroup of its own (a container's view).
        let nested = "39 31 0:36 /docker/ab /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids\n";
        assert_eq!(
            v1_dir(nested, "8:pids:/docker/ab/x\n", "pids").as_deref(),
            Some("/sys/fs/cgroup/pids/x")
        );
    }

    fn found(
        mountinfo: &str,
        given: Option<&str>,
        root: bool,
        writable: &dyn Fn(&str) -> bool,
        controllers: &dyn Fn(&str) -> String,
    ) -> Vec<(Controller, Version, String)> {
        let host = Host {
            mountinfo,
            cgroups: "8:pids:/\n4:memory:/m\n0::/user.slice/x.scope\n",
            given,
            root,
            writable,
            controllers,
        };
        find(&host)
            .into_iter()
            .map(|h| (h.controller, h.version, h.dir))
            .collect()
    }

    #[test]
    fn v1_where_writable_else_cgroup2_where_its_controllers_are_handed_down() {
        let all = |_: &str| true;
        let none = |_: &str| false;
        let both = |_: &str| "cpu memory pids".to_owned();
        let empty = |_: &str| String::new();
        // This project's CI host as root: v1 for both.
        assert_eq!(
            found(HYBRID, None, true, &all, &empty),
            [
                (Controller::Pids, Version::V1, "/sys/fs/cgroup/pids".into()),
                (
                    Controller::Memory,
                    Version::V1,
                    "/sys/fs/cgroup/memory/m".into()
                ),
            ]
        );
        // An ordinary user there: nothing (the empty cgroup2 hands down no controller).
        assert_eq!(found(HYBRID, None, false, &none, &empty), []);
        // Root on a cgroup2 host: its root.
        assert_eq!(
            found(UNIFIED, None, true, &all, &both),
            [
                (Controller::Pids, Version::V2, "/sys/fs/cgroup".into()),
                (Controller::Memory, Version::V2, "/sys/fs/cgroup".into()),
            ]
        );
        // An ordinary user on a cgroup2 host: only what NSTEST_CGROUP names.
        assert_eq!(found(UNIFIED, None, false, &all, &both), []);
        let given = "/sys/fs/cgroup/user.slice/user@1000.service/nstest.slice/";
        let pids_only = |_: &str| "pids".to_owned();
        assert_eq!(
            found(UNIFIED, Some(given), false, &all, &pids_only),
            [(
                Controller::Pids,
                Version::V2,
                given.trim_end_matches('/').into()
            )]
        );
        assert_eq!(found(UNIFIED, Some(given), false, &none, &both), []);
    }
}
