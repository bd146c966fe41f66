"""The soak: hours of a real Home Assistant with the integration, under a repeating fault schedule.

`scripts/soak` runs it (`python -m tests.support.soak`); tests/test_soak.py runs its short
version in the suite. `schedule` is the fault plan, `measure` reads the process, the log and
the recorder, `driver` starts and stops everything and checks the figures, `report` writes
benchmarks/soak.json, soak.md and soak.png.
"""
