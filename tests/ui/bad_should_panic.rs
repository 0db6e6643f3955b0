use nstest::ns_test;

#[ns_test]
#[should_panic(message = "boom")]
fn unknown_key() {
    panic!("boom");
}

#[ns_test]
#[should_panic = 42]
fn not_a_string() {
    panic!("42");
}

#[ns_test]
#[should_panic]
#[should_panic(expected = "boom")]
fn twice() {
    panic!("boom");
}

nstest::main!();
