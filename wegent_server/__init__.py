"""wegent_server: the `wegent` command line and, later, the HTTP API. Depends on wegent_core; imports nothing heavy at
import time, so that `wegent --help` starts fast."""
