# safe-docker shell integration for bash.
#
#   eval "$(safe-docker shell-init bash)"      # in ~/.bashrc
#   or install this file as /etc/profile.d/safe-docker.sh (or source it from bashrc)
#
# Defines a `docker` function: only the commands safe-docker must see (run, create, pull,
# container run|create, image pull, and safe-docker's own commands), after docker's global
# flags, go through safe-docker; everything else runs the real docker directly, so
# `docker ps` starts no Python at all. When the command line is unusual (combined short
# flags, `--`, flags between `container` and `run`), it goes to safe-docker, which decides
# with docker's own grammar and passes through whatever is not its business.
#
# SAFE_DOCKER_BIN       safe-docker to call (default: safe-docker on PATH)
# SAFE_DOCKER_REAL_DOCKER  real docker (default: docker on PATH)
# docker's own completion (complete -F _docker docker) is left attached to `docker`.

# Only bash reads on: sh sourcing /etc/profile.d/*.sh stops here (zsh and fish have
# their own files: safe-docker shell-init zsh|fish).
[ -n "${BASH_VERSION-}" ] || return 0

__safe_docker_commands='verify keys policy cache trust-root audit gpu doctor sign airgap shell-init compose'

# Status 0: safe-docker must see this command line; 1: the real docker can have it.
__safe_docker_route() {
    while [ $# -gt 0 ]; do
        case $1 in
            --) return 0 ;;
            --config|--context|--host|--log-level|--tlscacert|--tlscert|--tlskey|-H|-c|-l)
                [ $# -ge 2 ] || return 1  # docker reports the missing value
                shift ;;
            --debug|--tls|--tlsverify|--help|--version|-D|-h|-v) ;;
            --config=*|--context=*|--host=*|--log-level=*|--tlscacert=*|--tlscert=*) ;;
            --tlskey=*|--debug=*|--tls=*|--tlsverify=*|--help=*|--version=*) ;;
            -H*|-c*|-l*) ;;  # value attached: -Hunix:///x.sock, -l=debug
            -*) return 0 ;;  # combined or unknown flags: let safe-docker decide
            *) break ;;
        esac
        shift
    done
    [ $# -gt 0 ] || return 1  # global flags only (docker --version): docker answers
    case $1 in
        run|create|pull) return 0 ;;
        container) case ${2-} in run|create|-*) return 0 ;; esac ;;
        image) case ${2-} in pull|-*) return 0 ;; esac ;;
        verify|keys|policy|cache|trust-root|audit|gpu|doctor|sign|airgap|shell-init|compose)
            return 0 ;;
    esac
    return 1
}

# An old `alias docker=safe-docker` would hide the function; any other alias is kept.
case ${BASH_ALIASES[docker]-} in *safe-docker*) unalias docker ;; esac

function docker {
    if __safe_docker_route "$@"; then
        command "${SAFE_DOCKER_BIN:-safe-docker}" "$@"
    else
        command "${SAFE_DOCKER_REAL_DOCKER:-docker}" "$@"
    fi
}

__safe_docker_reply() {
    # Words without blanks or globs: word splitting of compgen's output is safe.
    # shellcheck disable=SC2207
    COMPREPLY=($(compgen -W "$1" -- "$2"))
}

# Completion of `safe-docker`: its own commands and the subcommands of its groups.
_safe_docker() {
    local cur=${COMP_WORDS[COMP_CWORD]} command='' index=1 i subcommands=''
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) command=${COMP_WORDS[i]}; index=$i; break ;;
        esac
    done
    if [ -z "$command" ]; then
        case $cur in
            -*) __safe_docker_reply '--help --version --verbose' "$cur" ;;
            *) __safe_docker_reply "$__safe_docker_commands" "$cur" ;;
        esac
        return 0
    fi
    case $command in
        keys) subcommands='add list remove generate' ;;
        policy) subcommands='add allow deny remove list check schema export import init catalog' ;;
        cache) subcommands='list prune export import' ;;
        trust-root) subcommands='list show update import remove' ;;
        airgap) subcommands='save load' ;;
        shell-init) [ "$COMP_CWORD" -eq $((index + 1)) ] && subcommands='bash zsh fish' ;;
    esac
    if [ -n "$subcommands" ] && [ "$COMP_CWORD" -eq $((index + 1)) ]; then
        __safe_docker_reply "$subcommands" "$cur"
        return 0
    fi
    COMPREPLY=()  # file names (complete -o default)
    return 0
}
complete -o default -F _safe_docker safe-docker
