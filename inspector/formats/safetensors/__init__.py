"""safetensors: one memory-mapped file, JSON header then the raw buffer."""
