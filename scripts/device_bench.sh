#!/usr/bin/env bash
# Benchmarks on the lent GPU machine (the `device` tool; ../shared/device/README.md), in one call.
#
#   bash scripts/device_bench.sh prepare   # here: build hydra, fetch the Vulkan loader, stage both
#   (device tool) run  command: bash scripts/device_bench.sh run   carry: [".gl", ".dev"]
#
# `run` installs the loader there, points it at the NVIDIA driver, and writes to $OUT:
# info.txt (`hydra info`), bench.jsonl (every kernel, the training step, its scaling) and, when
# PyTorch is there, torch.jsonl (../shared/device/torch_peer.py: the same matmuls and step).
# Put the figures, with the adapter's name from info.txt, in README's Benchmarks section.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
    grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >>.git/info/exclude
    grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo /.dev/ >>.git/info/exclude
    mkdir -p .gl .dev /tmp/amd64/partial
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    apt-get "${o[@]}" update -qq
    (cd .gl && apt-get "${o[@]}" download libvulkan1)
    cargo build --release
    cp target/release/hydra .dev/
    if [ -f ../shared/device/torch_peer.py ]; then cp ../shared/device/torch_peer.py .dev/; fi
    ls -l .gl .dev
    ;;
run)
    out="${OUT:?run this through the device tool, which sets OUT}"
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    export VK_DRIVER_FILES="${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}"
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
    .dev/hydra info | tee "$out/info.txt"
    .dev/hydra bench --json --scaling --sizes 64,128,256,512,1024,2048 | tee "$out/bench.jsonl"
    if [ -f .dev/torch_peer.py ]; then python3 .dev/torch_peer.py | tee "$out/torch.jsonl" || true; fi
    ;;
*)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
