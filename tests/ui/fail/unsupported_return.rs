use venomqa::venom_test;

#[venom_test]
fn returns_a_number() -> u32 {
    7
}

#[venom_test]
fn returns_impl_trait() -> impl std::process::Termination {}

fn main() {}
