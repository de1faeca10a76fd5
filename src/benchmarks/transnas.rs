//! TransNAS-Bench-101 ground truth (RBFleX-NAS `data/trans`, MIT): one value
//! per network and task, all higher-is-better (top-1 %, mIoU %, SSIM, or the
//! negative L2 loss of room_layout).

use super::GroundTruth;
use crate::dataset::Dataset;
use crate::spaces::transnas::{macro_table, micro_table, TASKS};
use anyhow::{bail, Result};

/// One task of one space.
#[derive(Debug, Clone, Copy)]
pub struct TaskTruth {
    micro: bool,
    task: usize,
}

impl TaskTruth {
    /// The truth of `task` (a name from [`TASKS`]).
    pub fn new(micro: bool, task: &str) -> Result<TaskTruth> {
        match TASKS.iter().position(|t| *t == task) {
            Some(task) => Ok(TaskTruth { micro, task }),
            None => bail!("unknown TransNAS task '{task}' (expected one of {}, or all)", TASKS.join(", ")),
        }
    }

    /// The task's name.
    pub fn name(&self) -> &'static str {
        TASKS[self.task]
    }
}

impl GroundTruth for TaskTruth {
    fn accuracy(&self, index: usize, dataset: Dataset) -> Option<f64> {
        if dataset != Dataset::Taskonomy {
            return None;
        }
        let t = if self.micro { micro_table() } else { macro_table() };
        t.values.get(index).map(|r| r[self.task])
    }
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Taskonomy]
    }
    fn describe(&self) -> &'static str {
        "TransNAS-Bench-101 task metric (higher is better)"
    }
    fn label(&self, _dataset: Dataset) -> String {
        format!("{} (TransNAS-Bench-101, higher is better)", self.name())
    }
}
