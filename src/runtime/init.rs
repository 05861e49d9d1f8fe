//! `--init`: mini's own small init as the container's pid 1.
