//! Pipelines: a manifest on disk becomes a checked DAG of ready-to-run nodes.
//!
//! [`manifest`] parses the TOML a pipeline author writes; [`dag`] checks its
//! shape (ids, edges, cycles, one output) and orders it; [`loader`] turns one
//! manifest into a [`plan`] (kinds, configs, components, models, the int8
//! choice) through [`cache`], which compiles each component once per content;
//! [`registry`] lists what serves (a failed pipeline with its reason instead
//! of refusing to start) and [`reconcile`] brings it in line with the
//! directory, at start and on every reload; [`exec`] runs one frame through one
//! session's instances of the nodes; [`occupancy`] counts the frames
//! executing, so a frame alone may use every core.

pub mod cache;
pub mod dag;
pub mod exec;
pub mod int8_gate;
pub mod loader;
pub mod manifest;
pub mod occupancy;
pub mod plan;
pub mod reconcile;
pub mod registry;

pub use registry::{Pipeline, PipelineRegistry, PipelineStatus};
