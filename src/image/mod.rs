//! Images: references, manifests and configs (pure), and the images mini
//! has in its store.

pub mod history;
pub mod local;
pub mod manifest;
pub mod reference;
