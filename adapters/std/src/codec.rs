//! Formats that need std (MessagePack, CBOR), streaming over `std::io`, key files.
