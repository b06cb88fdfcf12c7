//! A fixed-capacity priority queue with FIFO order within a priority and delayed entries.
