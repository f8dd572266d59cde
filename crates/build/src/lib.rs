//! lw-build: build engine pieces — the build context and `.dockerignore` ([`context`],
//! [`ignore`]), `COPY --chmod` / `--chown` values ([`chmod`], [`chown`]) (being written).

pub mod archive;
pub mod chmod;
pub mod chown;
pub mod context;
pub mod engine;
pub mod error;
pub mod events;
pub mod host;
pub mod ignore;

pub use error::Error;
