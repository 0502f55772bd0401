#!/usr/bin/env bash
# Prepare a GPU node (cloud-init, or an image build) so that it only ever holds verified,
# digest-pinned images: install safe-docker from the offline bundle, write a locked system
# policy, import keys (and a Sigstore trusted root), run `safe-docker doctor`, then verify
# every listed image and pull it through safe-docker.
#
#   bootstrap-gpu-node.sh --bundle safe-docker-bundle-X.tar.gz (or its unpacked directory)
#       --key NAME=PUBKEY.pem ...          trusted public keys
#       --policy 'SCOPE=KEY[,KEY...]' ...  images under SCOPE must be signed by these keys
#       [--image REF ...] [--images-file FILE]   images to pre-pull (one a line, # comments)
#       [--trust-root trusted_root.json]   the node's default Sigstore root (keyless, airgapped;
#                                          replaces the built-in public-good one if it differs)
#       [--prefix /opt/safe-docker] [--bin-dir /usr/local/bin]
#       [--docker-shim [--shim-dir DIR]]   also put the `docker` wrapper (safe-docker
#                                          shell-init wrapper) first on PATH
#       [--doctor fail|warn|skip]          what a failing doctor does (default: fail)
#
# The system policy goes to $SAFE_DOCKER_SYSTEM_CONFIG_DIR (default /etc/safe-docker) with
# `locked = true`: users may add stricter rules but never weaken it. Images no scope covers
# are rejected. Running it again with the same arguments changes nothing. Any failure stops
# the script with a non-zero status and one line saying what failed; every image is
# verified before the first one is pulled, so a refused image leaves nothing new behind.
set -euo pipefail

step='starting'
die() { echo "bootstrap-gpu-node: error: $*" >&2; exit 1; }
say() { echo "bootstrap-gpu-node: $*" >&2; }
trap 'status=$?; echo "bootstrap-gpu-node: error: step \"$step\" failed (exit $status, line $LINENO)" >&2; exit $status' ERR
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

bundle=''
prefix=/opt/safe-docker
bin_dir=/usr/local/bin
doctor=fail
install_args=()
keys=()
rules=()
images=()
trust_root=''
while [ $# -gt 0 ]; do
    case $1 in
        --bundle) bundle=${2:?--bundle needs a value}; shift ;;
        --prefix) prefix=${2:?--prefix needs a value}; shift ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a value}; shift ;;
        --docker-shim) install_args+=(--docker-shim) ;;
        --shim-dir|--real-docker|--python) install_args+=("$1" "${2:?$1 needs a value}"); shift ;;
        --key) keys+=("${2:?--key needs NAME=FILE}"); shift ;;
        --policy) rules+=("${2:?--policy needs SCOPE=KEYS}"); shift ;;
        --image) images+=("${2:?--image needs a value}"); shift ;;
        --images-file)
            [ -r "${2:?--images-file needs a value}" ] || die "cannot read --images-file $2"
            while IFS= read -r line || [ -n "$line" ]; do
                line=${line%%#*}
                line=$(printf '%s' "$line" | tr -d '[:space:]')
                [ -z "$line" ] || images+=("$line")
            done < "$2"
            shift ;;
        --trust-root) trust_root=${2:?--trust-root needs a value}; shift ;;
        --doctor) doctor=${2:?--doctor needs fail, warn or skip}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[ -n "$bundle" ] || die "--bundle is required (see --help)"
