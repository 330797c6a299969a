//! Streaming short-time Fourier transform equal to librosa's `stft(center=True,
//! pad_mode="constant", window="hann")` followed by `abs()**2`.
//!
//! Frame `j` is centred on sample `j·hop` of the stream: the stream is conceptually preceded and
//! followed by `n_fft/2` zeros, so a stream of `N` samples yields `1 + N/hop` frames once
//! [`Stft::finish`] has flushed the tail. Memory is one window, whatever the stream length.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    /// The last `n_fft` samples of the zero-padded stream (a ring; `w` is the next write slot,
    /// kept without a modulo per sample — at 16 kHz that division cost more than the FFTs).
    buf: Vec<f32>,
    w: usize,
    /// Samples of the padded stream received so far.
    filled: usize,
    /// Padded-stream position where the next frame starts.
    next_start: usize,
    scratch_in: Vec<f32>,
    scratch_out: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    power: Vec<f32>,
    pushed: u64,
}

impl Stft {
    pub fn new(n_fft: usize, hop: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        // Periodic Hann (scipy `get_window("hann", n, fftbins=True)`), as librosa uses.
        let window = (0..n_fft)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / n_fft as f64).cos()) as f32
            })
            .collect();
        let mut s = Stft {
            n_fft,
            hop,
            window,
            scratch_in: fft.make_input_vec(),
            scratch_out: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            buf: vec![0.0; n_fft],
            w: 0,
            power: vec![0.0; n_fft / 2 + 1],
            filled: 0,
            next_start: 0,
            pushed: 0,
        };
        // Centre padding: n_fft/2 leading zeros.
        s.filled = n_fft / 2;
        s.w = n_fft / 2;
        s
    }

    /// Number of frequency bins per frame (`n_fft/2 + 1`).
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Feeds samples; calls `on_frame(power_spectrum)` for every frame completed.
    pub fn push(&mut self, samples: &[f32], mut on_frame: impl FnMut(&[f32])) {
        for &x in samples {
            self.push_one(x, &mut on_frame);
        }
        self.pushed += samples.len() as u64;
    }

    #[inline]
    fn push_one(&mut self, x: f32, on_frame: &mut impl FnMut(&[f32])) {
        // Ring over the padded stream: position p lives at p % n_fft.
        self.buf[self.w] = x;
        self.w += 1;
        if self.w == self.n_fft {
            self.w = 0;
        }
        self.filled += 1;
        if self.filled == self.next_start + self.n_fft {
            self.emit(on_frame);
            self.next_start += self.hop;
        }
    }

    fn emit(&mut self, on_frame: &mut impl FnMut(&[f32])) {
        // The window starts at the oldest sample, which is the next write slot.
        let split = self.n_fft - self.w;
        let (head, tail) = self.scratch_in.split_at_mut(split);
        let (wh, wt) = self.window.split_at(split);
        for ((o, &x), &w) in head.iter_mut().zip(&self.buf[self.w..]).zip(wh) {
            *o = x * w;
        }
        for ((o, &x), &w) in tail.iter_mut().zip(&self.buf[..self.w]).zip(wt) {
            *o = x * w;
        }
        self.fft
            .process_with_scratch(
                &mut self.scratch_in,
                &mut self.scratch_out,
                &mut self.scratch,
            )
            .expect("buffer sizes come from the plan");
        for (p, c) in self.power.iter_mut().zip(&self.scratch_out) {
            *p = c.re * c.re + c.im * c.im;
        }
        on_frame(&self.power);
    }

    /// Flushes the trailing zero padding: afterwards exactly `1 + N/hop` frames were emitted.
    pub fn finish(&mut self, mut on_frame: impl FnMut(&[f32])) {
        let n = self.pushed as usize;
        let total_frames = 1 + n / self.hop;
        let mut emitted = self.next_start / self.hop;
        while emitted < total_frames {
            self.push_one(0.0, &mut on_frame);
            emitted = self.next_start / self.hop;
        }
    }
}
