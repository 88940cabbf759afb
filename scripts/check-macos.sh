#!/usr/bin/env bash
# Compile-check the workspace for macOS (aarch64-apple-darwin) with the VideoToolbox backend, so
# CI fails as soon as the macOS-only code stops compiling. No Mac needed: `cargo check` and
# `cargo clippy` type-check without linking.
#
#   ./scripts/check-macos.sh
#
# * --no-default-features: OpenH264 is a C build that cannot be cross-compiled here.
# * features: `videotoolbox` and `gpu` on every workspace package that defines them (found through
#   `cargo metadata`): today framecast-encode/videotoolbox and framecast-cli/videotoolbox.
# * Separate target dir (target/macos-check) so the host build is not disturbed.
# * Toolchain: `rustup target add aarch64-apple-darwin`; if rustup cannot fetch the target,
#   Debian's rustc-web/cargo-web/rust-web-src/rust-web-clippy with RUSTC_BOOTSTRAP=1 and
#   -Zbuild-std.
# * FRAMECAST_MACOS_CHECK_EXCLUDE="pkg1 pkg2": leave workspace packages out (e.g. one with a C
#   dependency that cannot be cross-compiled); say why in the CI configuration. framecast-py (the
#   Python extension) is always left out: PyO3's build script needs a macOS Python to describe
#   the target interpreter, and the extension has no macOS-only code of its own.
#   framecast-x264-sys is always left out too: it links the host's libx264 through pkg-config,
#   which refuses to describe another target (the x264 feature is off by default anyway).
#   framecast-moq is left out as well: its QUIC stack's TLS (rustls with ring) compiles C and
#   assembly in its build script, which needs a compiler for the Apple target; the crate has no
#   platform code (the CLI's `moq` feature, on by default, is off here with the defaults).
#   framecast-whip likewise: its HTTPS client's rustls uses aws-lc (C); the CLI's `whip`
#   feature is off here with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-apple-darwin
TARGET_DIR=target/macos-check
step() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else
    echo "error: need root to run: $*" >&2
    return 1
  fi
}

# --- toolchain ---------------------------------------------------------------------------------
cargo_cmd=(cargo)
clippy_cmd=(cargo clippy)
build_std=()
if command -v rustup >/dev/null 2>&1 &&
   { rustup target list --installed 2>/dev/null | grep -qx "$TARGET" ||
     rustup target add "$TARGET"; }; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
else
  step "rustup cannot provide $TARGET: using Debian's rustc-web with -Zbuild-std"
  need=()
  for pkg in rustc-web cargo-web rust-web-src rust-web-clippy; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  export PATH="/usr/bin:$PATH"
  export RUSTC_BOOTSTRAP=1
  cargo_cmd=(/usr/bin/cargo)
  # Not `cargo clippy`: cargo looks for subcommands in $CARGO_HOME/bin first, which would run
  # rustup's clippy against a sysroot without the std sources.
  clippy_cmd=(/usr/bin/cargo-clippy clippy)
  build_std=(-Zbuild-std=std,panic_abort)
fi

# --- features ----------------------------------------------------------------------------------
FRAMECAST_MACOS_CHECK_EXCLUDE="framecast-py framecast-x264-sys framecast-moq framecast-whip ${FRAMECAST_MACOS_CHECK_EXCLUDE:-}"
exclude=()
for pkg in $FRAMECAST_MACOS_CHECK_EXCLUDE; do
  exclude+=(--exclude "$pkg")
done
# `videotoolbox` and `gpu` on every checked workspace member that defines them (`gpu` does not
# exist yet; it is picked up when it lands).
features=$("${cargo_cmd[@]}" metadata --no-deps --format-version 1 |
  FRAMECAST_MACOS_CHECK_EXCLUDE="$FRAMECAST_MACOS_CHECK_EXCLUDE" python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
skip = set(os.environ["FRAMECAST_MACOS_CHECK_EXCLUDE"].split())
print(",".join(
    p["name"] + "/" + f
    for p in meta["packages"] if p["id"] in members and p["name"] not in skip
    for f in ("videotoolbox", "gpu") if f in p["features"]
))
')
case ",$features," in
  *,framecast-encode/videotoolbox,*) ;;
  *) echo "error: framecast-encode has no videotoolbox feature (features found: ${features:-none})" >&2; exit 1 ;;
esac

args=(--workspace "${exclude[@]}" --target "$TARGET" --target-dir "$TARGET_DIR"
      --no-default-features --features "$features" "${build_std[@]}")
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "cargo check for $TARGET (features: $features)"
"${cargo_cmd[@]}" check "${args[@]}"

step "cargo clippy for $TARGET (-D warnings)"
"${clippy_cmd[@]}" "${args[@]}" -- -D warnings

# framecast-encode's unit tests (the VideoToolbox shared code's included) as a Mac compiles them
# for `cargo test -p framecast-encode --features videotoolbox`.
step "cargo clippy framecast-encode unit tests for $TARGET (-D warnings)"
"${clippy_cmd[@]}" -p framecast-encode --lib --profile test --target "$TARGET" \
  --target-dir "$TARGET_DIR" --no-default-features --features videotoolbox "${build_std[@]}" \
  -- -D warnings

step "macOS check passed"
