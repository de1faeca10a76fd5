//! rbflex: training-free neural architecture search with RBFleX-NAS.
//!
//! Layers, each in its own module: [`spaces`] (architecture encodings ->
//! networks) -> [`nets`] (tch modules reporting activations to a sink) ->
//! [`proxies`] (RBFleX, HDA) -> [`benchmarks`] (ground truth) and [`inputs`]
//! (images) -> [`search`] / [`correlate`] -> the `rbflex` CLI.

#![warn(missing_docs)]

pub mod bench;
pub mod benchmarks;
pub mod catalog;
pub mod cli;
pub mod correlate;
pub mod dataset;
pub mod device;
pub mod evolution;
pub mod files;
pub mod guided;
pub mod hda;
pub mod inputs;
pub mod memory;
pub mod merge;
pub mod nafbee;
pub mod nets;
pub mod progress;
pub mod proxies;
pub mod run;
pub mod score;
pub mod search;
pub mod search_plot;
pub mod shard;
pub mod shown;
pub mod spaces;
pub mod stats;
