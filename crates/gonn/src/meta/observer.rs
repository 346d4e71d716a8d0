//! Observers of the outer loop (the argmin pattern): a progress table, a JSON log, a checkpoint writer. The
//! algorithm knows nothing about them; any of them may stop the run by returning `ControlFlow::Break`.

use std::ops::ControlFlow;

use super::state::{IterationRecord, MetaState};
use super::FitResult;

/// Receives the start, every outer iteration and the end of a run.
pub trait Observer {
    /// Called once with the state the run starts from (outer 0, or a resumed state).
    fn init(&mut self, _state: &MetaState) {}
    /// Called after each outer iteration with its record and the state to continue from; `Break` stops the run
    /// (termination `interrupted`).
    fn iter(&mut self, record: &IterationRecord, state: &MetaState) -> ControlFlow<()>;
    /// Called once with the result and the last state to continue from.
    fn finish(&mut self, _model: &FitResult, _state: &MetaState) {}
}

/// An observer that does nothing.
pub struct Silent;

impl Observer for Silent {
    fn iter(&mut self, _: &IterationRecord, _: &MetaState) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Any closure over the records is an observer that never stops the run.
impl<F: FnMut(&IterationRecord)> Observer for F {
    fn iter(&mut self, record: &IterationRecord, _: &MetaState) -> ControlFlow<()> {
        self(record);
        ControlFlow::Continue(())
    }
}

/// Several observers, called in order; the run stops if any of them says so.
pub struct Observers<'a>(pub Vec<&'a mut dyn Observer>);

impl Observer for Observers<'_> {
    fn init(&mut self, state: &MetaState) {
        self.0.iter_mut().for_each(|o| o.init(state));
    }
    fn iter(&mut self, record: &IterationRecord, state: &MetaState) -> ControlFlow<()> {
        let mut flow = ControlFlow::Continue(());
        for o in self.0.iter_mut() {
            if o.iter(record, state).is_break() {
                flow = ControlFlow::Break(());
            }
        }
        flow
    }
    fn finish(&mut self, model: &FitResult, state: &MetaState) {
        self.0.iter_mut().for_each(|o| o.finish(model, state));
    }
}
