//! lw-build (being written).
