//! mini-store
