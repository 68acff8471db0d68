"""Parity verification of exported artifacts against the PyTorch reference."""
