//! Pool statistics: a plain snapshot, cheap to copy.

/// Counters of a pool, as a snapshot.
///
/// The identities `created = in_use + idle + shrunk + detached + discarded`
/// and
/// `acquired = hits + misses` always hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Objects the create hook has made.
    pub created: u64,
    /// Successful acquisitions.
    pub acquired: u64,
    /// Objects handed back.
    pub released: u64,
    /// Acquisitions served by an idle object.
    pub hits: u64,
    /// Acquisitions that had to create an object.
    pub misses: u64,
    /// Acquisitions refused because the pool was at its maximum.
    pub exhausted: u64,
    /// Objects handed out now.
    pub in_use: u64,
    /// Objects idle in the pool now.
    pub idle: u64,
    /// The most objects ever in use at once.
    pub high_water: u64,
    /// Idle objects dropped by shrinking.
    pub shrunk: u64,
    /// Objects taken out of the pool for good.
    pub detached: u64,
    /// Objects handed back broken (or whose reset hook panicked) and dropped.
    pub discarded: u64,
    /// Creations reported as failed.
    pub create_failures: u64,
}

impl PoolStats {
    /// Live objects: in use plus idle.
    pub const fn live(&self) -> u64 {
        self.in_use + self.idle
    }

    /// Fraction of acquisitions served without creating an object, 0 when
    /// nothing was acquired.
    pub fn hit_rate(&self) -> f64 {
        if self.acquired == 0 {
            0.0
        } else {
            self.hits as f64 / self.acquired as f64
        }
    }
}
