use venomqa::venom_test;

#[venom_test]
fn takes_a_string(s: &mut String) {
    s.push('x');
}

fn main() {}
