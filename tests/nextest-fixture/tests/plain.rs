#[test]
fn plain_passes() {}
