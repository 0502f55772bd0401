#!/usr/bin/env bash
# Install safe-docker as a docker CLI plugin: `docker safe verify IMAGE`, `docker safe keys list`.
#
#   packaging/install-plugin.sh [--safe-docker PATH] [--dir DIR]
#
# --safe-docker  the installed safe-docker (default: safe-docker on PATH)
# --dir          the plugin directory (default: $DOCKER_CONFIG/cli-plugins, else
#                ~/.docker/cli-plugins; /usr/local/lib/docker/cli-plugins for everyone)
# The plugin serves safe-docker's own commands only: docker never lets a plugin replace
# run/pull/create; for those use `eval "$(safe-docker shell-init bash)"` or the docker shim.
set -euo pipefail

die() { echo "install-plugin: error: $*" >&2; exit 1; }
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

safe_docker=''
dir=''
while [ $# -gt 0 ]; do
    case $1 in
        --safe-docker) safe_docker=${2:?--safe-docker needs a value}; shift ;;
        --dir) dir=${2:?--dir needs a value}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[ -n "$dir" ] || dir="${DOCKER_CONFIG:-${HOME:?HOME is not set}/.docker}/cli-plugins"
[ -n "$safe_docker" ] || safe_docker=$(command -v safe-docker) \
    || die "safe-docker is not on PATH (install it, or give --safe-docker PATH)"
safe_docker=$(readlink -f "$safe_docker")
[ -x "$safe_docker" ] || die "$safe_docker is not executable"
bin=$(dirname "$safe_docker")
target="$dir/docker-safe"
mkdir -p "$dir"

if [ -x "$bin/docker-safe" ]; then
    # The console script next to safe-docker.
    if [ "$(readlink "$target" 2>/dev/null)" != "$bin/docker-safe" ]; then
        ln -sfn "$bin/docker-safe" "$target.tmp.$$" && mv -Tf "$target.tmp.$$" "$target"
    fi
else
    # No console script (older install): run the module with safe-docker's own Python.
    python="$bin/python"
    [ -x "$python" ] || python=$(sed -n '1s/^#![[:space:]]*//p' "$safe_docker")
    "$python" -c 'import safedocker.plugin' 2>/dev/null \
        || die "cannot import safedocker.plugin with $python"
    case $python in *"'"*) die "paths with a single quote are not supported" ;; esac
    content="#!/bin/sh
# docker CLI plugin: safe-docker (written by install-plugin.sh)
exec '$python' -m safedocker.plugin \"\$@\""
    if [ -L "$target" ] || [ "$(cat "$target" 2>/dev/null)" != "$content" ]; then
        rm -f "$target"
        printf '%s\n' "$content" > "$target.tmp.$$"
        chmod 0755 "$target.tmp.$$"
        mv -f "$target.tmp.$$" "$target"
    fi
fi
"$target" docker-cli-plugin-metadata >/dev/null || die "$target does not answer as a docker plugin"
echo "install-plugin: $target: try \`docker safe --help\`" >&2
