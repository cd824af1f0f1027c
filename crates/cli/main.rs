//! The `streamscope` command: analyze captures into Parquet tables, inspect a capture,
//! print the table schemas.

mod analyze;
mod args;
mod inspect;
mod pipeline;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// How a run failed, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Unusable input (not a capture, unreadable, unknown link type): exit code 2.
    Input(anyhow::Error),
    /// Anything else (output not writable, internal error): exit code 1.
    Run(anyhow::Error),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Run(_) => 1,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Run(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(a) => analyze::run(&a),
        Command::Inspect(a) => inspect::run(&a),
        Command::Schema(a) => {
            let text = if a.markdown {
                streamscope_store::schema_markdown()
            } else {
                streamscope_store::schema_text()
            };
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()) {
                Ok(()) => Ok(()),
                // A closed pipe (`streamscope schema | head`) is not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(Failure::Run(e.into())),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let (Failure::Input(e) | Failure::Run(e)) = &f;
            eprintln!("streamscope: error: {e:#}");
            ExitCode::from(f.code())
        }
    }
}
