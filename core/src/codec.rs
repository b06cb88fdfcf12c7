//! Codecs: the frame format, postcard, bounded inflate and AEAD, into caller buffers.
