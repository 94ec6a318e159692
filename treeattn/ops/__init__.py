"""treeattn.ops."""
