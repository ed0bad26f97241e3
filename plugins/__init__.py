"""medbench's built-in plugins. Each module registers through the ``medbench`` entry-point group,
exactly as a third-party plugin package does (see pyproject.toml)."""
