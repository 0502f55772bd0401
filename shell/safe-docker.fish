# safe-docker shell integration for fish.
#
#   safe-docker shell-init fish | source       # in ~/.config/fish/config.fish
#   or copy this file into ~/.config/fish/conf.d/ (or /etc/fish/conf.d/)
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
# docker's own completions (complete -c docker) keep working for the function.

# Status 0: safe-docker must see this command line; 1: the real docker can have it.
function __safe_docker_route
    set -l args $argv
    while set -q args[1]
        switch $args[1]
            case --
                return 0
            case --config --context --host --log-level --tlscacert --tlscert --tlskey -H -c -l
                set -q args[2]; or return 1 # docker reports the missing value
                set -e args[1]
            case --debug --tls --tlsverify --help --version -D -h -v
            case '--config=*' '--context=*' '--host=*' '--log-level=*' '--tlscacert=*'
            case '--tlscert=*' '--tlskey=*' '--debug=*' '--tls=*' '--tlsverify=*'
            case '--help=*' '--version=*'
            case '-H*' '-c*' '-l*' # value attached: -Hunix:///x.sock, -l=debug
            case '-*' # combined or unknown flags: let safe-docker decide
                return 0
            case '*'
                break
        end
        set -e args[1]
    end
    set -q args[1]; or return 1 # global flags only (docker --version): docker answers
    switch $args[1]
        case run create pull verify keys policy cache trust-root audit gpu doctor sign \
            airgap shell-init compose
            return 0
        case container
            set -q args[2]; or return 1
            switch $args[2]
                case run create '-*'
                    return 0
            end
        case image
            set -q args[2]; or return 1
            switch $args[2]
                case pull '-*'
                    return 0
            end
    end
    return 1
end

function docker --description 'docker, with pull/run/create verified by safe-docker'
    if __safe_docker_route $argv
        set -l bin safe-docker
        set -q SAFE_DOCKER_BIN; and set bin $SAFE_DOCKER_BIN
        command $bin $argv
    else
        set -l real docker
        set -q SAFE_DOCKER_REAL_DOCKER; and set real $SAFE_DOCKER_REAL_DOCKER
        command $real $argv
    end
end

# Completion of `safe-docker`: its own commands and the subcommands of its groups.
complete -c safe-docker -n __fish_use_subcommand -f \
    -a 'verify keys policy cache trust-root audit gpu doctor sign airgap shell-init compose'
complete -c safe-docker -n '__fish_seen_subcommand_from keys' -a 'add list remove generate'
complete -c safe-docker -n '__fish_seen_subcommand_from policy' \
    -a 'add allow deny remove list check schema export import init catalog'
complete -c safe-docker -n '__fish_seen_subcommand_from cache' -a 'list prune export import'
complete -c safe-docker -n '__fish_seen_subcommand_from trust-root' -a 'list show update import remove'
complete -c safe-docker -n '__fish_seen_subcommand_from airgap' -a 'save load'
complete -c safe-docker -n '__fish_seen_subcommand_from shell-init' -a 'bash zsh fish'
