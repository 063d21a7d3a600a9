//! venomqa's benchmark: what a checkpoint costs, against what users do today, on the
//! servers that are running, in one run.
//!
//! ```text
//! cargo run -p venomqa-bench --release --all-features -- [--quick] [--no-suite] [--update-docs] [--only sqlite,mysql,...,sqlx,journey,explore,axum,html,workers,openapi]
//! ```
//!
//! Prints a table, writes `target/venomqa-bench/results.csv` and `results.md`, draws
//! `docs/bench-scaling.png`, and with `--update-docs` rewrites the tables of
//! `docs/benchmarks.md`. A backend whose server is not running is skipped with a line
//! saying so. See docs/benchmarks.md for the method.

#[cfg(feature = "axum")]
mod axum_bench;
mod capture;
mod explore;
mod harness;
#[cfg(feature = "html")]
mod html_bench;
mod journey;
#[cfg(feature = "mongodb")]
mod mongo;
#[cfg(feature = "openapi")]
mod openapi_bench;
mod plot;
#[cfg(feature = "redis")]
mod redis_bench;
mod report;
#[cfg(any(feature = "mysql", feature = "postgres"))]
mod roundtrips;
mod sql;
#[cfg(feature = "sqlx")]
mod sqlx_bench;
mod suite;
mod targets;
mod workers_bench;

use std::path::PathBuf;
use std::time::Instant;

use report::Report;
use sql::{Dialect, SqlBench};

/// The servers of this machine; `VENOMQA_<BACKEND>_URL` overrides each (venomqa reads
/// the same variables).
#[cfg_attr(
    not(any(
        feature = "mysql",
        feature = "postgres",
        feature = "redis",
        feature = "mongodb",
        feature = "sqlx"
    )),
    allow(dead_code)
)]
fn url(backend: &str, default: &'static str) -> &'static str {
    match std::env::var(format!("VENOMQA_{}_URL", backend.to_uppercase())) {
        Ok(u) if !u.is_empty() => Box::leak(u.into_boxed_str()),
        _ => default,
    }
}

/// A URL's server part, without its database.
#[cfg(any(feature = "mysql", feature = "postgres", feature = "sqlx"))]
fn server_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

struct Args {
    quick: bool,
    suite: bool,
    update_docs: bool,
    only: Option<Vec<String>>,
}

fn args() -> Args {
    let mut args = Args {
        quick: false,
        suite: true,
        update_docs: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--no-suite" => args.suite = false,
            "--update-docs" => args.update_docs = true,
            "--only" => args.only = it.next().map(|v| v.split(',').map(str::to_owned).collect()),
            "-h" | "--help" => {
                println!("usage: venomqa-bench [--quick] [--no-suite] [--update-docs] [--only sqlite,mysql,postgres,roundtrips,capture,redis,mongodb,sqlx,journey,explore,axum,html,workers,openapi,suite]");
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other:?}; try --help");
                std::process::exit(2);
            }
        }
    }
    args
}

