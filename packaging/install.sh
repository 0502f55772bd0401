#!/usr/bin/env bash
# Install safe-docker from this offline bundle: no network is used.
#
#   ./install.sh [--prefix /opt/safe-docker] [--bin-dir /usr/local/bin] [--python python3]
#                [--docker-shim [--shim-dir DIR] [--real-docker PATH]]
#
# --prefix        the virtual environment to create (or update) for safe-docker
# --bin-dir       where the `safe-docker` link goes
# --docker-shim   also install a `docker` wrapper (in --shim-dir, default --bin-dir):
#                 POSIX sh from `safe-docker shell-init wrapper`, with the real docker's
#                 path pinned; commands that cannot start an image run the real docker
#                 without Python, the rest go to safe-docker. --shim-dir must come before
#                 the real docker's directory on PATH
# --real-docker   the real docker (default: the first docker on PATH that is not a shim)
# Running it again with the same bundle changes nothing.
set -euo pipefail

die() { echo "safe-docker install: error: $*" >&2; exit 1; }
say() { echo "safe-docker install: $*" >&2; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prefix=/opt/safe-docker
bin_dir=/usr/local/bin
python=python3
docker_shim=0
shim_dir=''
real_docker=''
SHIM_MARK='safe-docker docker shim'  # also says "safedocker" so the shim knows it as itself

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=${2:?--prefix needs a value}; shift ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a value}; shift ;;
        --python) python=${2:?--python needs a value}; shift ;;
        --docker-shim) docker_shim=1 ;;
        --shim-dir) shim_dir=${2:?--shim-dir needs a value}; shift ;;
        --real-docker) real_docker=${2:?--real-docker needs a value}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[ -n "$shim_dir" ] || shim_dir=$bin_dir
case $prefix in /*) ;; *) prefix="$PWD/$prefix" ;; esac

version=$(cat "$bundle/VERSION") || die "no VERSION in $bundle: not a safe-docker bundle"
[ -f "$bundle/SHA256SUMS" ] || die "no SHA256SUMS in $bundle: not a safe-docker bundle"
(cd "$bundle" && sha256sum --check --quiet --strict SHA256SUMS) \
    || die "the bundle's wheels do not match SHA256SUMS: the bundle is damaged"
stamp="$prefix/.safe-docker-bundle"
want="$version $(sha256sum < "$bundle/SHA256SUMS" | cut -d' ' -f1)"

# Never the network: pip reads only the bundle, whatever pip.conf or PIP_* say.
export PIP_NO_INDEX=1 PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS

if [ -x "$prefix/bin/safe-docker" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "safe-docker $version already installed in $prefix"
else
    command -v "$python" >/dev/null || die "no $python (choose one with --python)"
    if [ ! -x "$prefix/bin/python" ]; then
        say "creating the environment $prefix"
        "$python" -m venv "$prefix" \
            || die "cannot create a venv with $python (Debian/Ubuntu: apt-get install python3-venv)"
    fi
    say "installing safe-docker $version into $prefix (offline)"
    "$prefix/bin/python" -m pip install --quiet --no-index --find-links "$bundle/wheels" \
        --force-reinstall "safe-docker==$version" \
        || die "pip could not install from $bundle/wheels (wrong Python or platform for this bundle?)"
    printf '%s\n' "$want" > "$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
fi
"$prefix/bin/safe-docker" --version >/dev/null || die "the installed safe-docker does not start"

link() {  # link TARGET NAME: a symlink NAME -> TARGET, replaced only when it differs
    [ "$(readlink "$2" 2>/dev/null)" = "$1" ] && return 0
    mkdir -p "$(dirname "$2")"
    ln -sfn "$1" "$2.tmp.$$" && mv -Tf "$2.tmp.$$" "$2"
    say "linked $2 -> $1"
}
link "$prefix/bin/safe-docker" "$bin_dir/safe-docker"
if [ -x "$prefix/bin/docker-safe" ]; then
    link "$prefix/bin/docker-safe" "$bin_dir/docker-safe"
fi

[ "$docker_shim" = 1 ] || exit 0

shim="$shim_dir/docker"
if [ -z "$real_docker" ]; then
    IFS=: read -ra dirs <<< "${PATH-}"
    for dir in "${dirs[@]}"; do
        candidate="${dir:-.}/docker"
        if [ ! -f "$candidate" ] || [ ! -x "$candidate" ]; then continue; fi
        grep -q "$SHIM_MARK" "$candidate" 2>/dev/null && continue
        [ "$(readlink -f "$candidate")" = "$(readlink -f "$prefix/bin/safe-docker")" ] && continue
        real_docker=$candidate
        break
    done
    [ -n "$real_docker" ] || die "no real docker on PATH (install the docker CLI, or give --real-docker)"
fi
real_docker=$(readlink -f "$real_docker")
[ -x "$real_docker" ] || die "--real-docker $real_docker is not executable"
if [ "$real_docker" = "$(readlink -f "$shim" 2>/dev/null || true)" ]; then
    die "$shim is the real docker: choose another --shim-dir that comes first on PATH"
fi
# The wrapper routes with docker's command tree: what cannot start an image runs the real
# docker directly (no Python); the rest goes to safe-docker.
content=$("$prefix/bin/safe-docker" shell-init wrapper --real-docker "$real_docker") \
    || die "safe-docker could not write the docker wrapper"
if [ "$(cat "$shim" 2>/dev/null)" != "$content" ]; then
    [ ! -e "$shim" ] || grep -q "$SHIM_MARK" "$shim" \
        || die "$shim exists and is not a safe-docker shim; remove it or choose --shim-dir"
    mkdir -p "$shim_dir"
    printf '%s\n' "$content" > "$shim.tmp.$$"
    chmod 0755 "$shim.tmp.$$"
    mv -f "$shim.tmp.$$" "$shim"
    say "installed $shim (real docker: $real_docker)"
fi
