//! The single integration-test binary (one link step for all tests).

mod broker;
mod cli;
mod common;
mod policy_cases;
mod policy_files;
mod properties;
mod scores_dst;
