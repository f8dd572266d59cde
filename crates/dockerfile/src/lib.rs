//! lw-dockerfile (being written).
