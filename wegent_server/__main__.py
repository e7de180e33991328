"""`python -m wegent_server`: the same as the `wegent` command."""

from wegent_server._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
