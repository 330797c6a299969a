//! Signal processing shared by the audio analysers: one streaming STFT whose power spectra feed
//! both the voice analyser's mel front end and, later, the spectral anomaly features — one FFT per
//! frame for both.

pub mod fbank;
pub mod mel;
pub mod stft;
