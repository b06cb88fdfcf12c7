//! `serialize` / `deserialize`: framed values in `Vec<u8>` with compression and encryption.
