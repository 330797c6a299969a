//! The model manifest: what each reference model in `models/` must be. Provenance, licences and
//! pre-/post-processing are in `models/README.md`.

use serde::{Deserialize, Serialize};

/// One tensor of a model's interface; `-1` marks a dynamic dimension.
#[derive(Debug, Clone, Copy)]
pub struct IoSpec {
    pub name: &'static str,
    pub shape: &'static [i64],
}

/// A model file and the interface the code relies on.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    /// Stable identifier used in reports.
    pub name: &'static str,
    pub file: &'static str,
    pub sha256: &'static str,
    pub inputs: &'static [IoSpec],
    pub outputs: &'static [IoSpec],
}

/// `{name, sha256}` as recorded in every report's `pipeline.models`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
}

impl ModelSpec {
    pub fn reference(&self) -> ModelRef {
        ModelRef {
            name: self.name.to_string(),
            sha256: self.sha256.to_string(),
        }
    }
}

const fn io(name: &'static str, shape: &'static [i64]) -> IoSpec {
    IoSpec { name, shape }
}

pub const SILERO_VAD: ModelSpec = ModelSpec {
    name: "silero_vad",
    file: "silero_vad.onnx",
    sha256: "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    inputs: &[
        io("input", &[-1, -1]),
        io("state", &[2, -1, 128]),
        io("sr", &[]),
    ],
    outputs: &[io("output", &[-1, 1]), io("stateN", &[-1, -1, -1])],
};

pub const BLAZEFACE_SHORT: ModelSpec = ModelSpec {
    name: "mediapipe_face_detection_short_range",
    file: "mediapipe_face_detection_short_range.onnx",
    sha256: "2d83bf713a7bf67b1d8d65b3d4eb297a4f1029bce51cf0d9f7723046648f10a7",
    inputs: &[io("input", &[1, 3, 128, 128])],
    outputs: &[
        io("regressors", &[1, 896, 16]),
        io("classificators", &[1, 896, 1]),
    ],
};

pub const BLAZEFACE_FULL: ModelSpec = ModelSpec {
    name: "mediapipe_face_detection_full_range",
    file: "mediapipe_face_detection_full_range.onnx",
    sha256: "3b09dfb307fd064b2a6fc943f382ab6323f0fa2be44b9e09826674ccb11c1371",
    inputs: &[io("input", &[1, 3, 192, 192])],
    outputs: &[
        io("reshaped_regressor_face_4", &[1, 2304, 16]),
        io("reshaped_classifier_face_4", &[1, 2304, 1]),
    ],
};

pub const FACE_LANDMARK: ModelSpec = ModelSpec {
    name: "mediapipe_face_landmark",
    file: "mediapipe_face_landmark.onnx",
    sha256: "bb88a08bc2919b6fc2e9e808ba1627942694b29cde9ce688d85b8fb0fcf46623",
    inputs: &[io("input_1", &[1, 3, 192, 192])],
    outputs: &[
        io("conv2d_20", &[1, 1404, 1, 1]),
        io("conv2d_30", &[1, 1, 1, 1]),
    ],
};

pub const FACE_EMBEDDER: ModelSpec = ModelSpec {
    name: "dlib_face_recognition_resnet_v1",
    file: "dlib_face_recognition_resnet_v1.onnx",
    sha256: "9bb9bbe824153b42c80800d8607d711a22825b84c30a6d1818321e17f3cdc2a8",
    inputs: &[io("input", &[-1, 3, 150, 150])],
    outputs: &[io("embedding", &[-1, 128])],
};

pub const VOICE_ENCODER: ModelSpec = ModelSpec {
    name: "resemblyzer_voice_encoder",
    file: "resemblyzer_voice_encoder.onnx",
    sha256: "af4ea4514151cd76249e3ea4bbfed5832d39586acff28a2b08e3f2950e210d89",
    inputs: &[io("mels", &[-1, 160, 40])],
    outputs: &[io("embeds", &[-1, 256])],
};

/// CAM++ speaker embedder (3D-Speaker `speech_campplus_sv_zh_en_16k-common_advanced`): Kaldi
/// fbank + CMN frames in, one 192-d embedding per window out. Wrapper: [`super::CamPlus`].
pub const CAMPPLUS: ModelSpec = ModelSpec {
    name: "campplus_sv_zh_en_16k",
    file: "campplus_sv_zh_en_16k.onnx",
    sha256: "678a5a9e7f580687983afa0f0c4e6edd6638992ffebb64af42c04eeeeba736e6",
    inputs: &[io("feats", &[-1, -1, 80])],
    outputs: &[io("embedding", &[-1, 192])],
};

/// pyannote segmentation-3.0: 10 s of waveform in, 589 frames of powerset log-probabilities
/// over 7 classes out. Wrapper: [`super::Segmentation`].
pub const SEGMENTATION: ModelSpec = ModelSpec {
    name: "pyannote_segmentation_3",
    file: "pyannote_segmentation_3.onnx",
    sha256: "0bb6dfe4a494a0120c9ef10215ddc1c75efe7cdf73e1b3dd2465a68e89f79e89",
    inputs: &[io("waveform", &[-1, 1, 160_000])],
    outputs: &[io("logits", &[-1, 589, 7])],
};

/// AASIST anti-spoofing (ASVspoof 2019 LA): 4.04 s of waveform in, [spoof, bona fide] logits
/// out. Wrapper: [`super::Aasist`].
pub const AASIST: ModelSpec = ModelSpec {
    name: "aasist_la",
    file: "aasist_la.onnx",
    sha256: "d24ea417bafb859be9476beb4c4989d899eca94ab121b74d4744fdd0f11190a0",
    inputs: &[io("waveform", &[-1, 64_600])],
    outputs: &[io("logits", &[-1, 2])],
};

/// Every model shipped in `models/`.
pub const ALL_MODELS: [ModelSpec; 9] = [
    SILERO_VAD,
    BLAZEFACE_SHORT,
    BLAZEFACE_FULL,
    FACE_LANDMARK,
    FACE_EMBEDDER,
    VOICE_ENCODER,
    CAMPPLUS,
    SEGMENTATION,
    AASIST,
];
