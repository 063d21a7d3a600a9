use venomqa::{venom_test, Session};

#[venom_test]
fn two_parameters(s: &mut Session, extra: u32) {}

#[venom_test]
fn by_value(s: Session) {}

#[venom_test]
fn shared_reference(s: &Session) {}

#[venom_test]
fn generic<T>() {}

#[venom_test]
unsafe fn not_safe() {}

fn main() {}
