use venomqa::sqlite::SqliteSession;
use venomqa::{venom_test, Session};

#[venom_test]
fn no_parameter() {}

#[venom_test(backend = "sqlite")]
fn typed_session(db: &mut SqliteSession) {
    let _ = db.conn();
}

#[venom_test(backend = "memory", url = "memory://")]
fn any_backend(s: &mut Session) -> Result<(), venomqa::Error> {
    s.create_checkpoint("a")
}

#[venom_test(config = "sqlite_file")]
#[ignore = "compile-only"]
#[should_panic]
fn other_attributes_are_kept() {}

mod renamed {
    use ::venomqa as vq;
    #[vq::venom_test(crate = "vq")]
    pub fn with_crate_path(_s: &mut vq::Session) {}
}

// Outside a test build the functions stay plain functions, so they type-check here.
fn main() {
    let _ = (no_parameter, typed_session, any_backend, other_attributes_are_kept, renamed::with_crate_path);
}
