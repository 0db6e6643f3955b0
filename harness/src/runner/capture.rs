//! A test's captured output, with bounded memory: the head and the tail are kept, and
//! what falls between them is counted, so a test that prints a gigabyte cannot exhaust
//! the runner.

use std::collections::VecDeque;

/// How much of the beginning, and separately of the end, of a test's output is kept.
pub(crate) const KEEP_EACH: usize = 512 * 1024;

/// Output of one test as it arrives from the pipe.
#[derive(Debug)]
pub(crate) struct Captured {
    keep_each: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl Captured {
    /// Keeps up to `keep_each` bytes of the beginning and as many of the end.
    pub(crate) fn new(keep_each: usize) -> Captured {
        Captured {
            keep_each,
            head: Vec::new(),
            tail: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends a chunk as it was read.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) {
        let room = self.keep_each - self.head.len();
        if room > 0 {
            let n = room.min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
        }
        if chunk.len() >= self.keep_each {
            self.dropped += (self.tail.len() + chunk.len() - self.keep_each) as u64;
            self.tail.clear();
            self.tail.extend(&chunk[chunk.len() - self.keep_each..]);
            return;
        }
        let overflow = (self.tail.len() + chunk.len()).saturating_sub(self.keep_each);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(chunk);
    }

    /// The output as text (invalid UTF-8 replaced), with a line saying how much was
    /// dropped from the middle, if anything was.
    pub(crate) fn into_text(self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[nstest: {} bytes of output dropped here; the first and last {} KiB are kept]\n",
                self.dropped,
                self.keep_each / 1024
            ));
        }
        let (a, b) = self.tail.as_slices();
        text.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Captured::new(8);
        c.push(b"hello ");
        c.push(b"world");
        assert_eq!(c.into_text(), "hello world");
    }

    #[test]
    fn large_output_keeps_head_and_tail_and_counts_the_rest() {
        let mut c = Captured::new(4);
        for chunk in [&b"abc"[..], b"defgh", b"ij", b"klmnopqrst", b"uv"] {
            c.push(chunk);
        }
        // head "abcd", tail "stuv", dropped "efghijklmnopqr" = 14 bytes.
        assert_eq!(
            c.into_text(),
            "abcd\n[nstest: 14 bytes of output dropped here; the first and last 0 KiB are kept]\nstuv"
        );
    }

    #[test]
    fn memory_stays_bounded_whatever_arrives() {
        let mut c = Captured::new(1024);
        let chunk = vec![b'x'; 65536];
        for _ in 0..64 {
            c.push(&chunk);
        }
        assert_eq!(c.head.len(), 1024);
        assert_eq!(c.tail.len(), 1024);
        assert_eq!(c.dropped, 64 * 65536 - 2048);
    }
}
