//! postcard flavors over slices, byte counters and `embedded_io` 0.7
//! readers and writers.
//!
//! Invariants:
//! - [`SliceInput`] hands back its unread rest, even after an error, so
//!   every decoding error names the input offset;
//! - [`ReaderInput`] reads exactly the bytes the value needs and never one
//!   more, so a reader positioned on a stream of messages stays aligned;
//!   borrowed byte strings are carved out of the caller's scratch slice, which
//!   is the only memory it uses;
//! - [`WriterOutput`] stages bytes in a fixed 128-byte array and writes them
//!   out with `write_all`, so small varints do not each cost a write call;
//! - I/O errors are kept in the flavor (postcard's error type cannot carry
//!   them) and handed back by `finalize`, which the deserializer still
//!   allows after an error, so the caller reports them in place of
//!   postcard's generic one.

use embedded_io::{Error as _, ErrorKind, Read, ReadExactError, Write};
use postcard::de_flavors::Flavor as DeFlavor;
use postcard::ser_flavors::Flavor as SerFlavor;

/// What went wrong outside postcard itself while a flavor worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The reader or writer failed.
    Io(ErrorKind),
    /// The reader ended in the middle of the value.
    Eof,
    /// The scratch slice cannot hold a borrowed byte string of `needed`
    /// bytes.
    Scratch { needed: usize },
}

/// Counts bytes instead of storing them, to size a buffer.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl SerFlavor for Counter {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// A slice being decoded; its remainder tells the position reached.
#[derive(Debug)]
pub(crate) struct SliceInput<'de> {
    rest: &'de [u8],
}

impl<'de> SliceInput<'de> {
    pub(crate) fn new(bytes: &'de [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'de> DeFlavor<'de> for SliceInput<'de> {
    type Remainder = &'de [u8];
    type Source = &'de [u8];

    #[inline]
    fn pop(&mut self) -> postcard::Result<u8> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        Ok(b)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.rest.len())
    }

    #[inline]
    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'de [u8]> {
        let (head, rest) = self
            .rest
            .split_at_checked(ct)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
        self.rest = rest;
        Ok(head)
    }

    fn finalize(self) -> postcard::Result<&'de [u8]> {
        Ok(self.rest)
    }
}

/// An `embedded_io` reader being decoded, with scratch space for byte
/// strings.
pub(crate) struct ReaderInput<'s, R: ?Sized> {
    reader: &'s mut R,
    scratch: &'s mut [u8],
    fault: Option<Fault>,
    read: usize,
}

impl<'s, R: Read + ?Sized> ReaderInput<'s, R> {
    pub(crate) fn new(reader: &'s mut R, scratch: &'s mut [u8]) -> Self {
        Self {
            reader,
            scratch,
            fault: None,
            read: 0,
        }
    }

    fn fill(&mut self, dst: &mut [u8]) -> postcard::Result<()> {
        match self.reader.read_exact(dst) {
            Ok(()) => {
                self.read += dst.len();
                Ok(())
            }
            Err(ReadExactError::UnexpectedEof) => {
                self.fault = Some(Fault::Eof);
                Err(postcard::Error::DeserializeUnexpectedEnd)
            }
            Err(ReadExactError::Other(e)) => {
                self.fault = Some(Fault::Io(e.kind()));
                Err(postcard::Error::DeserializeUnexpectedEnd)
            }
        }
    }

    fn scratch_fault(&mut self, needed: usize) -> postcard::Error {
        self.fault = Some(Fault::Scratch { needed });
        postcard::Error::DeserializeUnexpectedEnd
    }
}

impl<'s, R: Read + ?Sized + 's> DeFlavor<'s> for ReaderInput<'s, R> {
    /// Bytes read, and what went wrong outside postcard, if anything.
    type Remainder = (usize, Option<Fault>);
    type Source = ();

    fn pop(&mut self) -> postcard::Result<u8> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    fn try_take_n(&mut self, ct: usize) -> postcard::Result<&'s [u8]> {
        if ct > self.scratch.len() {
            return Err(self.scratch_fault(ct));
        }
        // Carving the head off keeps earlier borrowed strings valid while
        // later ones are read into the tail.
        let (head, tail) = core::mem::take(&mut self.scratch).split_at_mut(ct);
        self.scratch = tail;
        self.fill(head)?;
        Ok(head)
    }

    fn try_take_n_temp<'a>(&'a mut self, ct: usize) -> postcard::Result<&'a [u8]>
    where
        's: 'a,
    {
        if ct > self.scratch.len() {
            return Err(self.scratch_fault(ct));
        }
        let tmp = core::mem::take(&mut self.scratch);
        let res = match self.reader.read_exact(&mut tmp[..ct]) {
            Ok(()) => Ok(()),
            Err(ReadExactError::UnexpectedEof) => Err(Fault::Eof),
            Err(ReadExactError::Other(e)) => Err(Fault::Io(e.kind())),
        };
        self.scratch = tmp;
        match res {
            Ok(()) => {
                self.read += ct;
                Ok(&self.scratch[..ct])
            }
            Err(f) => {
                self.fault = Some(f);
                Err(postcard::Error::DeserializeUnexpectedEnd)
            }
        }
    }

    fn finalize(self) -> postcard::Result<(usize, Option<Fault>)> {
        Ok((self.read, self.fault))
    }
}

const STAGE: usize = 128;

/// An `embedded_io` writer being encoded into.
pub(crate) struct WriterOutput<'w, W: ?Sized> {
    writer: &'w mut W,
    stage: [u8; STAGE],
    staged: usize,
    written: usize,
    pub(crate) fault: Option<ErrorKind>,
}

impl<'w, W: Write + ?Sized> WriterOutput<'w, W> {
    pub(crate) fn new(writer: &'w mut W) -> Self {
        Self {
            writer,
            stage: [0; STAGE],
            staged: 0,
            written: 0,
            fault: None,
        }
    }

    /// Writes out what is staged; after an error, `fault` says why.
    pub(crate) fn drain(&mut self) -> postcard::Result<()> {
        if self.staged > 0 {
            let res = self.writer.write_all(&self.stage[..self.staged]);
            self.staged = 0;
            if let Err(e) = res {
                self.fault = Some(e.kind());
                return Err(postcard::Error::SerializeBufferFull);
            }
        }
        Ok(())
    }
}

impl<W: Write + ?Sized> SerFlavor for WriterOutput<'_, W> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.staged == STAGE {
            self.drain()?;
        }
        self.stage[self.staged] = data;
        self.staged += 1;
        self.written += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.staged + data.len() <= STAGE {
            self.stage[self.staged..self.staged + data.len()].copy_from_slice(data);
            self.staged += data.len();
        } else {
            self.drain()?;
            if let Err(e) = self.writer.write_all(data) {
                self.fault = Some(e.kind());
                return Err(postcard::Error::SerializeBufferFull);
            }
        }
        self.written += data.len();
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        self.drain()?;
        Ok(self.written)
    }
}

impl<W: ?Sized> WriterOutput<'_, W> {
    /// Bytes handed to the flavor so far.
    pub(crate) fn written(&self) -> usize {
        self.written
    }
}
