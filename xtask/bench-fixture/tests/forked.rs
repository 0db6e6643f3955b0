// rusty-fork's macros call each other unqualified, so they need #[macro_use].
#[macro_use]
extern crate rusty_fork;

include!(concat!(env!("OUT_DIR"), "/forked.rs"));
