use venomqa::venom_test;

#[venom_test(bakend = "sqlite")]
fn typo() {}

fn main() {}
