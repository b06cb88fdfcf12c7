//! A blocking `embedded_io` reader over a slice that hands out at most `step`
//! bytes per call, so decoders meet every kind of short read.

pub struct Trickle<'a> {
    pub data: &'a [u8],
    pub step: usize,
}

impl embedded_io::ErrorType for Trickle<'_> {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.data.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
