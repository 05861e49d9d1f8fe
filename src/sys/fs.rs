//! Filesystem calls that std lacks: extended attributes.
