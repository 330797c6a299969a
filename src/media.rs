//! Domain types that flow from ingest to the analysers.
//!
//! Every item carries its presentation timestamp so analysers can key their results by time and
//! the final merge is independent of thread scheduling.

use serde::{Deserialize, Serialize};

/// Presentation timestamp in nanoseconds from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pts(pub u64);

impl Pts {
    pub fn from_secs_f64(s: f64) -> Self {
        Pts((s.max(0.0) * 1e9).round() as u64)
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// Audio sample rate every analyser works at (Silero VAD and Resemblyzer both expect 16 kHz).
pub const AUDIO_RATE: u32 = 16_000;

/// Width and height of a [`Glimpse`] in cells.
pub const GLIMPSE_W: usize = 32;
pub const GLIMPSE_H: usize = 18;

/// A decoded frame's luma reduced to 32×18 area means (576 bytes): what the loop search keeps of
/// the frames between samples. A replayed stretch repeats earlier frames exactly, but sampled
/// once a second it lands up to half a second off the samples it repeats; glimpses every tenth
/// of a second put a near-identical earlier picture within reach of every sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glimpse {
    pub pts: Pts,
    pub cells: Box<[u8; GLIMPSE_W * GLIMPSE_H]>,
    /// The same frame's luma at a few hundred pixels wide, for the mouth at the glimpse rate
    /// (`analysis/lipsync.rs`); taken off before the glimpse is kept for the loop search.
    pub thumb: Option<LumaThumb>,
}

impl Glimpse {
    /// Area means of an 8-bit luma plane (`stride` bytes per row, `stride >= width`); `None`
    /// for an empty or short plane.
    pub fn of_luma(pts: Pts, y: &[u8], width: usize, height: usize, stride: usize) -> Option<Self> {
        if width < GLIMPSE_W || height < GLIMPSE_H || stride < width {
            return None;
        }
        if y.len() < (height - 1) * stride + width {
            return None;
        }
        let mut cells = Box::new([0u8; GLIMPSE_W * GLIMPSE_H]);
        for (r, out) in cells.chunks_mut(GLIMPSE_W).enumerate() {
            let (y0, y1) = (r * height / GLIMPSE_H, (r + 1) * height / GLIMPSE_H);
            for (c, cell) in out.iter_mut().enumerate() {
                let (x0, x1) = (c * width / GLIMPSE_W, (c + 1) * width / GLIMPSE_W);
                let sum: u32 = (y0..y1)
                    .map(|yy| {
                        y[yy * stride + x0..yy * stride + x1]
                            .iter()
                            .map(|&v| v as u32)
                            .sum::<u32>()
                    })
                    .sum();
                let n = ((y1 - y0) * (x1 - x0)) as u32;
                *cell = ((sum + n / 2) / n) as u8;
            }
        }
        let thumb = LumaThumb::of_luma(y, width, height, stride);
        Some(Glimpse { pts, cells, thumb })
    }

    /// Mean absolute difference of two glimpses, grey levels.
    pub fn distance(&self, other: &Glimpse) -> f32 {
        let s: u32 = self
            .cells
            .iter()
            .zip(other.cells.iter())
            .map(|(&a, &b)| a.abs_diff(b) as u32)
            .sum();
        s as f32 / (GLIMPSE_W * GLIMPSE_H) as f32
    }
}

/// A thumbnail has at most about this many rows: a webcam face (half the frame's height or more)
/// keeps a mouth 20–40 pixels wide, enough to see it open, at 58 kB for a 720p frame.
pub const THUMB_ROWS: usize = 180;

/// A luma plane shrunk by a whole factor (`scale`, so that about [`THUMB_ROWS`] rows remain) by
/// area means: the frames between samples, small enough to pass ten a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LumaThumb {
    /// Frame pixels per thumbnail pixel, in each direction.
    pub scale: usize,
    pub width: usize,
    pub height: usize,
    /// Row-major, `width` bytes per row.
    pub data: Vec<u8>,
}

impl LumaThumb {
    /// Shrinks an 8-bit luma plane (`stride` bytes per row); `None` for a short plane.
    pub fn of_luma(y: &[u8], width: usize, height: usize, stride: usize) -> Option<Self> {
        let scale = (height / THUMB_ROWS).max(1);
        let (w, h) = (width / scale, height / scale);
        if w == 0 || h == 0 || stride < width || y.len() < (height - 1) * stride + width {
            return None;
        }
        let mut data = vec![0u8; w * h];
        // A column sum over `scale` rows is at most 255 × scale: u16 lanes hold it for any frame
        // under 46 000 rows (twice the lanes of u32).
        if scale <= 257 {
            shrink::<u16>(y, stride, scale, w, &mut data);
        } else {
            shrink::<u32>(y, stride, scale, w, &mut data);
        }
        Some(LumaThumb {
            scale,
            width: w,
            height: h,
            data,
        })
    }
}