case $doctor in fail|warn|skip) ;; *) die "--doctor must be fail, warn or skip" ;; esac
[ ${#rules[@]} -gt 0 ] || die "no --policy given: a locked policy needs at least one rule"
case $prefix in /*) ;; *) prefix="$PWD/$prefix" ;; esac
system_dir=${SAFE_DOCKER_SYSTEM_CONFIG_DIR:-/etc/safe-docker}
export SAFE_DOCKER_SYSTEM_CONFIG_DIR=$system_dir

# --- 1. install from the bundle (offline) ------------------------------------------------
step="install from $bundle"
if [ -d "$bundle" ]; then
    unpacked=$bundle
elif [ -f "$bundle" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    tar -C "$work" -xzf "$bundle" || die "cannot unpack $bundle"
    unpacked=$(find "$work" -mindepth 2 -maxdepth 2 -name install.sh -printf '%h\n' -quit)
    [ -n "$unpacked" ] || die "$bundle holds no install.sh: not a safe-docker bundle"
else
    die "no bundle at $bundle"
fi
"$unpacked/install.sh" --prefix "$prefix" --bin-dir "$bin_dir" "${install_args[@]+"${install_args[@]}"}" \
    || die "installing safe-docker from $bundle failed"
sd="$prefix/bin/safe-docker"
py="$prefix/bin/python"

# --- 2. keys and the locked system policy ------------------------------------------------
write_if_changed() {  # write_if_changed FILE MODE < content: atomic, untouched if equal
    local content
    content=$(cat; echo x)
    content=${content%x}
    if [ -f "$1" ] && [ "$(cat "$1"; echo x)" = "${content}x" ]; then return 0; fi
    printf '%s' "$content" > "$1.tmp.$$"
    chmod "$2" "$1.tmp.$$"
    mv -f "$1.tmp.$$" "$1"
    say "wrote $1"
}
toml_string() {  # a TOML basic string; refuses what would need escaping
    case $1 in *'"'*|*\\*|*$'\n'*) die "unsupported character in \"$1\"" ;; esac
    printf '"%s"' "$1"
}

step="import keys into $system_dir/keys"
mkdir -p "$system_dir/keys"
chmod 0755 "$system_dir" "$system_dir/keys"
key_tables=''
declare -A known_keys=()
for spec in "${keys[@]+"${keys[@]}"}"; do
    name=${spec%%=*}
    file=${spec#*=}
    if [ "$name" = "$spec" ] || [ -z "$file" ]; then die "--key $spec: expected NAME=FILE"; fi
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || die "--key $spec: invalid key name $name"
    [ -r "$file" ] || die "--key $spec: cannot read $file"
    fingerprint=$("$py" -c 'import sys
from safedocker.errors import SafeDockerError
from safedocker.trust.keys import fingerprint_of
try:
    print(fingerprint_of(open(sys.argv[1], "rb").read()))
except (OSError, ValueError, SafeDockerError) as e:
    sys.exit(f"{sys.argv[1]}: {e}")' "$file") || die "--key $spec: $file is not a usable public key"
    write_if_changed "$system_dir/keys/$name.pub" 0644 < "$file"
    known_keys[$name]=1
    key_tables+="
[keys.$name]
fingerprint = $(toml_string "$fingerprint")
source = $(toml_string "bootstrap-gpu-node: $(basename "$file")")
"
done

step="write the locked policy $system_dir/config.toml"
policy_tables=''
for spec in "${rules[@]}"; do
    scope=${spec%=*}
    names=${spec##*=}
    if [ "$scope" = "$spec" ] || [ -z "$scope" ] || [ -z "$names" ]; then
        die "--policy $spec: expected SCOPE=KEY[,KEY...]"
    fi
    list=''
    IFS=, read -ra split <<< "$names"
    for name in "${split[@]}"; do
        [ -n "${known_keys[$name]+x}" ] || die "--policy $spec: key $name was not given with --key"
        list+="${list:+, }$(toml_string "$name")"
    done
    policy_tables+="
[[policy]]
scope = $(toml_string "$scope")
action = \"verify\"
keys = [$list]
"
done
write_if_changed "$system_dir/config.toml" 0644 <<EOT
# Written by bootstrap-gpu-node.sh: the next run overwrites local edits.
locked = true
mode = "enforce"
unmatched = "reject"
$key_tables$policy_tables
EOT
"$sd" policy list >/dev/null || die "safe-docker rejects the policy it was given (see above)"

# --- 3. trusted root (keyless signatures) -----------------------------------------------
if [ -n "$trust_root" ]; then
    step="import the trusted root $trust_root"
    [ -r "$trust_root" ] || die "cannot read --trust-root $trust_root"
    current=$("$py" -c 'from safedocker.policy.paths import paths
from safedocker.trust.roots import trust_root_path
print(trust_root_path(paths(), system=True))')
    if ! cmp -s "$trust_root" "$current"; then
        # --trust-root names the node's default root: replacing another deployment's is
        # what the admin asked for (safe-docker refuses that without --replace).
        "$sd" trust-root import --system --replace "$trust_root" >/dev/null \
            || die "safe-docker refused the trusted root $trust_root"
        say "imported the trusted root $trust_root"
    fi
fi

# --- 4. doctor ----------------------------------------------------------------------------
if [ "$doctor" != skip ]; then
    step='safe-docker doctor'
    status=0
    report=$("$sd" doctor 2>&1) || status=$?
    printf '%s\n' "$report" | sed 's/^/  /' >&2
    if [ "$status" != 0 ]; then
        [ "$doctor" = warn ] || die "safe-docker doctor found problems (above); use --doctor warn to go on"
        say "warning: safe-docker doctor found problems (above)"
    fi
fi

# --- 5. verify every image, then pull them through safe-docker ----------------------------
for image in "${images[@]+"${images[@]}"}"; do
    step="verify $image"
    status=0
    out=$("$sd" verify "$image" 2>&1) || status=$?
    if [ "$status" != 0 ]; then
        printf '%s\n' "$out" | grep '^safe-docker:' >&2 || true
        die "image $image was refused (exit $status): nothing was pulled"
    fi
done
for image in "${images[@]+"${images[@]}"}"; do
    step="pull $image"
    "$sd" pull --quiet "$image" >/dev/null || die "pulling $image through safe-docker failed"
    say "pulled $image (verified, pinned)"
done
say "done: safe-docker $("$sd" --version | cut -d' ' -f2), policy $system_dir/config.toml, ${#images[@]} image(s) verified"
