//! A growable object pool with minimum size, growth strategy, shrinking and statistics.
