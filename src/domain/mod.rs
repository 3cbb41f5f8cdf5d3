//! The pure policy engine.
//!
//! Everything below this module is a function of its arguments: there is no
//! clock read, no file or network access and no async. "Now" and every
//! instant are passed in. The daemon, the store and the offline `evaluate`
//! command all call the same functions, so a verdict computed anywhere is the
//! verdict computed everywhere.

pub mod alerting;
pub mod appeal;
pub mod calendar;
pub mod classify;
pub mod ladder;
pub mod points;
pub mod policy;
pub mod score;
pub mod time;
pub mod types;

pub use classify::{EmployeeDays, evaluate_employee};
pub use points::Points;
pub use types::*;
