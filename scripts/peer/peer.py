#!/usr/bin/env python3
"""Reference pipeline ("the peer"): the model work of `vigil score`, as a plain Python script.

It exists as the comparison baseline of issue 17 (performance): a single-process Python pipeline
on the same models and inputs — PyAV decode, onnxruntime with one thread per session, numpy/PIL
warps — so a benchmark can set Vigil's CPU time beside what a straightforward implementation
costs. It builds no report; it runs every model vigil runs by default on the same kind of input
and prints one JSON line of counts and per-stage times.

What it mirrors (read the Rust for the details):
- sampling (src/ingest): `keyframes` decodes keyframes only; `1s`/`2s` decode every frame and
  keep the first frame at or after each due time (8 ms tolerance, as links.rs);
- faces per sampled frame (src/analysis/face): BlazeFace short (128²) and full range (192²) on
  the letterboxed frame, weighted NMS 0.3, centre-zoom retries when nothing is found, FaceMesh on
  a 1.5× crop rotated to level the eyes, a dlib chip aligned by a 5-point similarity fit, the
  dlib ResNet embedding;
- audio (src/analysis/audio.rs, voice.rs, src/dsp/fbank.rs): 16 kHz mono, Silero VAD per
  512-sample step with its state and 64-sample context, hysteresis 0.5 / 0.35; the speech steps
  go in windows of 94 steps (3 s, side by side, one more at the end from half a window on) through
  a Kaldi fbank + CMN into CAM++, 2 windows per batch.
Not run, as vigil does not run them in `score`: the GE2E encoder, pyannote segmentation, AASIST.
Not done (no model, cheap next to the models): vigil's frame signatures, spectral STFT, levels.

Usage: python peer.py MEDIA --sampling {keyframes,1s,2s} --models DIR [--dump OUT.npz]
"""
import time

T_START = time.perf_counter()  # wall_s counts the imports too, as a process timer would

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402

# --- constants (names as in the Rust) ---------------------------------------------------------
AUDIO_RATE = 16_000
VAD_STEP, VAD_CONTEXT, VAD_ON, VAD_OFF = 512, 64, 0.5, 0.35
WINDOW_STEPS, HOP_STEPS, BATCH = 94, 94, 2
FBANK_BINS, FBANK_WINDOW, FBANK_SHIFT, PADDED = 80, 400, 160, 512
SAMPLING_TOLERANCE_NS = 8_000_000
CENTRE_ZOOMS = (1.0, 0.6)
CHIP, CHIP_PADDING = 150, 0.25
CHIP_LANDMARKS = [263, 362, 33, 133, 2]
DLIB_TEMPLATE = np.array([
    (0.8595674, 0.21349815), (0.6460605, 0.22896744), (0.12057506, 0.21372745),
    (0.33408506, 0.22906424), (0.4901123, 0.6277975)])
DLIB_MEAN_RGB = np.array([122.782, 117.001, 104.298], np.float32)


def session(models, name):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.enable_mem_pattern = False  # as vigil's session builder
    return ort.InferenceSession(f"{models}/{name}", o, providers=["CPUExecutionProvider"])


# --- faces -------------------------------------------------------------------------------------
def grid(fm, per_cell):
    """Anchor centres ((x + 0.5)/fm, (y + 0.5)/fm), y outer, x inner, per_cell copies each."""
    g = (np.arange(fm, dtype=np.float32) + 0.5) / fm
    return np.repeat(np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), per_cell, axis=0)


def weighted_nms(d, thr):
    """MediaPipe weighted NMS over rows [score, cx, cy, w, h, 12 keypoint coords]."""
    if len(d) == 0:
        return d
    d = d[np.lexsort((d[:, 2], d[:, 1], -d[:, 0]))]
    out = []
    while len(d):
        b = d[0]
        iw = np.clip(np.minimum(b[1] + b[3] / 2, d[:, 1] + d[:, 3] / 2)
                     - np.maximum(b[1] - b[3] / 2, d[:, 1] - d[:, 3] / 2), 0, None)
        ih = np.clip(np.minimum(b[2] + b[4] / 2, d[:, 2] + d[:, 4] / 2)
                     - np.maximum(b[2] - b[4] / 2, d[:, 2] - d[:, 4] / 2), 0, None)
        inter = iw * ih
        union = b[3] * b[4] + d[:, 3] * d[:, 4] - inter
        m = np.where(union > 0, inter / np.where(union > 0, union, 1), 0) > thr
        m[0] = True
        c = d[m]
        merged = c[0].copy()
        if len(c) > 1:
            merged[1:] = (c[:, 1:] * c[:, :1]).sum(0) / c[:, 0].sum()
        out.append(merged)
        d = d[~m]
    return np.stack(out)


