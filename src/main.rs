//! `mini`: a small container engine. This file parses the command line,
//! dispatches to one verb, prints any error once, and exits with Docker's
//! exit codes (see `error::Kind`).

mod cli;
mod config;
mod container;
mod error;
mod image;
mod network;
mod pull;
mod push;
mod registry;
mod rootless;
mod runtime;
mod sys;

fn main() {
    sys::process::default_sigpipe();
    let code = match cli::main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mini: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
