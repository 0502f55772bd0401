"""The airgap transfer: ``safe-docker airgap save`` writes verified images, their registry
bytes and their signatures into one archive; ``safe-docker airgap load`` checks it under
the local policy on another machine and hands docker a tar of its own making.

``archive`` is the format and the checks both sides share, ``save`` and ``load`` the two
commands. (``docker save`` and ``docker load`` stay docker's own commands.)
"""
