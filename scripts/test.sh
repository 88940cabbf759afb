#!/usr/bin/env bash
# framecast's one test command: installs what the tests need (when missing), then runs the
# format check, clippy, every test of the workspace and a short fuzz run.
#
#   ./scripts/test.sh                 # everything
#   FUZZ_SECONDS=0 ./scripts/test.sh  # skip fuzzing
#
# CI (.ci/run) calls exactly this on a clean clone.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the run has taken so far (bash's SECONDS), so a slow CI run shows where.
step() { printf '\n==> %s [%d s]\n' "$*" "$SECONDS"; }

# --- system packages -------------------------------------------------------------------------
# nasm: OpenH264's x86 assembly (without it, encoding is ~3x slower; build.rs warns).
# ffmpeg: ffprobe/ffmpeg decode and inspect our output in the tests.
# chromium: headless browser tests (our MP4 in <video>, the WebCodecs viewer).
# mesa-vulkan-drivers + libvulkan1: lavapipe, Vulkan on the CPU, for the wgpu conversion tests.
need=()
command -v nasm >/dev/null 2>&1 || need+=(nasm)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
# node + npm: the browser test harness (playwright-core driving the system Chromium).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# python3 venv: the pdum.rfb 0.3 peer server, ruff, and the Python package's tests.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# libavcodec/libavformat headers, pkg-config and libclang (bindgen): the `libav` feature, whose
# libavcodec decoder the remote service uses for Main/High profile streams with B-frames.
pkg-config --exists libavcodec libavformat libavutil 2>/dev/null || need+=(libavcodec-dev libavformat-dev libavutil-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# (libclang itself: Debian ships libclang-cpp.so with clang's C++ tools, which bindgen cannot use.)
ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so' || need+=(libclang-dev)
# libx264-dev: the `x264` backend (GPL, off by default) links the system libx264; its bindings
# are generated from x264.h with bindgen (libclang, above).
pkg-config --exists x264 2>/dev/null || need+=(libx264-dev)
# iproute2 (ip, tc): the two-namespace network of the slow-link test.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  step "installing system packages: ${need[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "error: need ${need[*]} and cannot install them without root; run: apt-get install -y ${need[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- toolchain components ----------------------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One test run builds each crate once: incremental caches would only add gigabytes to target/.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Disk: a run from a clean clone writes several gigabytes (target/, .venv, moq-relay, the fuzz
# build). A full disk shows up as a linker killed by SIGBUS, so say how much there is up front
# and how much was used at each step that builds.
disk_report() {
  local free used
  free=$(df -Pk . | awk 'NR==2 { printf "%.1f", $4 / 1048576 }')
  # (no target/ yet on a clean clone: du fails, and pipefail would end the script)
  used=$(du -sk target 2>/dev/null | awk '{ printf "%.1f", $1 / 1048576 }') || used=0
  printf 'disk: %s GiB free, target/ %s GiB (%s)\n' "$free" "$used" "$1"
}
disk_report "start"
if [ "$(df -Pk . | awk 'NR==2 { print $4 }')" -lt $((12 * 1048576)) ]; then
  echo "warning: less than 12 GiB free here; a full test run from a clean clone needs about that much" >&2
fi
# Mesa's Vulkan loader complains on every start when this is unset (CI has no login session).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "structure: no two source files import each other"
python3 scripts/check-structure.py

# Python tools in .venv/: ruff and mypy (its stubtest checks _native.pyi against the built
# extension), the Python package's test dependencies, and JupyterLab + anywidget for the
# widget's browser test.
# aiortc: a WebRTC stack of its own, the WHIP endpoint of the WHIP tests.
if [ ! -x .venv/bin/ruff ] ||
   ! .venv/bin/python -c 'import pytest, pytest_timeout, av, websockets, PIL, mypy, jupyterlab, anywidget, aiortc' 2>/dev/null; then
  step "creating .venv (ruff, mypy, pytest, pytest-timeout, PyAV, websockets, Pillow, JupyterLab, anywidget, aiortc)"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q ruff==0.17.6 mypy "pytest>=7" "pytest-timeout>=2" "av>=12" "websockets>=12" "pillow>=9" \
    "numpy>=1.21" jupyterlab "anywidget>=0.9" "aiortc>=1.9"
fi
step "ruff (Python code)"
.venv/bin/ruff check scripts python
.venv/bin/ruff format --check scripts python

# Clippy on the default feature set and on everything (gpu, and videotoolbox, which compiles
# to nothing off macOS); the tests run once, on the build with every feature.
step "cargo clippy (all targets, default features, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

# moq-relay, the Media over QUIC relay the MoQ tests publish through (two of them clustered on
# loopback), built from crates.io once into .tools/ (cached; CI's clean clone builds it). A debug
# build (half the compile time of a release one, and the tests' 320x240 streams need no more),
# without debug info (167 s here against 223 s with it).
MOQ_RELAY_VERSION=0.17.8
MOQ_RELAY="$PWD/.tools/moq-relay/bin/moq-relay"
if ! "$MOQ_RELAY" --version 2>/dev/null | grep -qx "moq-relay $MOQ_RELAY_VERSION"; then
  step "cargo install --locked moq-relay $MOQ_RELAY_VERSION (into .tools/moq-relay, once)"
  CARGO_PROFILE_DEV_DEBUG=false \
    cargo install --locked --debug --quiet moq-relay --version "$MOQ_RELAY_VERSION" --root .tools/moq-relay
fi
export MOQ_RELAY

step "cargo test (workspace, all features)"
# nasm was installed above, so the build must have OpenH264's assembly (a test checks the binary);
# moq-relay too, so the relay tests run rather than skip.
FRAMECAST_REQUIRE_ASM=1 FRAMECAST_REQUIRE_MOQ_RELAY=1 cargo test --workspace --all-features --locked

disk_report "after cargo test"
# The Python tests, the browser tests and the network smokes drive the CLI and the `probe`
# example that `cargo test` just built (with every feature) and placed in target/debug. Building
# them again on their own (`cargo build -p framecast-cli`) would resolve the dependencies'
# features for that package alone and compile much of the tree a second time (2 min each here).
for bin in target/debug/framecast target/debug/examples/probe; do
  [ -x "$bin" ] || { echo "error: cargo test did not leave $bin" >&2; exit 1; }
done
# The README's `pip install ./python`, with the dev profile: unoptimised like the build above
# (whose dependencies it reuses where their features agree) rather than everything again
# optimised (MATURIN_PEP517_ARGS reaches maturin through pip).
step "Python package: pip install ./python, then pytest"
MATURIN_PEP517_ARGS="--profile dev" .venv/bin/pip install -q ./python
# --timeout: a test that hangs fails after 5 min with its stack, instead of running out CI's clock.
FRAMECAST_REQUIRE_MOQ_RELAY=1 FRAMECAST_BIN="$PWD/target/debug/framecast" .venv/bin/pytest -q --timeout=300 python/tests
step "Python package: the .pyi stubs match the extension (stubtest), types check (mypy)"
(cd /tmp && "$OLDPWD/.venv/bin/python" -m mypy.stubtest framecast._native)
.venv/bin/python -m mypy python/framecast

step "browser tests (headless Chromium: viewer, WebCodecs and image transports, pdum.rfb 0.3 both ways, Jupyter widget, MoQ player over WebTransport)"
# The Python package's browser tests (the Jupyter widget in JupyterLab, the pdum.rfb drop-in
# programs) fail rather than skip here: the steps above installed what they need.
FRAMECAST_REQUIRE_JUPYTER=1 FRAMECAST_REQUIRE_PYTHON=1 FRAMECAST_REQUIRE_MOQ_RELAY=1 \
  FRAMECAST_BIN="$PWD/target/debug/framecast" scripts/browser-test.sh

step "slow-link and congestion-control smokes (two network namespaces, tc tbf, delay relay; skipped without the privileges)"
# Each takes about half a minute here; the bound turns a hang into a failure that names the script.
for smoke in scripts/slowlink-smoke.sh scripts/netsmoke.sh; do
  rc=0
  FRAMECAST_BIN="$PWD/target/debug/framecast" PROBE_BIN="$PWD/target/debug/examples/probe" \
    timeout -k 20 600 "$smoke" || rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "error: $smoke did not finish within 600 s" >&2; fi
  [ "$rc" = 0 ] || exit "$rc"
done

disk_report "before the macOS check"
step "macOS compile check (aarch64-apple-darwin, videotoolbox + gpu)"
scripts/check-macos.sh

if [ "${FUZZ_SECONDS:-10}" != "0" ]; then
  step "fuzz smoke (${FUZZ_SECONDS:-10}s per target)"
  # Unoptimised fuzz build: it compiles in half the time (69 s against 133 s here); a smoke of
  # 10 s per target from the seeds does not need the speed. Longer campaigns: see fuzz-smoke.sh.
  FUZZ_PROFILE="${FUZZ_PROFILE:-dev}" FUZZ_SECONDS="${FUZZ_SECONDS:-10}" scripts/fuzz-smoke.sh
fi

disk_report "end"
step "all checks passed in $((SECONDS / 60)) min $((SECONDS % 60)) s"
