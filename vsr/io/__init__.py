"""Video and frame I/O: read with decord (PyAV fallback), write with PyAV."""
