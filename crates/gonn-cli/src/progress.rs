//! Observers of the outer loop: a live table on the terminal and a JSON-lines log.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;

use gonn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

/// Prints one table row per outer iteration (and a spinner on a terminal).
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("valid template"));
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb.set_message("local descent...");
            pb
        });
        let p = Self { bar, quiet };
        p.line(&IterationRecord::table_header());
        p
    }

    fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(pb) => pb.println(s),
            None => note!("{s}"),
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

impl Progress {
    /// One row of the table for an outer iteration.
    pub fn row(&mut self, r: &IterationRecord) {
        self.line(&r.table_row());
        if let Some(pb) = &self.bar {
            pb.set_message(format!("outer {} done, r = {}; local descent...", r.outer, r.subnetworks));
        }
    }
}

impl Observer for Progress {
    fn iter(&mut self, r: &IterationRecord, _: &MetaState) -> ControlFlow<()> {
        self.row(r);
        ControlFlow::Continue(())
    }
}

/// Writes one JSON line per outer iteration (`--log-json`). The file is created at the first iteration, so a
/// run that fails before it leaves an earlier log as it was.
pub struct JsonLog {
    path: std::path::PathBuf,
    file: Option<File>,
}

impl JsonLog {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self { path, file: None }
    }
}

impl Observer for JsonLog {
    fn iter(&mut self, r: &IterationRecord, _: &MetaState) -> ControlFlow<()> {
        self.record(r)
    }
}

impl JsonLog {
    /// Appends the record; `Break` when the log cannot be written.
    pub fn record(&mut self, r: &IterationRecord) -> ControlFlow<()> {
        if self.file.is_none() {
            match File::create(&self.path) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    note!("error: cannot write the log {}: {e}", self.path.display());
                    return ControlFlow::Break(());
                }
            }
        }
        if let Some(f) = self.file.as_mut() {
            let _ = writeln!(f, "{}", serde_json::to_string(r).unwrap_or_default());
        }
        ControlFlow::Continue(())
    }
}
