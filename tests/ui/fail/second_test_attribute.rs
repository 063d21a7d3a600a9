use venomqa::venom_test;

#[venom_test]
#[test]
fn doubled() {}

fn main() {}
