"""The pure core: the model, the errors and the arithmetic; no I/O, no other room of `api/`."""
