"""Verified builds: the pure parts (no docker, no registry).

* ``argv``       the build command lines (``docker build``, ``docker image build``,
                 ``docker builder build``, ``docker buildx build``): an allowlist grammar.
* ``lex``        buildkit's shell-word lexer (quotes, escapes, ``${VAR:-x}`` …).
* ``parser``     buildkit's Dockerfile line parser, with byte offsets for the rewrite.
* ``dockerfile`` what a Dockerfile makes the builder pull: every external image, with
                 its line and instruction.
* ``pin``        pinning what was verified: the rewritten Dockerfile (legacy builder) and
                 the ``--build-context NAME=docker-image://repo@digest`` arguments (BuildKit).
"""
