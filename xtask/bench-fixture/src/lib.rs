//! Nothing here: see tests/ and src/bin/floor.rs.
