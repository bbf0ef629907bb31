"""Data contracts as blocking asset checks."""
