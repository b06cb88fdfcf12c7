//! Allocation-free metrics primitives: atomic counters and latency histograms.