/// Area means of `scale`×`scale` blocks into `data` (`w` per row): column sums over a band of
/// `scale` rows first (one add per pixel, in lanes: this runs on ten frames a second of every
/// session), then `scale` columns per output pixel.
fn shrink<T>(y: &[u8], stride: usize, scale: usize, w: usize, data: &mut [u8])
where
    T: Copy + Default + std::ops::AddAssign + From<u8> + Into<u32>,
{
    let n = (scale * scale) as u32;
    let mut cols = vec![T::default(); w * scale];
    for (r, out) in data.chunks_mut(w).enumerate() {
        cols.fill(T::default());
        for k in 0..scale {
            let start = (r * scale + k) * stride;
            for (c, &v) in cols.iter_mut().zip(&y[start..start + w * scale]) {
                *c += T::from(v);
            }
        }
        for (o, group) in out.iter_mut().zip(cols.chunks_exact(scale)) {
            let s: u32 = group.iter().map(|&c| c.into()).sum();
            *o = ((s + n / 2) / n) as u8;
        }
    }
}

/// One decoded, sampled video frame in planar I420 (the decoders' native output, so no colour
/// conversion is paid for frames that only need luma). Planes are tightly packed: stride = width
/// for Y and `(width + 1) / 2` for U and V.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub pts: Pts,
    /// Index of this frame among the sampled frames, in decode order.
    pub index: u64,
    pub width: u32,
    pub height: u32,
    /// YUV→RGB conversion the stream declares (needed only by analysers that look at colour).
    pub colour: YuvMatrix,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl VideoFrame {
    pub fn chroma_width(&self) -> usize {
        (self.width as usize).div_ceil(2)
    }
    pub fn chroma_height(&self) -> usize {
        (self.height as usize).div_ceil(2)
    }
    /// Luma value at (x, y); caller keeps x < width, y < height.
    #[inline]
    pub fn luma(&self, x: usize, y: usize) -> u8 {
        self.y[y * self.width as usize + x]
    }
}

/// YUV→RGB matrix and range of a frame, from the stream's colorimetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvMatrix {
    /// ITU-R BT.601, limited range (SD video and GStreamer's default below 720p).
    #[default]
    Bt601,
    /// ITU-R BT.709, limited range (HD video).
    Bt709,
    /// BT.601 full range (JPEG-style; MJPEG webcams).
    Bt601Full,
}

/// A run of 16 kHz mono f32 samples in [-1, 1].
#[derive(Debug, Clone)]
pub struct AudioChunk {
    pub pts: Pts,
    pub samples: Vec<f32>,
}

/// What the input carries, as reported in the report's `media` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VideoStreamInfo {
    pub codec: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Nominal frame rate when the container states one.
    pub fps: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AudioStreamInfo {
    pub codec: Option<String>,
    /// Sample rate and channel count of the source before resampling to 16 kHz mono.
    pub source_rate: u32,
    pub source_channels: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block means computed the plain way: every block summed on its own.
    fn reference(y: &[u8], width: usize, height: usize, stride: usize) -> Vec<u8> {
        let scale = (height / THUMB_ROWS).max(1);
        let (w, h) = (width / scale, height / scale);
        let n = (scale * scale) as u32;
        let mut out = Vec::with_capacity(w * h);
        for r in 0..h {
            for c in 0..w {
                let mut s = 0u32;
                for dy in 0..scale {
                    for dx in 0..scale {
                        s += u32::from(y[(r * scale + dy) * stride + c * scale + dx]);
                    }
                }
                out.push(((s + n / 2) / n) as u8);
            }
        }
        out
    }

    #[test]
    fn thumbnail_is_the_exact_block_mean_at_every_scale_and_stride() {
        // 170 rows (scale 1) to 1080 (scale 6), odd widths, row padding, a short last row; and
        // a plane tall enough for column sums past u16 (scale 258).
        for (width, height, pad) in [
            (520, 46_440, 0),
            (99, 170, 0),
            (640, 360, 0),
            (641, 480, 31),
            (1280, 720, 64),
            (1919, 1080, 1),
        ] {
            let stride = width + pad;
            let mut state = 0x9e37_79b9_u32 ^ (width * height) as u32;
            let y: Vec<u8> = (0..(height - 1) * stride + width)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state >> 24) as u8
                })
                .collect();
            let t = LumaThumb::of_luma(&y, width, height, stride).expect("a full plane");
            assert_eq!(t.scale, (height / THUMB_ROWS).max(1));
            assert_eq!(
                t.data,
                reference(&y, width, height, stride),
                "{width}x{height}+{pad}"
            );
            let mut saturated = vec![255u8; y.len()];
            saturated[0] = 254;
            let t = LumaThumb::of_luma(&saturated, width, height, stride).unwrap();
            assert_eq!(t.data, reference(&saturated, width, height, stride));
        }
        assert_eq!(LumaThumb::of_luma(&[0; 10], 8, 8, 8), None, "a short plane");
    }
}
