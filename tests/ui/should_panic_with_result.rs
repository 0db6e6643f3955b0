use nstest::ns_test;

#[ns_test]
#[should_panic]
fn fallible() -> Result<(), String> {
    Ok(())
}

nstest::main!();
