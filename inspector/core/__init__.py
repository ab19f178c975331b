"""Pure numpy core: tensors, schemes, metrics, plans, previews. No I/O, no Qt."""
