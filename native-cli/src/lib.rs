//! The native side of Layerwright: on-disk store, directory build context, HTTP transport, credentials, commands.

pub mod context;
pub mod credentials;
pub mod http;
