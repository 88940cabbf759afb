#!/usr/bin/env bash
# The README's main command: the live demo at http://127.0.0.1:8765, built the fast way.
#
#   ./scripts/demo.sh [DEMO OPTIONS...]     e.g. ./scripts/demo.sh --scene paint --open
#
# OpenH264 (the default encoder) is only fast with its assembly, and its build silently drops
# the assembly when `nasm` is missing (measured: 5.3 ms of CPU per 720p30 frame instead of 3.0).
# Cargo cannot install a system package, and does not rebuild OpenH264 when nasm appears later,
# so this script does both:
#   1. on x86, installs nasm with apt-get (sudo when not root) when it is missing;
#   2. builds the release binary;
#   3. asks the binary itself whether its OpenH264 has the assembly (`doctor --require-assembly`
#      calls into the linked library); if not and nasm is now here, rebuilds only OpenH264;
#   4. runs `framecast demo` with your options.
# Everything after the script name goes to `framecast demo` (see `./scripts/demo.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'demo.sh: %s\n' "$*" >&2; }

install_nasm() {
    command -v nasm >/dev/null 2>&1 && return 0
    case "$(uname -m)" in x86_64 | i?86) ;; *) return 0 ;; esac # ARM assembles NEON with cc
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else sudo=(false); fi
    fi
    if command -v apt-get >/dev/null 2>&1; then
        say "installing nasm (OpenH264's assembly; without it encoding is ~2-3x slower)"
        if { "${sudo[@]}" apt-get install -y -q nasm >/dev/null 2>&1 ||
            { "${sudo[@]}" apt-get update -q >/dev/null 2>&1 &&
                "${sudo[@]}" apt-get install -y -q nasm >/dev/null 2>&1; }; }; then
            return 0
        fi
    fi
    say "WARNING: could not install nasm here; install it (apt-get install nasm / brew install nasm /"
    say "dnf install nasm) and run this again for the fast build. Continuing with the slow one."
}

build() {
    cargo build --release --bin framecast
}

install_nasm
build
bin=target/release/framecast
if ! "$bin" doctor --require-assembly >/dev/null 2>&1; then
    if command -v nasm >/dev/null 2>&1; then
        say "the existing OpenH264 build predates nasm: rebuilding OpenH264 with its assembly"
        cargo clean --release -p openh264-sys2
        build
    fi
    "$bin" doctor --require-assembly >&2 || say "continuing with the slow build"
fi
exec "$bin" demo "$@"
