//! `venomqa`, the command (venomqa-cli's [`run`](venomqa_cli::run)), as a child process:
//! this test binary re-executed with `VENOMQA_TEST_ROLE=cli`, so the tests run the
//! command's own code in a process of its own (its exit status, its current directory,
//! its output) without a binary of another package.

use std::process::Command;

/// A command that runs `venomqa`: add its arguments (`report <path>`,
/// `capture reset <entry>`) and run it.
pub fn command() -> Command {
    let mut command = Command::new(crate::support::this_binary());
    command.env(super::writer::ROLE, "cli");
    command
}

/// The command's `main`: runs it with the process's arguments and exits with its status.
pub fn main() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(i32::from(venomqa_cli::run(&args)))
}
