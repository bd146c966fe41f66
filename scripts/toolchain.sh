# shellcheck shell=bash
# Shared by scripts/test and scripts/develop: builds (once) and enters the Python
# environments for the Home Assistant versions we support.
#
# Home Assistant 2026.3+ needs Python >= 3.14.2 and these machines have 3.13.0 at most,
# so each target lives in a Debian root filesystem (mmdebstrap) with Debian's Python,
# influxd and a compiler, kept under $HA_INGESTOR_CACHE and reused while its recipe and
# requirements_test.txt are unchanged. Everything is entered through a private mount and
# PID namespace, so no mount or process outlives the command, even when it is killed.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${HA_INGESTOR_CACHE:-/var/cache/ha-ingestor}"
DEBIAN_MIRROR="${HA_INGESTOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# target -> "suite python phcc homeassistant"
declare -A TARGETS=(
  [current]="forky python3.14 0.13.375 2026.10.4"
  [minimum]="trixie python3.13 0.13.316 2026.2.3"
)
# influxdb 1.6.7 is only packaged in bookworm and sid; its binary needs nothing but libc.
INFLUX_SUITE="bookworm"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

target_field() { # target index
  local -a f
  read -r -a f <<<"${TARGETS[$1]}"
  echo "${f[$2]}"
}

recipe_hash() { # target -> hash of everything that shapes the root filesystem
  echo "${TARGETS[$1]} $INFLUX_SUITE $ROOT_PACKAGES $ROOT_RECIPE" | sha256sum | cut -c1-12
}

venv_hash() { # target -> hash of what shapes the virtual environment
  { echo "${TARGETS[$1]}"; cat "$REPO/requirements_test.txt"; } | sha256sum | cut -c1-12
}

root_dir() { echo "$CACHE/root-$1-$(recipe_hash "$1")"; }

# Bump ROOT_RECIPE when build_root changes what ends up in a root.
ROOT_RECIPE=1
ROOT_PACKAGES="ca-certificates,gcc,g++,libc6-dev,influxdb,procps"
build_root() { # target root
  local target=$1 root=$2 suite py tmp
  suite=$(target_field "$target" 0)
  py=$(target_field "$target" 1)
  tmp="$root.partial"
  rm -rf --one-file-system "$tmp"
  log "$target: building a Debian $suite root with $py (about a minute)"
  # Its own mounts (proc, dev inside the new root) die with the namespace if it is interrupted.
  unshare --mount --propagation private mmdebstrap --variant=minbase --quiet \
    --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
    --include="$py,$py-venv,$py-dev,$ROOT_PACKAGES" \
    "$suite" "$tmp" \
    "deb $DEBIAN_MIRROR $suite main" "deb $DEBIAN_MIRROR $INFLUX_SUITE main"
  mv "$tmp" "$root"
}

