# safe-docker shell integration for fish.
#
#   safe-docker shell-init fish | source       # in ~/.config/fish/config.fish
#   or copy this file into ~/.config/fish/conf.d/ (or /etc/fish/conf.d/)
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
# docker's own completions (complete -c docker) keep working for the function.

# >>> generated from docker's command tree (safe-docker shell-init); do not edit
# Status 1: the real docker can run this command line as it is (the command cannot
# bring an image to life); 0: safe-docker must see it.
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
            case '--config=*' '--context=*' '--host=*' '--log-level=*' '--tlscacert=*' \
                '--tlscert=*' '--tlskey=*' '--debug=*' '--tls=*' '--tlsverify=*' \
                '--help=*' '--version=*' '-H*' '-c*' '-l*'
            case '-*' # combined or unknown flags: safe-docker decides
                return 0
            case '*'
                break
        end
        set -e args[1]
    end
    set -q args[1]; or return 1 # global flags only (docker --version): docker answers
    switch $args[1]
        case __complete __completeNoDesc attach commit completion cp diff events exec \
            export help history images import info inspect kill load login logout logs \
            pause port ps push rename restart rm rmi save search start stats stop tag top \
            unpause update version wait
            return 1
        case buildx
            set -q args[2]; or return 1
            switch $args[2]
                case du history imagetools inspect install ls prune rm stop uninstall use \
                    version
                    return 1
            end
        case checkpoint
            set -q args[2]; or return 1
            switch $args[2]
                case create list ls remove rm
                    return 1
            end
        case config
            set -q args[2]; or return 1
            switch $args[2]
                case create inspect list ls remove rm
                    return 1
            end
        case container
            set -q args[2]; or return 1
            switch $args[2]
                case attach commit cp diff exec export inspect kill list logs ls pause \
                    port prune ps remove rename restart rm start stats stop top unpause \
                    update wait
                    return 1
            end
        case context
            set -q args[2]; or return 1
            switch $args[2]
                case create export import inspect list ls remove rm show update use
                    return 1
            end
        case image
            set -q args[2]; or return 1
            switch $args[2]
                case history import inspect list load ls prune push remove rm rmi save tag
                    return 1
            end
        case manifest
            set -q args[2]; or return 1
            switch $args[2]
                case annotate create inspect push rm
                    return 1
            end
        case network
            set -q args[2]; or return 1
            switch $args[2]
                case connect create disconnect inspect list ls prune remove rm
                    return 1
            end
        case node
            set -q args[2]; or return 1
            switch $args[2]
                case demote inspect list ls promote ps remove rm update
                    return 1
            end
        case plugin
            set -q args[2]; or return 1
            switch $args[2]
                case disable enable inspect list ls push remove rm set
                    return 1
            end
        case secret
            set -q args[2]; or return 1
            switch $args[2]
                case create inspect list ls remove rm
                    return 1
            end
        case service
            set -q args[2]; or return 1
            switch $args[2]
                case inspect list logs ls ps remove rm rollback scale
                    return 1
            end
        case stack
            set -q args[2]; or return 1
            switch $args[2]
                case config down list ls ps remove rm services
                    return 1
            end
        case swarm
            set -q args[2]; or return 1
            switch $args[2]
                case ca init join join-token leave unlock unlock-key update
                    return 1
            end
        case system
            set -q args[2]; or return 1
            switch $args[2]
                case df events info prune
                    return 1
            end
        case trust
            set -q args[2]; or return 1
            switch $args[2]
                case inspect key revoke sign signer
                    return 1
            end
        case volume
            set -q args[2]; or return 1
            switch $args[2]
                case create inspect list ls prune remove rm update
                    return 1
            end
    end
    return 0
end
# <<< end of generated code

function docker --description 'docker: what may start an image goes through safe-docker'
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
complete -c safe-docker -n '__fish_seen_subcommand_from shell-init' -a 'bash zsh fish wrapper'