fn main() {
    let args = args();
    let wanted = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == name))
    };
    let started = Instant::now();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned();
    let mut report = Report::default();
    println!(
        "venomqa benchmark ({}), {} cores",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // The in-memory SQLite databases of venomqa's pool are private to each connection:
    // give each the benchmark's tables.
    venomqa::registry::register_setup("sqlite", |m| {
        m.execute_script(&sql::schema(Dialect::Sqlite))
    });

    if wanted("sqlite") {
        SqlBench {
            backend: "sqlite",
            url: "sqlite::memory:",
            dialect: Dialect::Sqlite,
            connect: sql::connect_sqlite,
        }
        .run(&mut report, args.quick);
    }
    if wanted("mysql") {
        #[cfg(feature = "mysql")]
        SqlBench {
            backend: "mysql",
            url: url("mysql", "mysql://root@127.0.0.1:3306/test"),
            dialect: Dialect::MySql,
            connect: sql::connect_mysql,
        }
        .run(&mut report, args.quick);
        #[cfg(not(feature = "mysql"))]
        report.note("mysql: skipped, built without the `mysql` feature (use --all-features)");
    }
    if wanted("postgres") {
        #[cfg(feature = "postgres")]
        SqlBench {
            backend: "postgres",
            url: url("postgres", "postgres://postgres@127.0.0.1:5432/test"),
            dialect: Dialect::Postgres,
            connect: sql::connect_postgres,
        }
        .run(&mut report, args.quick);
        #[cfg(not(feature = "postgres"))]
        report.note("postgres: skipped, built without the `postgres` feature (use --all-features)");
    }
    if wanted("roundtrips") {
        #[cfg(any(feature = "mysql", feature = "postgres"))]
        roundtrips::run(&mut report, args.quick);
    }
    if wanted("capture") {
        capture::run_sqlite(&mut report, &workspace, args.quick);
        #[cfg(feature = "mysql")]
        capture::run(
            &mut report,
            Dialect::MySql,
            server_of(url("mysql", "mysql://root@127.0.0.1:3306/test")),
            sql::connect_mysql,
            args.quick,
        );
        #[cfg(feature = "postgres")]
        capture::run(
            &mut report,
            Dialect::Postgres,
            server_of(url("postgres", "postgres://postgres@127.0.0.1:5432/test")),
            sql::connect_postgres,
            args.quick,
        );
    }
    if wanted("redis") {
        #[cfg(feature = "redis")]
        redis_bench::run(
            &mut report,
            url("redis", "redis://127.0.0.1:6379"),
            args.quick,
        );
        #[cfg(not(feature = "redis"))]
        report.note("redis: skipped, built without the `redis` feature (use --all-features)");
    }
    if wanted("mongodb") {
        #[cfg(feature = "mongodb")]
        mongo::run(
            &mut report,
            url("mongodb", "mongodb://127.0.0.1:27017"),
            args.quick,
        );
        #[cfg(not(feature = "mongodb"))]
        report.note("mongodb: skipped, built without the `mongodb` feature (use --all-features)");
    }
    if wanted("sqlx") {
        #[cfg(feature = "sqlx")]
        sqlx_bench::run(&mut report, args.quick);
        #[cfg(not(feature = "sqlx"))]
        report.note("sqlx: skipped, built without the `sqlx` feature (use --all-features)");
    }
    if wanted("journey") {
        journey::run(&mut report, &workspace);
    }
    if wanted("explore") {
        explore::run(&mut report, &workspace, args.quick);
    }
    if wanted("axum") {
        #[cfg(feature = "axum")]
        axum_bench::run(&mut report, &workspace, args.quick);
        #[cfg(not(feature = "axum"))]
        report.note("axum: skipped, built without the `axum` feature (use --all-features)");
    }
    if wanted("workers") {
        workers_bench::run(&mut report, &workspace, args.quick);
    }
    if wanted("html") {
        #[cfg(feature = "html")]
        html_bench::run(&mut report, &workspace, args.quick);
        #[cfg(not(feature = "html"))]
        report.note("html: skipped, built without the `html` feature (use --all-features)");
    }
    if wanted("openapi") {
        #[cfg(feature = "openapi")]
        openapi_bench::run(&mut report, &workspace, args.quick);
        #[cfg(not(feature = "openapi"))]
        report.note("openapi: skipped, built without the `openapi` feature (use --all-features)");
    }
    if args.suite && wanted("suite") {
        suite::run(&mut report, &workspace, args.quick);
    }

    targets::judge(&mut report);

    let mut markdown = format!("## Results\n\n{}\n", report.table());
    if !report.notes.is_empty() {
        markdown.push_str("## Notes\n\n");
        for n in &report.notes {
            markdown.push_str(&format!("- {n}\n"));
        }
        markdown.push('\n');
    }
    markdown.push_str(&format!("## Targets\n\n{}", report.targets_table()));
    println!("\n{markdown}");
    let md = workspace.join("target/venomqa-bench/results.md");
    if let Err(e) = std::fs::create_dir_all(md.parent().expect("dir"))
        .and_then(|()| std::fs::write(&md, &markdown))
    {
        eprintln!("could not write {}: {e}", md.display());
    }

    let csv = workspace.join("target/venomqa-bench/results.csv");
    match report.write_csv(&csv) {
        Ok(()) => println!("CSV: {}", csv.display()),
        Err(e) => eprintln!("could not write {}: {e}", csv.display()),
    }
    if args.update_docs {
        let doc = workspace.join("docs/benchmarks.md");
        let mut results = format!("{}\n", report.table());
        if !report.notes.is_empty() {
            results.push_str("Notes printed by the run:\n\n");
            for n in &report.notes {
                results.push_str(&format!("- {n}\n"));
            }
            results.push('\n');
        }
        let updated = std::fs::read_to_string(&doc).map(|text| {
            let text = replace_between(&text, "results", &results);
            replace_between(&text, "targets", &report.targets_table())
        });
        match updated.and_then(|text| std::fs::write(&doc, text)) {
            Ok(()) => println!("updated {}", doc.display()),
            Err(e) => eprintln!("could not update {}: {e}", doc.display()),
        }
    }
    let png = workspace.join("docs/bench-scaling.png");
    match plot::draw(&report, &png) {
        Ok(()) => println!("chart: {}", png.display()),
        Err(e) => eprintln!("could not draw {}: {e}", png.display()),
    }
    println!("total time: {:.0} s", started.elapsed().as_secs_f64());
}

/// `text` with what lies between `<!-- NAME:start -->` and `<!-- NAME:end -->` replaced.
fn replace_between(text: &str, name: &str, content: &str) -> String {
    let (start, end) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{start}\n{content}{}", &text[..a], &text[b..]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_between;

    #[test]
    fn replaces_only_between_the_markers() {
        let text = "a\n<!-- t:start -->\nold\n<!-- t:end -->\nb\n";
        assert_eq!(
            replace_between(text, "t", "new\n"),
            "a\n<!-- t:start -->\nnew\n<!-- t:end -->\nb\n"
        );
        assert_eq!(replace_between(text, "other", "new\n"), text);
    }
}
