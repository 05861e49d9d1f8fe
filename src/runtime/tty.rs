//! `-t`: a pty from the container's own devpts, the host terminal in raw mode.
