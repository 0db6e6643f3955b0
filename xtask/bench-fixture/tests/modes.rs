use nstest::ns_test;

mod user {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/user.rs"));
}
mod net {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/net.rs"));
}
mod full {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full.rs"));
}
mod full_time {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/full_time.rs"));
}

nstest::main!();
