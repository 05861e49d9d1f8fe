//! mini-store

pub mod containers;
