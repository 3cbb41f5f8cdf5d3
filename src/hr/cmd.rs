//! HR commands.
