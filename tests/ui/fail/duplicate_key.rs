use venomqa::venom_test;

#[venom_test(backend = "sqlite", backend = "mysql")]
fn twice() {}

fn main() {}
