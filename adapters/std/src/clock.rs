//! The system clock as an input for the core.
