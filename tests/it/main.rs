//! The single integration-test binary (one link step for all tests).

mod alerting;
mod api;
mod appeals;
mod broker;
mod cli;
mod common;
mod daemon;
mod dashboard;
mod hr_cli;
mod hr_fixture;
mod mqtt_source;
mod policy_cases;
mod policy_files;
mod proc;
mod properties;
mod push;
mod real_site;
mod scale;
mod scheduler;
mod scores_dst;
mod serial_source;
mod services;
mod simulate;
mod store;
mod systemd;
mod tls;
