use nstest::ns_test;

#[ns_test]
fn generic<T: Default>() {
    let _ = T::default();
}

nstest::main!();
