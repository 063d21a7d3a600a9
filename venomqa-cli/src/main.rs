//! `venomqa report [path]`: prints the totals of a venomqa cost report, isolation time
//! against test time, and the 10 slowest tests with what dominated each. The path
//! defaults to `$VENOMQA_REPORT`.
//!
//! `venomqa capture reset <entry>`: removes what capture installed for an entry of
//! `venomqa.yaml` (found from the current directory up), leaving the data as it is.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(venomqa_cli::run(&args))
}
