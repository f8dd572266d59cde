//! lw-build: build engine pieces — the build context and `.dockerignore` ([`context`],
//! [`ignore`]), `COPY --chmod` / `--chown` values ([`chmod`], [`chown`]) (being written).

pub mod chmod;
pub mod chown;
pub mod context;
pub mod engine;
pub mod events;
pub mod host;
pub mod error;
pub mod ignore;

pub use error::Error;
