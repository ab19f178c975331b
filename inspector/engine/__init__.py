"""Forward passes of the models the readers open, for output-level error."""
