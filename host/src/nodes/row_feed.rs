//! Rows of a frame still being decoded, handed to a node that reads them in
//! order while the decoder writes the rest.
//!
//! At one session a frame's first two stages are serial: libjpeg decodes it
//! (Huffman decoding, one core), then `to_tensor` turns the image into the
//! detector's input, while the second core idles. The decoder writes rows top
//! to bottom and the detector's pre-processing reads them top to bottom, so it
//! can run a band behind the decoder on the other core and be done almost as
//! soon as the decoder is. The decoder owns its buffer and splits it into bands
//! of [`FEED_ROWS`] rows (`chunks_mut`); each band, once written, is handed out
//! as a shared borrow over a channel: no copy and no unsafe code, and the
//! borrow checker proves no one reads a row while it is written. A consumer
//! that asks for a row the decoder never wrote (the frame was corrupt or
//! truncated) gets `None` and stops; the frame then fails with the decoder's
//! error, as it would have without the overlap. It pays for baseline JPEGs,
//! whose rows libjpeg entropy-decodes as they are read out; a progressive file
//! is decoded whole when decompression starts, and only colour conversion and
//! upsampling are left to overlap.

use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use crate::value::PixelFormat;

/// Rows in each band the decoder hands out. The consumer outruns the decoder,
/// so it waits on nearly every band and each one costs the decoder a wake-up
/// (several microseconds on a VM); the consumer's work on the last band is
/// what it adds after the decoder is done. 32 rows: 15 hand-offs for a 480-row
/// frame and a last band of about 60 us; 16 measured no better, and saved
/// about half as much in `make stages` (BENCHMARKS.md, session 12).
pub const FEED_ROWS: usize = 32;

/// The size of the image being decoded, known from its header before any row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedHeader {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

impl FeedHeader {
    /// Bytes in one row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.format.bytes_per_pixel()
    }
}

/// The consumer's end: the image's rows, each available once decoded.
pub struct RowFeed<'a> {
    header: FeedHeader,
    bands: Vec<&'a [u8]>,
    rows_ready: usize,
    incoming: Receiver<&'a [u8]>,
    waited: Duration,
}

impl<'a> RowFeed<'a> {
    pub fn new(header: FeedHeader, incoming: Receiver<&'a [u8]>) -> Self {
        RowFeed {
            header,
            bands: Vec::with_capacity((header.height as usize).div_ceil(FEED_ROWS)),
            rows_ready: 0,
            incoming,
            waited: Duration::ZERO,
        }
    }

    pub fn header(&self) -> FeedHeader {
        self.header
    }

    /// Row `y`, waiting for the decoder to write it; `None` if the decoder
    /// stopped first, or `y` is not a row of the image.
    pub fn row(&mut self, y: usize) -> Option<&'a [u8]> {
        if y >= self.header.height as usize {
            return None;
        }
        let stride = self.header.stride();
        while self.rows_ready <= y {
            let band = match self.incoming.try_recv() {
                Ok(band) => band,
                Err(_) => {
                    let start = Instant::now();
                    let band = self.incoming.recv().ok();
                    self.waited += start.elapsed();
                    band?
                }
            };
            if stride == 0 || band.len() % stride != 0 {
                return None;
            }
            self.rows_ready += band.len() / stride;
            self.bands.push(band);
        }
        let band = self.bands.get(y / FEED_ROWS)?;
        let at = (y % FEED_ROWS) * stride;
        band.get(at..at + stride)
    }

    /// Time spent waiting for rows so far: what the consumer's wall time holds
    /// besides its own work.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// The decoder's end: sends every written band to each consumer still
/// listening (one that has stopped is simply no longer sent to).
pub struct FeedSender<'a> {
    consumers: Vec<Sender<&'a [u8]>>,
}

impl<'a> FeedSender<'a> {
    pub fn new(consumers: Vec<Sender<&'a [u8]>>) -> Self {
        FeedSender { consumers }
    }

    /// Hands out one band of whole rows, the next after the last one sent.
    pub fn send(&mut self, band: &'a [u8]) {
        self.consumers.retain(|c| c.send(band).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn header(width: u32, height: u32) -> FeedHeader {
        FeedHeader {
            width,
            height,
            format: PixelFormat::Gray8,
        }
    }

    #[test]
    fn rows_arrive_in_bands_and_read_back_in_place() {
        let (w, h) = (3usize, FEED_ROWS * 2 + 5);
        let image: Vec<u8> = (0..w * h).map(|i| (i / w) as u8).collect();
        let (tx, rx) = channel();
        let mut sender = FeedSender::new(vec![tx]);
        for band in image.chunks(FEED_ROWS * w) {
            sender.send(band);
        }
        drop(sender);
        let mut feed = RowFeed::new(header(w as u32, h as u32), rx);
        for y in [0, 1, FEED_ROWS, FEED_ROWS * 2 + 4, 3] {
            assert_eq!(feed.row(y), Some(&[y as u8; 3][..]), "row {y}");
        }
        assert_eq!(feed.row(h), None, "past the last row");
    }

    #[test]
    fn a_decoder_that_stops_early_leaves_the_rest_unreadable() {
        let rows = vec![7u8; FEED_ROWS * 4];
        let (tx, rx) = channel();
        let mut sender = FeedSender::new(vec![tx]);
        sender.send(&rows);
        drop(sender);
        let mut feed = RowFeed::new(header(4, FEED_ROWS as u32 * 3), rx);
        assert_eq!(feed.row(FEED_ROWS - 1), Some(&[7u8; 4][..]));
        assert_eq!(feed.row(FEED_ROWS), None);
    }

    #[test]
    fn a_consumer_that_has_stopped_does_not_stop_the_others() {
        let rows = vec![1u8; FEED_ROWS * 2];
        let (gone, gone_rx) = channel();
        let (kept, kept_rx) = channel();
        drop(gone_rx);
        let mut sender = FeedSender::new(vec![gone, kept]);
        sender.send(&rows);
        drop(sender);
        let mut feed = RowFeed::new(header(2, FEED_ROWS as u32), kept_rx);
        assert_eq!(feed.row(FEED_ROWS - 1), Some(&[1u8; 2][..]));
    }
}