ensure_prerequisites() {
  local missing=()
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v unshare >/dev/null || missing+=(util-linux)
  if ((${#missing[@]})); then
    log "installing ${missing[*]} on the host"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Files a package client needs inside the root: DNS and pip's index and CA settings.
# They are copied by path, never read out.
sync_host_config() { # root
  local root=$1 f cert
  for f in /etc/resolv.conf /etc/pip.conf; do
    [ -e "$f" ] && install -D -m 0644 "$f" "$root$f"
  done
  for cert in "${PIP_CERT:-}" "$(sed -n 's/^[[:space:]]*cert[[:space:]]*=[[:space:]]*//p' /etc/pip.conf 2>/dev/null | head -n1)"; do
    [ -n "$cert" ] && [ -f "$cert" ] && install -D -m 0644 "$cert" "$root$cert"
  done
  return 0
}

# Run a command inside the root of a target, with the checkout bound at the same path.
# Extra bind mounts: HA_INGESTOR_BINDS="path1 path2".
in_root() { # target command...
  local target=$1 root
  shift
  root=$(root_dir "$target")
  local binds="$REPO ${HA_INGESTOR_BINDS:-}"
  local pip_cert_env=""
  [ -n "${PIP_CERT:-}" ] && pip_cert_env="PIP_CERT=$PIP_CERT"
  # shellcheck disable=SC2016
  unshare --mount --pid --fork --kill-child --propagation private bash -c '
    set -euo pipefail
    root=$1; binds=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --make-rslave "$root/dev"
    for b in $binds; do
      [ -e "$b" ] || continue
      mkdir -p "$root$b"
      mount --bind "$b" "$root$b"
    done
    exec chroot "$root" "$@"
  ' in_root "$root" "$binds" env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 CI="${CI:-}" ${pip_cert_env:+"$pip_cert_env"} "$@"
}

ensure_venv() { # target
  local target=$1 root py ha want have
  root=$(root_dir "$target")
  py=$(target_field "$target" 1)
  ha=$(target_field "$target" 3)
  want=$(venv_hash "$target")
  have=$(cat "$root/opt/venv/.requirements-hash" 2>/dev/null || true)
  [ "$want" = "$have" ] && return 0
  log "$target: installing Home Assistant $ha test requirements (about 90 s)"
  in_root "$target" bash -euo pipefail -c '
    py=$1; ha=$2; repo=$3; hash=$4
    rm -rf /opt/venv /tmp/ha-wheel
    "$py" -m venv /opt/venv
    /opt/venv/bin/pip install --quiet --upgrade pip
    # Home Assistant'"'"'s own pins make the resolve fast and give exactly its versions.
    /opt/venv/bin/pip download --quiet --no-deps --dest /tmp/ha-wheel "homeassistant==$ha"
    /opt/venv/bin/python -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(\"/opt/constraints.txt\", \"wb\").write(z.read(\"homeassistant/package_constraints.txt\"))" /tmp/ha-wheel/homeassistant-*.whl
    /opt/venv/bin/pip install --quiet --constraint /opt/constraints.txt --requirement "$repo/requirements_test.txt"
    /opt/venv/bin/python -m compileall -q /opt/venv/lib >/dev/null || true
    rm -rf /tmp/ha-wheel
    echo "$hash" > /opt/venv/.requirements-hash
  ' ensure_venv "$py" "$ha" "$REPO" "$want"
}

ensure_target() { # target
  local target=$1 root
  root=$(root_dir "$target")
  mkdir -p "$CACHE"
  (
    flock 9
    [ -d "$root" ] || build_root "$target" "$root"
    # Roots of an older recipe are dead weight. Best effort: a run still inside one keeps it
    # alive until a later set-up.
    for old in "$CACHE"/root-"$target"-*; do
      [ "$old" = "$root" ] || [ ! -d "$old" ] && continue
      case "$old" in *.partial) continue ;; esac
      if [ -z "$(findmnt -R -n -o TARGET --list | grep -F "$old" || true)" ]; then
        rm -rf --one-file-system "$old" 2>/dev/null || log "$target: left $old (still in use)"
      fi
    done
    sync_host_config "$root"
    ensure_venv "$target"
  ) 9>"$CACHE/lock-$target"
}

ensure_targets() { # target...
  # Cold builds of the targets overlap: they wait mostly on downloads.
  local -a pids=() names=("$@")
  local i t
  mkdir -p "$CACHE/logs"
  ensure_prerequisites
  for t in "${names[@]}"; do
    ensure_target "$t" >"$CACHE/logs/setup-$t-$$.log" 2>&1 &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "set-up of target ${names[$i]} failed; the end of its log:" >&2
      tail -n 40 "$CACHE/logs/setup-${names[$i]}-$$.log" >&2
      return 1
    fi
    cat "$CACHE/logs/setup-${names[$i]}-$$.log" >&2
    rm -f "$CACHE/logs/setup-${names[$i]}-$$.log"
  done
}

run_lint() { # target [paths...]
  local target=$1
  shift
  in_root "$target" bash -c '
    cd "$1"; shift
    rc=0
    ruff check "${@:-.}" || rc=1
    ruff format --check "${@:-.}" || rc=1
    mypy custom_components/ha_ingestor || rc=1
    exit $rc
  ' lint "$REPO" "$@"
}

# The extras some tests and scripts need beyond the test requirements share one shape: a
# marker file in the current root holds the hash of what was installed, and the step runs
# (under the target's lock, checked again inside it) only when the wanted hash differs. The
# step's script runs in the root with its arguments; the marker is written only after it
# succeeded, so an interrupted install is retried next time.
ensure_step() { # marker want message script [args...]
  local marker=$1 want=$2 message=$3 script=$4 root
  shift 4
  root=$(root_dir current)
  [ "$want" = "$(cat "$root$marker" 2>/dev/null || true)" ] && return 0
  (
    flock 9
    [ "$want" = "$(cat "$root$marker" 2>/dev/null || true)" ] && exit 0
    log "current: $message (once)"
    in_root current bash -euo pipefail -c "$script" ensure_step "$@"
    echo "$want" >"$root$marker"
  ) 9>"$CACHE/lock-current"
}

venv_extra_hash() { # what... -> hash of the current venv's requirements and what is added
  { cat "$(root_dir current)/opt/venv/.requirements-hash"; echo "$*"; } | sha256sum | cut -c1-12
}

# scripts/develop runs a real Home Assistant, which needs more than the tests do: the
# `home-assistant-frontend` package (without it Home Assistant starts in recovery mode,
# which loads no custom integration) and the requirements of the integrations it always
# loads. scripts/develop.py lists what is missing; Home Assistant's own pins choose the
# versions (pymicro-vad and pyspeex-noise are C++ builds: the root has g++). Done once per
# virtual environment and version of scripts/develop.py (the marker dies with the venv).
ensure_develop_packages() {
  ensure_step /opt/venv/.develop-hash "$(venv_extra_hash "$(sha256sum <"$REPO/scripts/develop.py")")" \
    "installing what the demo needs beyond the tests" '
      missing=$(python "$1/scripts/develop.py" requirements)
      if [ -n "$missing" ]; then
        mapfile -t reqs <<<"$missing"
        printf "  %s\n" "${reqs[@]}" >&2
        pip install --quiet --constraint /opt/constraints.txt "${reqs[@]}"
        python -m compileall -q /opt/venv/lib >/dev/null || true
      fi
    ' "$REPO"
}

# scripts/bench draws its plot with matplotlib, which nothing else needs: installed into the
# current virtual environment on demand, once per environment, like the demo's packages.
MATPLOTLIB_VERSION="3.11.2"
ensure_bench_packages() {
  ensure_step /opt/venv/.bench-hash "$(venv_extra_hash "matplotlib==$MATPLOTLIB_VERSION")" \
    "installing matplotlib $MATPLOTLIB_VERSION for the benchmark plot" '
      pip install --quiet --constraint /opt/constraints.txt "matplotlib==$1"
    ' "$MATPLOTLIB_VERSION"
}

# The browser test (tests/browser) sets the integration up in a real Home Assistant's
# frontend, in Debian's Chromium driven by Playwright for Python. It needs everything
# scripts/develop needs (the frontend above all), Chromium from the root's own suite
# (Playwright must never download a browser: it cannot here) and Playwright, chosen
# within Home Assistant's pins. Done once per virtual environment, like the demo's packages.
PLAYWRIGHT_VERSION="1.65.2"
ensure_browser() {
  ensure_develop_packages
  ensure_step /opt/venv/.browser-hash \
    "$(venv_extra_hash "chromium fonts-liberation playwright==$PLAYWRIGHT_VERSION")" \
    "installing Chromium and Playwright $PLAYWRIGHT_VERSION for the browser test" '
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
      PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install --quiet --constraint /opt/constraints.txt "playwright==$1"
    ' "$PLAYWRIGHT_VERSION"
}

# The Flux check (tests/api/test_flux_lsp.py) runs every query text the Flux backend can send
# through InfluxData's own parser and semantic checker: libflux compiled to WASM in the npm
# package @influxdata/flux-lsp-node (pinned here), run by the root's own Node.js. Done once per
# root and version (the marker lives beside the package, not in the venv), in the current
# target only (where scripts/test makes the test mandatory).
FLUX_LSP_VERSION="0.8.40"
FLUX_LSP_DIR="/opt/flux-lsp"
ensure_flux_lsp() {
  ensure_step "$FLUX_LSP_DIR/.hash" \
    "$(echo "nodejs npm @influxdata/flux-lsp-node@$FLUX_LSP_VERSION" | sha256sum | cut -c1-12)" \
    "installing Node.js and @influxdata/flux-lsp-node $FLUX_LSP_VERSION for the Flux check" '
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
      rm -rf "$2"
      npm install --silent --no-audit --no-fund --save-exact --prefix "$2" "@influxdata/flux-lsp-node@$1"
    ' "$FLUX_LSP_VERSION" "$FLUX_LSP_DIR"
}
