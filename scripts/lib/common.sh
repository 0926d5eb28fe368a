# Shared by the scripts in scripts/: package installation and build-directory helpers.
# Source it; do not run it.

ml_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

ml_jobs() { nproc 2>/dev/null || echo 2; }

# ml_ensure_packages pkg...
#   Installs the Debian packages that are missing, with apt-get as root or through sudo.
#   Without either, prints the exact command to run and exits with status 1.
ml_ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      echo "metalearn: missing packages: ${missing[*]}" >&2
      echo "metalearn: install them with:  sudo apt-get update && sudo $cmd" >&2
      exit 1
    fi
  fi
  echo "metalearn: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package index only when the install cannot find a package.
  if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# ml_offer_packages pkg...
#   Like ml_ensure_packages, for packages the build can do without (test data, optional
#   dependencies): without root or sudo it prints the command and goes on.
ml_offer_packages() {
  if [ "$(id -u)" -ne 0 ] && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
    local p missing=()
    for p in "$@"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] ||
      echo "metalearn: optional packages missing (their tests are skipped): sudo apt-get install ${missing[*]}" >&2
    return 0
  fi
  ml_ensure_packages "$@"
}

# ml_configure <build-dir> <cmake args...>
#   Configures once; later runs reuse the directory (cmake re-runs itself when needed).
#   The arguments are remembered, and a change of arguments reconfigures.
ml_configure() {
  local dir="$1"; shift
  local stamp="$dir/.metalearn-configure-args"
  local args="$*"
  if [ ! -f "$dir/CMakeCache.txt" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$args" ]; then
    cmake -S "$ml_root" -B "$dir" "$@"
    printf '%s' "$args" > "$stamp"
  fi
}
