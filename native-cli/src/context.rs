//! Build context read from a directory on disk (being written).
