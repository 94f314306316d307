"""Independent NumPy float64 transliterations of reference implementations."""
