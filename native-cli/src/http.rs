//! Blocking HTTP transport for the sans-I/O registry client (being written).
