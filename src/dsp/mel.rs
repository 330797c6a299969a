//! Mel filterbank equal to librosa's `filters.mel(sr, n_fft, n_mels, htk=False, norm="slaney")`
//! (Slaney's mel scale: linear below 1 kHz, logarithmic above; each triangle normalised to unit
//! area).

/// Slaney mel scale.
fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel) = (1000.0, 1000.0 / f_sp);
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel) = (1000.0, 1000.0 / f_sp);
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// `n_mels` × `n_fft/2+1` weights, row-major.
#[derive(Debug, Clone)]
pub struct MelFilterbank {
    pub n_mels: usize,
    pub bins: usize,
    /// Per mel band: first bin with a non-zero weight and the weights from there.
    bands: Vec<(usize, Vec<f32>)>,
}

impl MelFilterbank {
    pub fn new(sr: u32, n_fft: usize, n_mels: usize) -> Self {
        let bins = n_fft / 2 + 1;
        let fmax = sr as f64 / 2.0;
        let fftfreqs: Vec<f64> = (0..bins)
            .map(|i| i as f64 * fmax / (bins - 1) as f64)
            .collect();
        let (mmin, mmax) = (hz_to_mel(0.0), hz_to_mel(fmax));
        let mel_f: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(mmin + (mmax - mmin) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let mut bands = Vec::with_capacity(n_mels);
        for m in 0..n_mels {
            let (lo, ce, hi) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
            let enorm = 2.0 / (hi - lo);
            let w: Vec<f64> = fftfreqs
                .iter()
                .map(|&f| {
                    let lower = (f - lo) / (ce - lo);
                    let upper = (hi - f) / (hi - ce);
                    lower.min(upper).max(0.0) * enorm
                })
                .collect();
            let first = w.iter().position(|&v| v > 0.0).unwrap_or(0);
            let last = w
                .iter()
                .rposition(|&v| v > 0.0)
                .map(|i| i + 1)
                .unwrap_or(first);
            bands.push((first, w[first..last].iter().map(|&v| v as f32).collect()));
        }
        MelFilterbank {
            n_mels,
            bins,
            bands,
        }
    }

    /// Mel energies of one power spectrum.
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        debug_assert_eq!(power.len(), self.bins);
        for (o, (first, w)) in out.iter_mut().zip(&self.bands) {
            *o = w.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
        }
    }
}

/// Resemblyzer's front end for a whole signal: 16 kHz, n_fft 400, hop 160, 40 Slaney mels of the
/// centred power STFT (librosa `melspectrogram` defaults). One row per frame.
pub fn melspectrogram(samples: &[f32]) -> Vec<[f32; 40]> {
    let mut stft = super::stft::Stft::new(400, 160);
    let fb = MelFilterbank::new(16_000, 400, 40);
    let mut rows = Vec::with_capacity(1 + samples.len() / 160);
    let mut on_frame = |p: &[f32]| {
        let mut row = [0f32; 40];
        fb.apply(p, &mut row);
        rows.push(row);
    };
    stft.push(samples, &mut on_frame);
    stft.finish(&mut on_frame);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slaney_scale_round_trips_and_bends_at_1_khz() {
        for hz in [0.0, 300.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }
}
