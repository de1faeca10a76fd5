//! The run layer: scoring many networks of a space, seeded per architecture
//! (so a score never depends on order, jobs or resumption), in parallel
//! across networks with one libtorch thread each, appended to a resumable
//! results folder as they finish. It knows no protocol: search, correlate,
//! bench and shards call it.
//!
//! - [`seeds`]: each network's init seed;
//! - [`setting`]: what determines a run's values (space, dataset, proxies,
//!   input batches, device);
//! - [`score`]: scoring one network;
//! - [`folder`], [`lock`], [`scores_file`]: the results folder (`run.json`,
//!   `scores.csv`, `.lock`);
//! - [`pool`]: the worker pool and memory gate.

pub mod folder;
pub mod lock;
pub mod pool;
pub mod score;
pub mod scores_file;
pub mod seeds;
pub mod setting;

pub use folder::{unsharded_header, ScoreCache, MAX_RUN_JSON};
pub use lock::RunLock;
pub use pool::{score_many, Workers};
pub use score::{build_init, build_init_on, score_index, score_with, Record};
pub use seeds::{check_run_seed, init_seed, MAX_RUN_SEED, MAX_SPACE_LEN};
pub use setting::{Batch, Setting};
