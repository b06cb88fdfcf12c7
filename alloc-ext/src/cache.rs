//! A growable cache: capacity by count and weight, time-to-live and time-to-idle.
