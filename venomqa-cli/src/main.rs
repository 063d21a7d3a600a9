//! `venomqa report [path]`: prints the totals of a venomqa cost report, isolation time
//! against test time, and the 10 slowest tests with what dominated each. The path
//! defaults to `$VENOMQA_REPORT`.
//!
//! `venomqa capture reset <entry>`: removes what capture installed for an entry of
//! `venomqa.yaml` (found from the current directory up), leaving the data as it is.

use std::process::ExitCode;

const USAGE: &str = "usage: venomqa report [path]   (path defaults to $VENOMQA_REPORT; write one with VENOMQA_REPORT=/abs/path cargo test)
       venomqa capture reset <entry>   (removes capture's triggers and bookkeeping for an entry of venomqa.yaml; the data stays as it is)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [command, action, entry] = args.as_slice() {
        if command == "capture" && action == "reset" {
            return match venomqa::capture::reset(entry) {
                Ok(done) => {
                    println!("venomqa capture reset: {done}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("venomqa capture reset: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let path = match args.as_slice() {
        [command] if command == "report" => std::env::var("VENOMQA_REPORT")
            .ok()
            .filter(|p| !p.is_empty()),
        [command, path] if command == "report" => Some(path.clone()),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(path) = path else {
        eprintln!("venomqa report: no report file given and VENOMQA_REPORT is not set; {USAGE}");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("venomqa report: cannot read {path}: {e}; run the tests with VENOMQA_REPORT={path} first");
            return ExitCode::FAILURE;
        }
    };
    match venomqa_cli::Report::parse(&text) {
        Ok(report) => {
            print!("{}", report.render(&path));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("venomqa report: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
