"""Data files shipped with dcstsf (the bundled EnMAP sample used by the demo and tests)."""

__all__: list[str] = []
