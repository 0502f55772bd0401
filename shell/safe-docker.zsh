# safe-docker shell integration for zsh.
#
#   eval "$(safe-docker shell-init zsh)"       # in ~/.zshrc, after compinit
#   or source this file from ~/.zshrc (or /etc/zsh/zshrc); for completion alone, copy
#   _safe-docker into a directory on $fpath.
#
# Defines a `docker` function: only the commands safe-docker must see (run, create, pull,
# container run|create, image pull, and safe-docker's own commands), after docker's global
# flags, go through safe-docker; everything else runs the real docker directly, so
# `docker ps` starts no Python at all. Unusual command lines (combined short flags, `--`,
# flags between `container` and `run`) go to safe-docker, which decides with docker's own
# grammar and passes through whatever is not its business.
#
# SAFE_DOCKER_BIN          safe-docker to call (default: safe-docker on PATH)
# SAFE_DOCKER_REAL_DOCKER  real docker (default: docker on PATH)
# docker's own completion (compdef _docker docker) is left as it is.

# Status 0: safe-docker must see this command line; 1: the real docker can have it.
__safe_docker_route() {
    emulate -L zsh
    while (( $# > 0 )); do
        case $1 in
            --) return 0 ;;
            --config|--context|--host|--log-level|--tlscacert|--tlscert|--tlskey|-H|-c|-l)
                (( $# >= 2 )) || return 1  # docker reports the missing value
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
    (( $# > 0 )) || return 1  # global flags only (docker --version): docker answers
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
case ${aliases[docker]-} in *safe-docker*) unalias docker ;; esac

function docker {
    if __safe_docker_route "$@"; then
        command "${SAFE_DOCKER_BIN:-safe-docker}" "$@"
    else
        command "${SAFE_DOCKER_REAL_DOCKER:-docker}" "$@"
    fi
}

# Completion of `safe-docker` (the same as the fpath file _safe-docker).
_safe_docker() {
    local -a commands subcommands
    commands=(verify keys policy cache trust-root audit gpu doctor sign airgap shell-init
              compose)
    if (( CURRENT == 2 )); then
        compadd -a commands
        return
    fi
    case ${words[2]} in
        keys) subcommands=(add list remove generate) ;;
        policy) subcommands=(add allow deny remove list check schema export import init catalog) ;;
        cache) subcommands=(list prune export import) ;;
        trust-root) subcommands=(list show update import remove) ;;
        airgap) subcommands=(save load) ;;
        shell-init) subcommands=(bash zsh fish) ;;
    esac
    if (( CURRENT == 3 && $#subcommands )); then
        compadd -a subcommands
    else
        _files
    fi
}
if (( $+functions[compdef] )); then
    compdef _safe_docker safe-docker
fi
