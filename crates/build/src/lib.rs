//! lw-build: build engine pieces — build context and `.dockerignore`, `COPY --chmod/--chown`
//! parsing (being written).

pub mod context;
pub mod error;
pub mod ignore;

pub use error::Error;
