"""The Feast feature repository: definitions and the config rendered from project settings.

Feast costs seconds to import, so nothing here imports it at module load.
"""
