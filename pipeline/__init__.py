"""Clean and migrate a WordPress-to-Jekyll blog archive committed with git conflicts."""

__version__ = "0.1.0"
