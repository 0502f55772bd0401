# safe-docker shell integration for bash.
#
#   eval "$(safe-docker shell-init bash)"      # in ~/.bashrc
#   or install this file as /etc/profile.d/safe-docker.sh (or source it from bashrc)
#
# Defines a `docker` function routed by docker's command tree (safe-docker's table of
# every docker command): the commands that cannot bring an image to life (ps, logs, exec,
# images, rm, network, volume, ...) run the real docker directly, so `docker ps` starts no
# Python at all; everything else (run, create, pull, build, compose, service create|update,
# plugin install|upgrade, buildx create, commands safe-docker does not know such as CLI
# plugins, and unusual spellings: combined short flags, `--`, flags between `container`
# and `run`) goes to safe-docker, which decides with docker's own grammar.
#
# Functions serve interactive shells only: scripts, make, sudo, xargs and `command docker`
# do not see them. For those, put the wrapper first on PATH (safe-docker shell-init wrapper).
#
# SAFE_DOCKER_BIN       safe-docker to call (default: safe-docker on PATH)
# SAFE_DOCKER_REAL_DOCKER  real docker (default: docker on PATH)
# docker's own completion (complete -F _docker docker) is left attached to `docker`.

# Only bash reads on: sh sourcing /etc/profile.d/*.sh stops here (zsh and fish have
# their own files: safe-docker shell-init zsh|fish).
[ -n "${BASH_VERSION-}" ] || return 0

__safe_docker_commands='verify keys policy cache trust-root audit gpu doctor sign airgap shell-init compose'

# >>> generated from docker's command tree (safe-docker shell-init); do not edit
# Status 1: the real docker can run this command line as it is (the command cannot
# bring an image to life); 0: safe-docker must see it.
__safe_docker_route() {
    while [ $# -gt 0 ]; do
        case $1 in
            --) return 0 ;;
            --config|--context|--host|--log-level|--tlscacert|--tlscert|--tlskey|-H|-c|-l)
                [ $# -ge 2 ] || return 1  # docker reports the missing value
                shift ;;
            --debug|--tls|--tlsverify|--help|--version|-D|-h|-v) ;;
            --config=*|--context=*|--host=*|--log-level=*|--tlscacert=*|--tlscert=*|\
            --tlskey=*|--debug=*|--tls=*|--tlsverify=*|--help=*|--version=*|-H*|-c*|-l*) ;;
            -*) return 0 ;;  # combined or unknown flags: safe-docker decides
            *) break ;;
        esac
        shift
    done
    [ $# -gt 0 ] || return 1  # global flags only (docker --version): docker answers
    case $1 in
        __complete|__completeNoDesc|attach|commit|completion|cp|diff|events|exec|export|\
        help|history|images|import|info|inspect|kill|load|login|logout|logs|pause|port|ps|\
        push|rename|restart|rm|rmi|save|search|start|stats|stop|tag|top|unpause|update|\
        version|wait) return 1 ;;
        buildx) [ $# -eq 1 ] && return 1
            case $2 in du|history|imagetools|inspect|install|ls|prune|rm|stop|uninstall|\
                use|version) return 1 ;; esac ;;
        checkpoint) [ $# -eq 1 ] && return 1
            case $2 in create|list|ls|remove|rm) return 1 ;; esac ;;
        config) [ $# -eq 1 ] && return 1
            case $2 in create|inspect|list|ls|remove|rm) return 1 ;; esac ;;
        container) [ $# -eq 1 ] && return 1
            case $2 in attach|commit|cp|diff|exec|export|inspect|kill|list|logs|ls|pause|\
                port|prune|ps|remove|rename|restart|rm|start|stats|stop|top|unpause|update|\
                wait) return 1 ;; esac ;;
        context) [ $# -eq 1 ] && return 1
            case $2 in create|export|import|inspect|list|ls|remove|rm|show|update|\
                use) return 1 ;; esac ;;
        image) [ $# -eq 1 ] && return 1
            case $2 in history|import|inspect|list|load|ls|prune|push|remove|rm|rmi|save|\
                tag) return 1 ;; esac ;;
        manifest) [ $# -eq 1 ] && return 1
            case $2 in annotate|create|inspect|push|rm) return 1 ;; esac ;;
        network) [ $# -eq 1 ] && return 1
            case $2 in connect|create|disconnect|inspect|list|ls|prune|remove|\
                rm) return 1 ;; esac ;;
        node) [ $# -eq 1 ] && return 1
            case $2 in demote|inspect|list|ls|promote|ps|remove|rm|\
                update) return 1 ;; esac ;;
        plugin) [ $# -eq 1 ] && return 1
            case $2 in disable|enable|inspect|list|ls|push|remove|rm|\
                set) return 1 ;; esac ;;
        secret) [ $# -eq 1 ] && return 1
            case $2 in create|inspect|list|ls|remove|rm) return 1 ;; esac ;;
        service) [ $# -eq 1 ] && return 1
            case $2 in inspect|list|logs|ls|ps|remove|rm|rollback|\
                scale) return 1 ;; esac ;;
        stack) [ $# -eq 1 ] && return 1
            case $2 in config|down|list|ls|ps|remove|rm|services) return 1 ;; esac ;;
        swarm) [ $# -eq 1 ] && return 1
            case $2 in ca|init|join|join-token|leave|unlock|unlock-key|\
                update) return 1 ;; esac ;;
        system) [ $# -eq 1 ] && return 1
            case $2 in df|events|info|prune) return 1 ;; esac ;;
        trust) [ $# -eq 1 ] && return 1
            case $2 in inspect|key|revoke|sign|signer) return 1 ;; esac ;;
        volume) [ $# -eq 1 ] && return 1
            case $2 in create|inspect|list|ls|prune|remove|rm|update) return 1 ;; esac ;;
    esac
    return 0
}
# <<< end of generated code

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
        shell-init) [ "$COMP_CWORD" -eq $((index + 1)) ] && subcommands='bash zsh fish wrapper' ;;
    esac
    if [ -n "$subcommands" ] && [ "$COMP_CWORD" -eq $((index + 1)) ]; then
        __safe_docker_reply "$subcommands" "$cur"
        return 0
    fi
    COMPREPLY=()  # file names (complete -o default)
    return 0
}
complete -o default -F _safe_docker safe-docker
