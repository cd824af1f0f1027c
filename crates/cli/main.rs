//! The `streamscope` command: analyze captures into Parquet tables, inspect a capture,
//! print the table schemas.

mod analyze;
mod args;
mod inspect;
mod naming;
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
            } else if a.json {
                format!("{:#}\n", streamscope_store::schema::schema_json())
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
            eprintln!("streamscope: error: {}", one_line(e));
            ExitCode::from(f.code())
        }
    }
}

/// Writes `text` to stdout. A closed pipe (`streamscope inspect x | head`) is not a
/// failure: the reader wanted no more.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Run(
            anyhow::Error::new(e).context("writing to stdout failed"),
        )),
    }
}

/// The error and its causes on one line, joined by `: ` like anyhow's `{:#}`, but
/// without a cause whose text the line already ends with (some error types repeat their
/// source in their own message) and without line breaks.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !text.is_empty() && line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_drops_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(io).context("cannot open x: gone");
        assert_eq!(one_line(&e), "cannot open x: gone");
        let e = anyhow::anyhow!("bad\nthing").context("reading y");
        assert_eq!(one_line(&e), "reading y: bad thing");
    }
}
