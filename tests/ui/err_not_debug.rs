use nstest::ns_test;

struct Opaque;

#[ns_test]
fn fails() -> Result<(), Opaque> {
    Ok(())
}

nstest::main!();
