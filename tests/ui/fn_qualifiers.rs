use nstest::ns_test;

#[ns_test]
unsafe fn unsafe_test() {}

#[ns_test]
const fn const_test() {}

#[ns_test]
extern "C" fn extern_test() {}

nstest::main!();
