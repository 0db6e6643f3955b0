//! A node's identity in a fleet, derived from its hostname: `web-3` is the fourth web node.

/// Role and index parsed from a hostname of the form `<role>-<index>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The part before the last `-`: `web`, `db-replica`.
    pub role: String,
    /// The number after it.
    pub index: u32,
}

impl NodeIdentity {
    /// Reads the hostname and parses it.
    ///
    /// # Errors
    ///
    /// A message naming the hostname that does not follow `<role>-<index>`.
    pub fn from_hostname() -> Result<NodeIdentity, String> {
        let name = nix::unistd::gethostname().map_err(|e| format!("gethostname: {e}"))?;
        NodeIdentity::parse(&name.to_string_lossy())
    }

    /// Parses `<role>-<index>`.
    ///
    /// # Errors
    ///
    /// A message naming the hostname that does not follow the pattern.
    pub fn parse(hostname: &str) -> Result<NodeIdentity, String> {
        let short = hostname.split('.').next().unwrap_or(hostname);
        let invalid = || format!("hostname `{hostname}` is not of the form <role>-<index>");
        let (role, index) = short.rsplit_once('-').ok_or_else(invalid)?;
        if role.is_empty() {
            return Err(invalid());
        }
        let index = index.parse().map_err(|_| invalid())?;
        Ok(NodeIdentity {
            role: role.to_owned(),
            index,
        })
    }

    /// The shard this node serves among `shards`.
    pub fn shard(&self, shards: u32) -> u32 {
        self.index % shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_role_and_index_and_ignores_the_domain() {
        let id = NodeIdentity::parse("db-replica-12.eu.example").unwrap();
        assert_eq!((id.role.as_str(), id.index), ("db-replica", 12));
        assert_eq!(id.shard(5), 2);
    }

    #[test]
    fn rejects_names_without_role_or_index() {
        for name in ["localhost", "-3", "web-", "web-x", ""] {
            assert!(NodeIdentity::parse(name).is_err(), "{name:?}");
        }
    }
}
