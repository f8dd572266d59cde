//! The native side of Layerwright: on-disk store, directory build context, HTTP transport, credentials, commands.

pub mod archive;
pub mod buildhost;
pub mod context;
pub mod credentials;
pub mod gateway;
pub mod gitfetch;
pub mod http;
pub mod humanize;
pub mod named_contexts;
pub mod names;
pub mod remote;
pub mod run;
pub mod serve;
pub mod statcache;
pub mod store;
pub mod tls;
pub mod transfer;