def warp(img, m, size, offset, scale):
    """Tensor [1,3,size,size] of (RGB − offset)·scale, sampled bilinearly through the affine map
    m = (a, b, c, d, e, f): destination pixel (u, v) → source a·u + b·v + c, d·u + e·v + f, with
    integer pixel centres as in vigil (PIL uses centres at +0.5, hence the shift); black outside."""
    a, b, c, d, e, f = m
    data = (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))
    out = img.transform((size, size), Image.Transform.AFFINE, data,
                        resample=Image.Resampling.BILINEAR)
    x = (np.asarray(out, np.float32) - offset) * scale
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def fit_similarity(src, dst):
    """Least-squares similarity src → dst as (a, b, c, d, e, f) (image.rs fit_similarity)."""
    sm, dm = src.mean(0), dst.mean(0)
    s, t = src - sm, dst - dm
    den = (s ** 2).sum()
    pa = (s[:, 0] * t[:, 0] + s[:, 1] * t[:, 1]).sum() / den if den > 0 else 1.0
    pb = (s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum() / den if den > 0 else 0.0
    return (pa, -pb, dm[0] - pa * sm[0] + pb * sm[1], pb, pa, dm[1] - pb * sm[0] - pa * sm[1])


class Faces:
    """The four face models and FaceModels::observe."""

    def __init__(self, models):
        self.short = session(models, "mediapipe_face_detection_short_range.onnx")
        self.full = session(models, "mediapipe_face_detection_full_range.onnx")
        self.mesh = session(models, "mediapipe_face_landmark.onnx")
        self.dlib = session(models, "dlib_face_recognition_resnet_v1.onnx")
        # Short range: strides 8, 16, 16, 16 → 16×16 × 2 then 8×8 × 6 (896); full: 48×48 × 1.
        self.short_anchors = np.concatenate([grid(16, 2), grid(8, 6)])
        self.full_anchors = grid(48, 1)

    def detect_in(self, img, full, side, padx, pady):
        size = 192 if full else 128
        s = side / size
        x = warp(img, (s, 0, 0.5 * s - padx - 0.5, 0, s, 0.5 * s - pady - 0.5), size,
                 127.5, 1 / 127.5)
        if full:
            regs, logits = self.full.run(
                ["reshaped_regressor_face_4", "reshaped_classifier_face_4"], {"input": x})
            anc = self.full_anchors
        else:
            regs, logits = self.short.run(["regressors", "classificators"], {"input": x})
            anc = self.short_anchors
        score = 1 / (1 + np.exp(-np.clip(logits[0, :, 0], -80, 80)))
        keep = score >= 0.5
        r, a = regs[0][keep] / size, anc[keep]
        d = np.empty((len(r), 17), np.float32)
        d[:, 0] = score[keep]
        d[:, 1:3] = a + r[:, 0:2]
        d[:, 3:5] = r[:, 2:4]
        d[:, 5:] = np.tile(a, 6) + r[:, 4:16]
        d = weighted_nms(d, 0.3)
        if len(d) == 0:
            return d
        # Normalised input coordinates → frame pixels.
        d[:, 3:5] *= side
        xs = [1] + list(range(5, 17, 2))
        ys = [2] + list(range(6, 17, 2))
        d[:, xs] = d[:, xs] * side - padx
        d[:, ys] = d[:, ys] * side - pady
        w, h = img.size
        return d[(d[:, 1] > 0) & (d[:, 2] > 0) & (d[:, 1] < w) & (d[:, 2] < h)]

    def landmarks(self, img, det):
        cx, cy, bw, bh = det[1:5]
        (rex, rey), (lex, ley) = det[5:7], det[7:9]
        theta = math.atan2(ley - rey, lex - rex)
        s = 1.5 * max(bw, bh) / 192
        sin, cos = math.sin(theta), math.cos(theta)
        half = 96 - 0.5
        m = (s * cos, -s * sin, cx - 0.5 - s * (cos * half - sin * half),
             s * sin, s * cos, cy - 0.5 - s * (sin * half + cos * half))
        pts, presence = self.mesh.run(["conv2d_20", "conv2d_30"],
                                      {"input_1": warp(img, m, 192, 0.0, 1 / 255)})
        p = pts.reshape(468, 3).astype(np.float64)
        u, v = p[:, 0] - 0.5, p[:, 1] - 0.5
        lms = np.stack([m[0] * u + m[1] * v + m[2] + 0.5, m[3] * u + m[4] * v + m[5] + 0.5], 1)
        return lms, 1 / (1 + math.exp(-float(np.clip(presence.ravel()[0], -80, 80))))

    def embed(self, img, lms):
        k = CHIP / (1 + 2 * CHIP_PADDING)
        m = fit_similarity((CHIP_PADDING + DLIB_TEMPLATE) * k, lms[CHIP_LANDMARKS] - 0.5)
        x = warp(img, m, CHIP, DLIB_MEAN_RGB, 1 / 256)
        return self.dlib.run(["embedding"], {"input": x})[0][0]

    def observe(self, rgb):
        """Faces (rows as in weighted_nms, largest first), the primary face's embedding and mouth
        openness (None without landmarks)."""
        img = Image.fromarray(rgb)
        w, h = img.size
        side = max(w, h)
        found = [self.detect_in(img, full, side, (side - w) / 2, (side - h) / 2)
                 for full in (False, True)]
        dets = np.concatenate(found)
        for zoom in CENTRE_ZOOMS:
            if len(dets):
                break
            side = min(w, h) * zoom
            dets = self.detect_in(img, False, side, (side - w) / 2, (side - h) / 2)
        dets = weighted_nms(dets, 0.3)
        if len(dets) == 0:
            return dets, None, None
        dets = dets[np.lexsort((dets[:, 1], -(dets[:, 3] * dets[:, 4])))]
        lms, presence = self.landmarks(img, dets[0])
        if presence < 0.5:
            return dets, None, None
        width = np.linalg.norm(lms[78] - lms[308])
        mouth = np.linalg.norm(lms[13] - lms[14]) / width if width > 0 else None
        return dets, self.embed(img, lms), mouth


# --- audio -------------------------------------------------------------------------------------
def vad(sess, audio):
    """Silero VAD over every whole 512-sample step; speech flag per step (hysteresis)."""
    x = np.zeros((1, VAD_CONTEXT + VAD_STEP), np.float32)
    state = np.zeros((2, 1, 128), np.float32)
    sr = np.array(AUDIO_RATE, np.int64)
    speech, on = np.zeros(len(audio) // VAD_STEP, bool), False
    for i in range(len(speech)):
        x[0, :VAD_CONTEXT] = x[0, VAD_STEP:]
        x[0, VAD_CONTEXT:] = audio[i * VAD_STEP:(i + 1) * VAD_STEP]
        p, state = sess.run(["output", "stateN"], {"input": x, "state": state, "sr": sr})
        on = p[0, 0] >= (VAD_OFF if on else VAD_ON)
        speech[i] = on
    return speech


def mel_banks():
    """Kaldi mel weights [257, 80] computed in float32 as torchaudio's get_mel_banks (fbank.rs)."""
    f32 = np.float32
    mel_lo = 1127 * math.log(1 + 20 / 700)
    delta = f32((1127 * math.log(1 + 8000 / 700) - mel_lo) / (FBANK_BINS + 1))
    m = np.arange(FBANK_BINS, dtype=f32)[:, None]
    left, centre, right = ((m + f32(k)) * delta + f32(mel_lo) for k in (0, 1, 2))
    mel = f32(1127) * np.log(f32(1) + f32(AUDIO_RATE / PADDED) * np.arange(PADDED // 2, dtype=f32)
                             / f32(700))
    w = np.maximum(np.minimum((mel - left) / (centre - left), (right - mel) / (right - centre)), 0)
    return np.vstack([w.T.astype(np.float64), np.zeros((1, FBANK_BINS))])  # Nyquist bin: 0


class Voice:
    """CAM++ on Kaldi fbank + CMN windows of speech (voice.rs)."""

    def __init__(self, models):
        self.sess = session(models, "campplus_sv_zh_en_16k.onnx")
        self.banks = mel_banks()
        n = np.arange(FBANK_WINDOW)
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * n / (FBANK_WINDOW - 1))) ** 0.85

    def fbank(self, x):
        n = 1 + (len(x) - FBANK_WINDOW) // FBANK_SHIFT if len(x) >= FBANK_WINDOW else 0
        fr = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), FBANK_WINDOW)
        fr = fr[::FBANK_SHIFT][:n]
        fr = fr - fr.mean(1, keepdims=True)
        pre = fr - 0.97 * np.concatenate([fr[:, :1], fr[:, :-1]], 1)
        spec = np.fft.rfft(pre * self.window, PADDED)
        power = spec.real ** 2 + spec.imag ** 2
        return np.log(np.maximum(power @ self.banks, np.finfo(np.float32).eps)).astype(np.float32)

    def embed_speech(self, audio, speech):
        """Windows of 94 speech steps side by side (+ one final window of the last 94 steps from
        half a window on), batched by 8 → L2-normalised CAM++ embeddings."""
        steps = np.flatnonzero(speech)
        n = len(steps)
        starts = [k * HOP_STEPS for k in range(n // HOP_STEPS)] if n >= WINDOW_STEPS else []
        if n > WINDOW_STEPS and (n - WINDOW_STEPS) % HOP_STEPS >= WINDOW_STEPS // 2:
            starts.append(n - WINDOW_STEPS)
        feats = []
        for s in starts:
            idx = (steps[s:s + WINDOW_STEPS, None] * VAD_STEP + np.arange(VAD_STEP)).ravel()
            f = self.fbank(np.nan_to_num(audio[idx], nan=0.0, posinf=0.0, neginf=0.0))
            feats.append(f - f.mean(0, dtype=np.float64).astype(np.float32))
        out = []
        for b in range(0, len(feats), BATCH):
            e = self.sess.run(["embedding"], {"feats": np.stack(feats[b:b + BATCH])})[0]
            out.append(e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out) if out else np.zeros((0, 192), np.float32)


# --- driver ------------------------------------------------------------------------------------
class Sampler:
    """Which decoded frames are kept: all (keyframes) or the first at/after each due time."""

    def __init__(self, sampling):
        self.interval = None if sampling == "keyframes" else int(float(sampling.rstrip("s")) * 1e9)
        self.due = 0

    def keep(self, t):
        if self.interval is None:
            return True
        pts = int(round((t or 0.0) * 1e9))
        if pts + self.interval < self.due - self.interval:
            self.due = 0  # timestamps went back: restart the grid
        if pts + SAMPLING_TOLERANCE_NS >= self.due:
            self.due = pts + max(self.interval - SAMPLING_TOLERANCE_NS, 1)
            return True
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("media")
    ap.add_argument("--sampling", choices=["keyframes", "1s", "2s"], default="1s")
    ap.add_argument("--models", required=True)
    ap.add_argument("--dump", help="write face and voice embeddings to this .npz (for checks)")
    args = ap.parse_args()
    stage = dict.fromkeys(["load", "decode_video", "face", "decode_audio", "vad", "voice"], 0.0)
    t0 = time.perf_counter()
    faces = Faces(args.models)
    silero = session(args.models, "silero_vad.onnx")
    voice = Voice(args.models)
    stage["load"] = time.perf_counter() - t0

    container = av.open(args.media)
    vs = container.streams.video[0] if container.streams.video else None
    as_ = container.streams.audio[0] if container.streams.audio else None
    if vs is not None:
        vs.codec_context.thread_count = 1
        if args.sampling == "keyframes":
            vs.codec_context.skip_frame = "NONKEY"
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    sampler = Sampler(args.sampling)
    chunks, frames, n_faces, with_face, face_t, face_e = [], 0, 0, 0, [], []

    def on_video(packet):
        nonlocal frames, n_faces, with_face
        t0 = time.perf_counter()
        kept = [(f.time, f.to_ndarray(format="rgb24")) for f in packet.decode()
                if sampler.keep(f.time)]
        t1 = time.perf_counter()
        stage["decode_video"] += t1 - t0
        for t, rgb in kept:
            dets, emb, _mouth = faces.observe(rgb)
            frames += 1
            n_faces += len(dets)
            with_face += len(dets) > 0
            if emb is not None:
                face_t.append(t)
                face_e.append(emb)
        stage["face"] += time.perf_counter() - t1

    def on_audio(packet):
        t0 = time.perf_counter()
        for f in packet.decode():
            chunks.extend(r.to_ndarray()[0] for r in resampler.resample(f))
        if packet.size == 0:  # the stream's flush packet: drain the resampler
            chunks.extend(r.to_ndarray()[0] for r in resampler.resample(None))
        stage["decode_audio"] += time.perf_counter() - t0

    for packet in container.demux([s for s in (vs, as_) if s is not None]):
        (on_video if packet.stream is vs else on_audio)(packet)
    container.close()

    t0 = time.perf_counter()
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    speech = vad(silero, audio)
    t1 = time.perf_counter()
    voice_e = voice.embed_speech(audio, speech)
    t2 = time.perf_counter()
    stage["vad"], stage["voice"] = t1 - t0, t2 - t1

    if args.dump:
        np.savez(args.dump, face_t=np.array(face_t), face_e=np.array(face_e), voice_e=voice_e,
                 speech=speech)
    print(json.dumps({
        "frames": frames, "faces": n_faces, "frames_with_face": with_face,
        "embeddings_face": len(face_e), "speech_s": round(speech.sum() * VAD_STEP / AUDIO_RATE, 3),
        "voice_windows": len(voice_e), "audio_s": round(len(audio) / AUDIO_RATE, 3),
        "stage_s": {k: round(v, 3) for k, v in stage.items()},
        "wall_s": round(time.perf_counter() - T_START, 3),
        "cpu_s": round(time.process_time(), 3),
    }))


if __name__ == "__main__":
    main()
