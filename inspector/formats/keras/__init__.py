"""Keras: legacy HDF5 `.h5` (full model or weights only), Keras 3 `.keras` zips, `.weights.h5`."""
