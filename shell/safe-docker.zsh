# safe-docker shell integration for zsh.
#
#   eval "$(safe-docker shell-init zsh)"       # in ~/.zshrc, after compinit
#   or source this file from ~/.zshrc (or /etc/zsh/zshrc); for completion alone, copy
#   _safe-docker into a directory on $fpath.
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
# SAFE_DOCKER_BIN          safe-docker to call (default: safe-docker on PATH)
# SAFE_DOCKER_REAL_DOCKER  real docker (default: docker on PATH)
# docker's own completion (compdef _docker docker) is left as it is.

# >>> generated from docker's command tree (safe-docker shell-init); do not edit
# Status 1: the real docker can run this command line as it is (the command cannot
# bring an image to life); 0: safe-docker must see it.
__safe_docker_route() {
    emulate -L zsh
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
        shell-init) subcommands=(bash zsh fish wrapper) ;;
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
