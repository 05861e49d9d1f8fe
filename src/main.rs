//! `mini`: a small container engine. This file parses the command line,
//! dispatches to one verb, prints any error once, and exits with Docker's
//! exit codes (see `error::Kind`).

mod cli;
mod config;
mod container;
mod error;
mod image;
mod network;
mod oci;
mod pull;
mod push;
mod registry;
mod rootless;
mod runtime;
mod sys;

fn main() {
    sys::process::default_sigpipe();
    // runc's command line: as `mini-runc` (a link to this binary), or as
    // `mini runtime …`, before mini's own parser sees its flags.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.first().is_some_and(|a| oci::invoked_as_runc(a)) {
        std::process::exit(oci::cli::main(args));
    }
    if args.get(1).is_some_and(|a| a == "runtime") {
        let mut rest = vec![std::ffi::OsString::from("mini runtime")];
        rest.extend(args.into_iter().skip(2));
        std::process::exit(oci::cli::main(rest));
    }
    let code = match cli::main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mini: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
