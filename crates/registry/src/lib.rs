//! lw-registry (being written).
