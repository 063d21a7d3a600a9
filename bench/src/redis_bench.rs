//! Redis (written next).
pub fn run(_r: &mut crate::report::Report, _url: &str, _quick: bool) {}
