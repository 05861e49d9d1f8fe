//! Talking to OCI registries: credentials and the client.

pub mod auth;
mod challenge;
pub mod client;
pub mod login;
mod session;
pub mod tls;
pub mod upload;
