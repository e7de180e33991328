"""Run by test_resume.py in a child process that it kills: start the pipeline task, print its id, run it."""

import sys

from wegent_core import Wegent

with Wegent(sys.argv[1]) as wg:
    task = wg.run("pipe", "build the thing")
    print(task.id, flush=True)
    task.wait()
    print("done", flush=True)
