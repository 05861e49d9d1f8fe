//! `--userns=auto`: container root mapped to an unprivileged id range.
