use nstest::ns_test;

include!(concat!(env!("OUT_DIR"), "/scale.rs"));

nstest::main!();
