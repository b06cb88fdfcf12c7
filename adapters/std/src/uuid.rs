//! Process-wide UUID generators and convenience functions.
