#!/usr/bin/env python3
"""Reference numbers for the face pipeline's parity tests (ONNX Runtime + OpenCV), written as small text fixtures.

The Rust pipeline (tract) must give the same embeddings as ONNX Runtime on the same crops (cosine >= 0.9999) and the
same detections on the same detector input. This script computes the reference side on inputs that both sides can
derive exactly from `../shared/data/faces`:

- `embed`: the centre 112x112 crop of each `faceapi-bbt/<name>/<name>1.png` (150x150 grey, so decoding is exact),
  fed to SFace as R=G=B; plus one colour JPEG crop (decoders may differ by one grey level, so its tolerance is looser).
- `detect`: the same PNGs padded (bottom/right, zeros) to 160x160, fed to YuNet as BGR 0..255; the best face's box,
  five landmarks and score after the OpenCV FaceDetectorYN post-processing.

Run (a venv under /tmp keeps the system clean):
    python3 -m venv /tmp/face-venv && /tmp/face-venv/bin/pip install onnxruntime numpy opencv-python-headless
    /tmp/face-venv/bin/python scripts/face_reference.py > matcher/src/face/fixtures/reference.txt

- `pipeline`: `faceapi-bbt/<name>/<name>2.png` end to end as OpenCV does it (FaceDetectorYN at the photo's size,
  FaceRecognizerSF.alignCrop), embedded by ONNX Runtime: the Rust pipeline (without anti-aliasing) must agree closely
  (interpolation details differ, so the tolerance is looser).

Output lines: `embed <file> <x0> <y0> <v0> .. <v127>`, `detect <file> <score> <x> <y> <w> <h> <lx0> <ly0> .. <ly4>`
and `pipeline <file> <v0> .. <v127>`.
"""

import os
import sys

import cv2
import numpy as np
import onnxruntime as ort

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.environ.get("HOTSPOT_MODELS_DIR", os.path.join(REPO, "models"))
DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "faces")
NAMES = ["amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"]
COLOUR = ("deepface-pairs/img1.jpg", 680, 600)  # (file, x0, y0) of a 112x112 colour patch on the face


def session(name):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(os.path.join(MODELS, name), opts, providers=["CPUExecutionProvider"])


def embed(sface, rgb):
    blob = rgb.astype(np.float32).transpose(2, 0, 1)[None]
    out = sface.run(None, {"data": blob})[0][0]
    return out / np.linalg.norm(out)


def detect(yunet, bgr, score_threshold=0.5):
    """YuNet forward pass and OpenCV's FaceDetectorYN decoding (before NMS: the best face is the max score)."""
    h, w = bgr.shape[:2]
    blob = bgr.astype(np.float32).transpose(2, 0, 1)[None]
    outs = dict(zip([o.name for o in yunet.get_outputs()], yunet.run(None, {"input": blob})))
    best = None
    for stride in (8, 16, 32):
        cols, rows = w // stride, h // stride
        cls = np.clip(outs[f"cls_{stride}"][0, :, 0], 0, 1)
        obj = np.clip(outs[f"obj_{stride}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        bbox, kps = outs[f"bbox_{stride}"][0], outs[f"kps_{stride}"][0]
        for idx in np.nonzero(score >= score_threshold)[0]:
            r, c = divmod(int(idx), cols)
            cx, cy = (c + bbox[idx, 0]) * stride, (r + bbox[idx, 1]) * stride
            bw, bh = np.exp(bbox[idx, 2]) * stride, np.exp(bbox[idx, 3]) * stride
            lm = [((kps[idx, 2 * n] + c) * stride, (kps[idx, 2 * n + 1] + r) * stride) for n in range(5)]
            face = (float(score[idx]), cx - bw / 2, cy - bh / 2, bw, bh, lm)
            if best is None or face[0] > best[0]:
                best = face
        assert rows * cols == cls.shape[0]
    return best


def main():
    sface = session("face_recognition_sface_2021dec.onnx")
    yunet = session("face_detection_yunet_2023mar.onnx")
    for name in NAMES:
        rel = f"faceapi-bbt/{name}/{name}1.png"
        grey = cv2.imread(os.path.join(DATA, rel), cv2.IMREAD_GRAYSCALE)
        x0, y0 = (grey.shape[1] - 112) // 2, (grey.shape[0] - 112) // 2
        crop = np.repeat(grey[y0 : y0 + 112, x0 : x0 + 112, None], 3, axis=2)
        vec = embed(sface, crop)
        print("embed", rel, x0, y0, " ".join(f"{v:.7g}" for v in vec))

        padded = np.zeros((160, 160, 3), np.uint8)
        padded[: grey.shape[0], : grey.shape[1]] = grey[:, :, None]
        score, x, y, w, h, lm = detect(yunet_for(160, 160), padded)
        flat = " ".join(f"{a:.3f} {b:.3f}" for a, b in lm)
        print("detect", rel, f"{score:.5f} {x:.3f} {y:.3f} {w:.3f} {h:.3f}", flat)

    # End to end as OpenCV does it (FaceDetectorYN at the photo's size, alignCrop), SFace by ONNX Runtime.
    detector = cv2.FaceDetectorYN.create(os.path.join(MODELS, "face_detection_yunet_2023mar.onnx"), "", (150, 150))
    recogniser = cv2.FaceRecognizerSF.create(os.path.join(MODELS, "face_recognition_sface_2021dec.onnx"), "")
    for name in NAMES:
        rel = f"faceapi-bbt/{name}/{name}2.png"
        bgr = cv2.imread(os.path.join(DATA, rel), cv2.IMREAD_COLOR)
        detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        faces = detector.detect(bgr)[1]
        best = faces[np.argmax(faces[:, 14])]
        crop = cv2.cvtColor(recogniser.alignCrop(bgr, best), cv2.COLOR_BGR2RGB)
        vec = embed(sface, crop)
        print("pipeline", rel, " ".join(f"{v:.7g}" for v in vec))

    rel, x0, y0 = COLOUR
    bgr = cv2.imread(os.path.join(DATA, rel), cv2.IMREAD_COLOR)
    crop = cv2.cvtColor(bgr[y0 : y0 + 112, x0 : x0 + 112], cv2.COLOR_BGR2RGB)
    vec = embed(sface, crop)
    print("embed", rel, x0, y0, " ".join(f"{v:.7g}" for v in vec))


_YUNET = {}


def yunet_for(w, h):
    """YuNet with its input resized to (h, w): the graph's reshapes are shape-agnostic, only the declared input is not."""
    import onnx

    if (w, h) not in _YUNET:
        model = onnx.load(os.path.join(MODELS, "face_detection_yunet_2023mar.onnx"))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_value, dims[3].dim_value = h, w
        for out in model.graph.output:
            out.type.tensor_type.ClearField("shape")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        _YUNET[(w, h)] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return _YUNET[(w, h)]


if __name__ == "__main__":
    sys.exit(main())
