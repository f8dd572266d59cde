//! lw-layer (being written).
