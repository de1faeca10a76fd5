//! Training-free proxies. They see only what a network reports to a
//! [`crate::nets::Sink`], never the design space.

pub mod hda;
pub mod kernel;
pub mod rbflex;
