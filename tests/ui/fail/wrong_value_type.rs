use venomqa::venom_test;

#[venom_test(backend = 42)]
fn number() {}

#[venom_test(backend = mysql)]
fn bare_word() {}

#[venom_test(url = "")]
fn empty() {}

fn main() {}
