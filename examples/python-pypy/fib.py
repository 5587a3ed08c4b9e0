"""A CPU-bound component that runs on PyPy."""

import sys


def fib(n):
    """The n-th Fibonacci number, computed the slow way (PyPy's JIT shines)."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def runtime():
    return sys.implementation.name
