use venomqa::venom_test;

#[venom_test]
struct NotATest;

fn main() {}
