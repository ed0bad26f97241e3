"""CLI commands, one module each, added to the ``medbench`` group by ``medbench.cli``."""
