use venomqa::{venom_test, Session};

#[venom_test]
async fn needs_a_runtime(s: &mut Session) {
    s.create_checkpoint("a").unwrap();
}

fn main() {}
