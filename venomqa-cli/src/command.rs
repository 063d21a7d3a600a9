//! The `venomqa` command line: `venomqa report [path] [--html file]`, `venomqa capture
//! reset <entry>` and `venomqa clean <entry> [--list]`.

const USAGE: &str = "usage: venomqa report [path] [--html file]   (path defaults to $VENOMQA_REPORT; write one with VENOMQA_REPORT=/abs/path cargo test; --html also writes the report as a self-contained HTML page)
       venomqa capture reset <entry>   (removes capture's triggers and bookkeeping for an entry of venomqa.yaml; the data stays as it is)
       venomqa clean <entry> [--list]   (drops the worker databases of a capture entry with `workers`, on every machine; --list only lists them)";

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
    if let Some(("clean", rest)) = args.split_first().map(|(c, rest)| (c.as_str(), rest)) {
        return clean(rest);
    }
    if let [flag] = args {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return 0;
        }
    }
    let Some(("report", rest)) = args.split_first().map(|(c, rest)| (c.as_str(), rest)) else {
        eprintln!("{USAGE}");
        return 2;
    };
    let (mut path, mut html) = (None, None);
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--html" => match rest.next() {
                Some(file) => html = Some(file.clone()),
                None => {
                    eprintln!("venomqa report: --html needs a file to write; {USAGE}");
                    return 2;
                }
            },
            _ if path.is_none() && !arg.starts_with("--") => path = Some(arg.clone()),
            _ => {
                eprintln!("venomqa report: unexpected argument {arg:?}; {USAGE}");
                return 2;
            }
        }
    }
    let path = path.or_else(|| {
        std::env::var("VENOMQA_REPORT")
            .ok()
            .filter(|p| !p.is_empty())
    });
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
            let Some(html) = html else { return 0 };
            match std::fs::write(&html, venomqa::report::to_html(&report.lines, &path)) {
                Ok(()) => {
                    println!("HTML report: {html}");
                    0
                }
                Err(e) => {
                    eprintln!("venomqa report: cannot write the HTML report {html}: {e}; check that its directory exists and is writable");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("venomqa report: {path}: {e}");
            1
        }
    }
}

/// `venomqa clean <entry> [--list]`: lists or drops the entry's worker databases.
fn clean(args: &[String]) -> u8 {
    let (entry, only_list) = match args {
        [entry] => (entry, false),
        [entry, flag] if flag == "--list" => (entry, true),
        _ => {
            eprintln!("{USAGE}");
            return 2;
        }
    };
    let done = venomqa::workers::entry(entry).and_then(|config| {
        if only_list {
            venomqa::workers::list(&config).map(|dbs| {
                dbs.into_iter()
                    .map(|db| format!("{} (setup {})", db.name, db.fingerprint))
                    .collect::<Vec<_>>()
            })
        } else {
            venomqa::workers::clean(&config)
        }
    });
    match done {
        Ok(names) => {
            let verb = if only_list { "found" } else { "dropped" };
            println!(
                "venomqa clean: {verb} {} worker database{} of {entry}",
                names.len(),
                if names.len() == 1 { "" } else { "s" }
            );
            for name in names {
                println!("  {name}");
            }
            0
        }
        Err(e) => {
            eprintln!("venomqa clean: {e}");
            1
        }
    }
}
