//! The `venomqa` command line: `venomqa report [path]` and `venomqa capture reset <entry>`.

const USAGE: &str = "usage: venomqa report [path]   (path defaults to $VENOMQA_REPORT; write one with VENOMQA_REPORT=/abs/path cargo test)
       venomqa capture reset <entry>   (removes capture's triggers and bookkeeping for an entry of venomqa.yaml; the data stays as it is)";

/// Runs the `venomqa` command with `args` (the arguments after the program's name):
/// prints to stdout and stderr and returns the process's exit status (0 done, 1 failed,
/// 2 a usage error). The binary is this function; tests run it the same way.
pub fn run(args: &[String]) -> u8 {
    if let [command, action, entry] = args {
        if command == "capture" && action == "reset" {
            return match venomqa::capture::reset(entry) {
                Ok(done) => {
                    println!("venomqa capture reset: {done}");
                    0
                }
                Err(e) => {
                    eprintln!("venomqa capture reset: {e}");
                    1
                }
            };
        }
    }
    let path = match args {
        [command] if command == "report" => std::env::var("VENOMQA_REPORT")
            .ok()
            .filter(|p| !p.is_empty()),
        [command, path] if command == "report" => Some(path.clone()),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return 0;
        }
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    let Some(path) = path else {
        eprintln!("venomqa report: no report file given and VENOMQA_REPORT is not set; {USAGE}");
        return 2;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("venomqa report: cannot read {path}: {e}; run the tests with VENOMQA_REPORT={path} first");
            return 1;
        }
    };
    match crate::Report::parse(&text) {
        Ok(report) => {
            print!("{}", report.render(&path));
            0
        }
        Err(e) => {
            eprintln!("venomqa report: {path}: {e}");
            1
        }
    }
}
