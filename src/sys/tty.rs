//! Terminal calls: ptys, termios, window sizes, fd passing.
