//! Talking to OCI registries: credentials and the client.

pub mod auth;
pub mod client;
pub mod login;
pub mod session;
pub mod tls;
pub mod upload;
