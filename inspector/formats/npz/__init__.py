"""npz: numpy archives, read with `allow_pickle=False` only."""
