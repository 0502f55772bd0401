#!/usr/bin/env bash
# Build an offline install bundle of safe-docker: one .tar.gz holding wheels for the
# target Python and platform, install.sh, the GPU node bootstrap and the shell files.
#
#   packaging/build-bundle.sh [--python PY] [--python-version 3.11] [--platform TAG]...
#                             [--output FILE]
#
# Without --python-version/--platform the wheels are for the Python running the build
# (PY, default python3). Building needs the package index; installing does not.
# On the target:  tar xzf safe-docker-bundle-*.tar.gz && sudo ./safe-docker-bundle-*/install.sh
set -euo pipefail

die() { echo "build-bundle: error: $*" >&2; exit 1; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
python=python3
python_version=''
platforms=()
output=''

while [ $# -gt 0 ]; do
    case $1 in
        --python) python=${2:?--python needs a value}; shift ;;
        --python-version) python_version=${2:?--python-version needs a value}; shift ;;
        --platform) platforms+=("${2:?--platform needs a value}"); shift ;;
        --output|-o) output=${2:?--output needs a value}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

command -v "$python" >/dev/null || die "no $python (choose one with --python)"
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/safedocker/__init__.py")
[ -n "$version" ] || die "cannot read __version__ from $repo/safedocker/__init__.py"
name="safe-docker-bundle-$version"
[ -n "$output" ] || output="$PWD/$name.tar.gz"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/$name"
mkdir -p "$stage/wheels"

echo "build-bundle: wheel of safe-docker $version" >&2
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$stage/wheels" "$repo" \
    || die "pip wheel of $repo failed"
wheel=$(find "$stage/wheels" -name 'safe_docker-*.whl' -print -quit)
[ -n "$wheel" ] || die "pip wheel produced no safe_docker wheel"

target=()
if [ -n "$python_version" ]; then target+=(--python-version "$python_version"); fi
for platform in "${platforms[@]+"${platforms[@]}"}"; do target+=(--platform "$platform"); done
echo "build-bundle: dependency wheels${target[*]:+ for ${target[*]}}" >&2
# Only wheels: the target machine has no compiler and no network.
"$python" -m pip download --quiet --only-binary=:all: --dest "$stage/wheels" \
    "${target[@]+"${target[@]}"}" "$wheel" \
    || die "pip download of the dependencies failed (is the package index reachable?)"

install -m 0755 "$here/install.sh" "$stage/install.sh"
install -m 0755 "$here/bootstrap-gpu-node.sh" "$stage/bootstrap-gpu-node.sh"
install -m 0755 "$here/install-plugin.sh" "$stage/install-plugin.sh"
mkdir -p "$stage/shell"
cp "$repo"/shell/safe-docker.* "$repo/shell/_safe-docker" "$repo/shell/README.md" "$stage/shell/"
printf '%s\n' "$version" > "$stage/VERSION"
(cd "$stage" && find wheels -type f -name '*.whl' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

mkdir -p "$(dirname "$output")"
tar -C "$work" -czf "$output.tmp" "$name"
mv -f "$output.tmp" "$output"
echo "build-bundle: wrote $output ($(find "$stage/wheels" -name '*.whl' | wc -l) wheels)" >&2
echo "$output"
