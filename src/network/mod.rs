//! Container networking. Only `none` so far: a loopback interface that is
//! up (done inside the child), plus the per-container /etc files.
