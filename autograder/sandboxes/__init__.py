"""Where student code runs: the sandbox protocol, the local (bubblewrap) and Docker backends, resource limits."""
