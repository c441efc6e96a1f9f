#!/usr/bin/env bash
# Builds the page's wasm front into web/pkg: the library and web/src for wasm32, then
# wasm-bindgen's JavaScript glue. Needs wasm-bindgen-cli at the version web/Cargo.toml pins
# for the wasm-bindgen crate: cargo install wasm-bindgen-cli --version 0.2.130
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' web/Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$want" ]; then
  echo "web/build.sh: wasm-bindgen-cli $want is needed (found: ${have:-none}); cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
target=${CARGO_TARGET_DIR:-target}
cargo build --release --target wasm32-unknown-unknown -p hydra-web
wasm-bindgen --target web --no-typescript --out-dir web/pkg "$target/wasm32-unknown-unknown/release/hydra_web.wasm"
echo "web/build.sh: built web/pkg ($(du -h web/pkg/hydra_web_bg.wasm | cut -f1) of wasm); serve with: python3 -m http.server -d web 8000"
