//! Images: references, manifests and configs (pure), the images mini has in
//! its store, the images it builds itself, and the archives they travel in.

pub mod archive;
pub mod build;
pub mod change;
pub mod history;
pub mod local;
pub mod manifest;
pub mod reference;
