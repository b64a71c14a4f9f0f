# Sourced by the install scripts: apt_files WHO FILE=PACKAGE... installs, from Debian, the package
# of every FILE that does not exist, then checks that each of those files now does. Files, not
# package names, are checked, so a package whose files were removed by hand is reinstalled.
# Needs root (or sudo) only when something is missing.

# The Debian multiarch triplet of this machine, for paths under /usr/lib.
multiarch=$(gcc -dumpmachine 2>/dev/null || echo "$(uname -m)-linux-gnu")

apt_files() {
  local who=$1 pair file
  shift
  local missing=() packages=() still=()
  for pair in "$@"; do
    file=${pair%=*}
    if [ ! -e "$file" ]; then
      missing+=("$file")
      packages+=("${pair##*=}")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
  echo "$who: missing ${missing[*]}; installing ${packages[*]} with apt-get" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q
  # --reinstall restores files removed from a package that dpkg still counts as installed.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends --reinstall "${packages[@]}"
  for file in "${missing[@]}"; do
    [ -e "$file" ] || still+=("$file")
  done
  if [ ${#still[@]} -gt 0 ]; then
    echo "$who: still missing after the install: ${still[*]}" >&2
    return 1
  fi
}
