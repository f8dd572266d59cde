//! Shared fixtures and golden values for the cross-target tests: the same code runs natively and in wasm32.

pub mod buildkit;
pub mod fixtures;
pub mod golden;
