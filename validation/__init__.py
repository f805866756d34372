"""Validation against real kernels: emulation campaigns (`python -m validation.run`) and their data."""
